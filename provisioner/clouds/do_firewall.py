"""DigitalOcean cloud firewall rules: the plan's inbound rules in DigitalOcean's wire format,
allow-all outbound, and a comparison that ignores how the API spells the same rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..plan import FirewallRule

ANY_ADDRESS = ("0.0.0.0/0", "::/0")
_ALL_PORTS = ("", "0", "all")

Rule = tuple[str, str, frozenset[str]]  # protocol, ports, addresses


def inbound_rules(rules: Iterable[FirewallRule]) -> list[dict[str, Any]]:
    """The plan's inbound rules as DigitalOcean `inbound_rules`."""
    return [{"protocol": r.protocol, "ports": r.ports, "sources": {"addresses": list(r.sources)}} for r in rules]


def outbound_rules() -> list[dict[str, Any]]:
    """Allow every outbound packet (tcp, udp, icmp to anywhere)."""
    return [
        {"protocol": proto, "ports": "0", "destinations": {"addresses": list(ANY_ADDRESS)}}
        for proto in ("tcp", "udp", "icmp")
    ]


def normalised(rules: Iterable[Mapping[str, Any]], side: str) -> frozenset[Rule]:
    """Rules as comparable values; `side` is "sources" (inbound) or "destinations" (outbound).
    "0", "all" and a missing port mean the same; "22-22" is "22"."""
    out = set()
    for r in rules:
        ports = str(r.get("ports") or "")
        if ports in _ALL_PORTS:
            ports = "all"
        low, _, high = ports.partition("-")
        if high == low:
            ports = low
        addresses = frozenset((r.get(side) or {}).get("addresses") or [])
        out.add((str(r.get("protocol", "")).lower(), ports, addresses))
    return frozenset(out)


def drifted(firewall: Mapping[str, Any], inbound: list[dict[str, Any]], target_tag: str) -> bool:
    """Whether the firewall differs from what the plan wants."""
    return (
        normalised(firewall.get("inbound_rules") or [], "sources") != normalised(inbound, "sources")
        or normalised(firewall.get("outbound_rules") or [], "destinations")
        != normalised(outbound_rules(), "destinations")
        or list(firewall.get("tags") or []) != [target_tag]
    )
