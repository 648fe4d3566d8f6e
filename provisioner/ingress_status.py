"""Where a cluster's ingress stands, as its journal knows it (for `cast status`, no cloud call):
each cloud's load balancer, its address and backends, from the newest load-balancer step that
changed something (a step that changed nothing leaves the previous one standing), and the
cluster's domain from its spec.

The journal is read like any state: an address that is not an IP address, or a backend that is
not a node of the cluster, is not shown.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from .ingress import LB_STEP
from .state.rows import JournalEntry

# IngressSteps._balance ends a load balancer's actions with "at ADDRESS: BACKEND, BACKEND".
_AT = re.compile(r"(?:^|; )at (?P<address>[0-9.]+): (?P<backends>[^;]*)$")


@dataclass(frozen=True)
class BalancerState:
    """One cloud's load balancer: its public address and the workers behind it."""

    cloud: str
    address: str
    backends: tuple[str, ...]


def balancers(entries: Iterable[JournalEntry], nodes: Collection[str]) -> list[BalancerState]:
    """Each cloud's load balancer as the newest load-balancer step that changed something left
    it (`entries`: the cluster's journal, oldest first; `nodes`: the cluster's node names), by
    cloud; a cloud whose newest such step deleted its balancer has none."""
    newest: dict[str, str] = {}
    for entry in entries:
        if entry.step == LB_STEP and entry.phase == "end" and entry.detail:
            newest[entry.cloud] = entry.detail
    found = []
    for cloud, detail in sorted(newest.items()):
        match = _AT.search(detail)
        if match is None:
            continue
        try:
            address = str(ipaddress.IPv4Address(match["address"]))
        except ValueError:
            continue
        backends = tuple(b for b in (s.strip() for s in match["backends"].split(",")) if b in nodes)
        found.append(BalancerState(cloud, address, backends))
    return found
