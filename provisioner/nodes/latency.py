"""check-latency: every pair of nodes pings over the mesh (through WireGuard, never the
public addresses), all at once; min/avg/max/loss per ordered pair, and a verdict. Each node
runs one pinger process for all the peers it measures (pinger.py).

A round trip has no direction (A -> B -> A crosses the same links and the same two
WireGuard ends as B -> A -> B), so each pair is measured once, from one side, and reported
both ways: half the packets of measuring it from both ends, which on one machine running
every node (the sandbox) is most of the check's cost. Each node measures about half its
peers (measured_from), so the work stays spread evenly over the nodes.

A pair of nodes in different groups (clouds) violates the check when its average round trip
is above the threshold or when it lost packets. Pairs inside one group are measured and shown
but never judged: the threshold is about the links between clouds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import LatencyError
from .ssh import NodeAccess, NodeError, SshPool
from .wireguard import MeshNodeAccess, pinger_command, pinger_source

DEFAULT_COUNT = 5
DEFAULT_INTERVAL_S = 0.2
DEFAULT_THRESHOLD_MS = 10.0
MAX_PARALLEL_NODES = 256  # every node measures at the same time, so the time is one ping run

REPLY_WAIT_S = 2.0  # after the last echo, how long a reply may still come (else: lost)


@dataclass(frozen=True)
class PairLatency:
    """Round trips from `source` to `target` over the mesh. min/avg/max are None when no
    reply came back."""

    source: str
    target: str
    source_group: str
    target_group: str
    sent: int
    received: int
    min_ms: float | None
    avg_ms: float | None
    max_ms: float | None

    @property
    def loss(self) -> float:
        """The share of pings lost, 0.0 to 1.0 (1.0 when none was sent)."""
        return 1.0 - self.received / self.sent if self.sent else 1.0

    @property
    def cross_group(self) -> bool:
        return self.source_group != self.target_group


@dataclass(frozen=True)
class LatencyReport:
    """Every ordered pair's figures and the verdict against `threshold_ms`."""

    pairs: tuple[PairLatency, ...]
    threshold_ms: float
    count: int
    interval_s: float

    def violations(self) -> list[PairLatency]:
        """Cross-group pairs whose average is above the threshold or that lost packets."""
        return [p for p in self.pairs if p.cross_group and
                (p.loss > 0 or p.avg_ms is None or p.avg_ms > self.threshold_ms)]

    @property
    def ok(self) -> bool:
        return not self.violations()

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold_ms": self.threshold_ms,
            "count": self.count,
            "interval_s": self.interval_s,
            "ok": self.ok,
            "pairs": [dict(asdict(p), loss=round(p.loss, 4)) for p in self.pairs],
            "violations": [[p.source, p.target] for p in self.violations()],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def raise_on_violations(self) -> None:
        """Raise LatencyError (exit 3) naming every violating pair, if there is one."""
        bad = self.violations()
        if not bad:
            return
        listed = ", ".join(f"{p.source}->{p.target} ({_describe(p)})" for p in bad)
        raise LatencyError(f"{len(bad)} cross-cloud pair(s) over {self.threshold_ms:g} ms "
                           f"or losing packets: {listed}")


def _describe(p: PairLatency) -> str:
    if p.avg_ms is None:
        return "no reply"
    text = f"avg {p.avg_ms:.1f} ms"
    return text + (f", {p.loss:.0%} lost" if p.loss else "")


def start_lead_s(nodes: int) -> float:
    """How far ahead the common start is: time for every node to get the pinger going over
    its open SSH connection (a bounded pool, so more nodes take longer)."""
    return 0.15 + 0.005 * nodes


def measured_from(names: Sequence[str]) -> dict[str, list[str]]:
    """The peers each node pings: every pair of `names` exactly once, from one side, each
    node taking the (n - 1) / 2 peers that follow it in sorted order (round the circle), and
    with an even count the one opposite it for the first half of the nodes."""
    ordered = sorted(names)
    n = len(ordered)
    targets = {}
    for i, name in enumerate(ordered):
        picks = [ordered[(i + k) % n] for k in range(1, (n - 1) // 2 + 1)]
        if n % 2 == 0 and i < n // 2:
            picks.append(ordered[i + n // 2])
        targets[name] = picks
    return targets


def measure_latency(pool: SshPool, nodes: list[MeshNodeAccess], *,
                    count: int = DEFAULT_COUNT, interval_s: float = DEFAULT_INTERVAL_S,
                    threshold_ms: float = DEFAULT_THRESHOLD_MS) -> LatencyReport:
    """Ping every pair of nodes over the mesh, from one side (measured_from), all nodes at
    once, `count` pings `interval_s` apart, all starting at one moment (start_lead_s ahead);
    every ordered pair in the report, a pair's figures both ways. Blocks for about that lead
    plus count × interval_s.
    Raises NodesError if a node cannot be reached (a peer that does not answer is a
    measured 100 % loss, not an error)."""
    if count < 1 or interval_s < 0.002:
        raise ValueError("count must be >= 1 and interval >= 0.002 s")
    by_name = {n.name: n for n in nodes}
    measured = measured_from(list(by_name))
    workers = min(len(nodes), MAX_PARALLEL_NODES) or 1
    # Every connection is open before the common start is set: opened while early pingers
    # already ran, the last ones started seconds late on a busy machine (100 nodes on 2 cores),
    # each measuring alone, and the check lasted as long as the connections took.
    pool.map([n.access for n in nodes], pool.client, max_workers=workers)
    start_at = time.time() + start_lead_s(len(nodes))

    def measure(access: NodeAccess) -> list[PairLatency]:
        me = by_name[access.name]
        peers = [by_name[name] for name in measured[me.name]]
        targets = [peer.mesh_ip for peer in peers]
        if not targets:
            return []
        timeout = count * interval_s + REPLY_WAIT_S + start_lead_s(len(nodes)) + 30
        out = pool.check(access, pinger_command(targets, count, interval_s, REPLY_WAIT_S, start_at),
                         stdin=pinger_source(), timeout_s=timeout,
                         purpose=f"ping {len(targets)} peers")
        try:
            figures = json.loads(out)
        except json.JSONDecodeError:
            raise NodeError(me.name, "the pinger printed no result") from None
        result = []
        for peer in peers:
            sent, received, low, avg, high = figures.get(peer.mesh_ip) or (count, 0, None, None, None)
            result += [PairLatency(me.name, peer.name, me.group, peer.group, sent, received, low, avg, high),
                       PairLatency(peer.name, me.name, peer.group, me.group, sent, received, low, avg, high)]
        return result

    done = pool.map([n.access for n in nodes], measure, max_workers=workers)
    pairs = sorted((p for ps in done.values() for p in ps),
                   key=lambda p: (p.source_group, p.source, p.target_group, p.target))
    return LatencyReport(tuple(pairs), threshold_ms, count, interval_s)
