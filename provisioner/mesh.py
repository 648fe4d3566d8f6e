"""The WireGuard mesh plan: pure, deterministic, no I/O.

Every node peers with every other node: Endpoint = the peer's public IP on port 51820,
AllowedIPs = the peer's mesh /32, PersistentKeepalive = 25 s (keeps NAT and cloud firewall
state open). The config never holds a private key: each node's key stays in a file on the
node, loaded by PostUp (and kept by `wg syncconf`, which changes only what the file names).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from .errors import InputError
from .ipam import MESH
from .textcheck import is_node_address, one_line

INTERFACE = "wg0"
LISTEN_PORT = 51820
KEEPALIVE_S = 25
PRIVATE_KEY_PATH = "/etc/wireguard/private.key"
CONFIG_PATH = f"/etc/wireguard/{INTERFACE}.conf"

# WireGuard adds 60 bytes over IPv4 (20 IP + 8 UDP + 32 WireGuard) and 80 over IPv6. The
# path between two clouds is as small as its smallest end: AWS, Azure and DigitalOcean give
# 1500 towards the internet, but a GCP VPC defaults to 1460. 1460 - 80 = 1380 fits every
# pair of clouds even with IPv6 endpoints, so no packet of the mesh is ever fragmented.
MTU = 1380


@dataclass(frozen=True)
class MeshMember:
    """One node of the mesh as the plan needs it."""

    name: str
    group: str  # its cloud
    mesh_ip: str  # a /32 from 10.4.0.0/16
    public_ip: str
    public_key: str  # WireGuard public key, standard base64


@dataclass(frozen=True)
class Peer:
    name: str
    public_key: str
    endpoint: str
    allowed_ips: tuple[str, ...]
    keepalive_s: int = KEEPALIVE_S


@dataclass(frozen=True)
class NodeConfig:
    """The wg-quick configuration of one node (without its private key)."""

    name: str
    address: str  # mesh_ip with the mesh's prefix length
    listen_port: int
    mtu: int
    peers: tuple[Peer, ...]


def _check_key(member: MeshMember) -> None:
    try:
        raw = base64.b64decode(member.public_key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InputError(f"{member.name}.public_key", "not a WireGuard public key (base64 of 32 bytes)")


def _address(member: MeshMember, field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    value = getattr(member, field)
    if not is_node_address(value, public=field == "public_ip"):
        raise InputError(f"{member.name}.{field}", "not an IP address (IPv4, or global IPv6 without a scope)")
    return ipaddress.ip_address(value)


def validate(members: Iterable[MeshMember]) -> list[MeshMember]:
    """The members sorted by name, after checking that names, mesh addresses, public IPs
    and public keys are unique, mesh addresses lie in 10.4.0.0/16 and keys are well formed.
    Raises InputError naming the member and the field."""
    ordered = sorted(members, key=lambda m: m.name)
    seen: dict[tuple[str, str], str] = {}
    for i, m in enumerate(ordered):
        if i and ordered[i - 1].name == m.name:
            raise InputError(f"{m.name}.name", "two members share this name")
        one_line(f"{m.name}.name", m.name)
        mesh_ip = _address(m, "mesh_ip")
        _address(m, "public_ip")
        if mesh_ip not in MESH or mesh_ip in (MESH.network_address, MESH.broadcast_address):
            raise InputError(f"{m.name}.mesh_ip", f"{m.mesh_ip} is not a host address in {MESH}")
        _check_key(m)
        for field in ("mesh_ip", "public_ip", "public_key"):
            other = seen.setdefault((field, getattr(m, field)), m.name)
            if other != m.name:
                raise InputError(f"{m.name}.{field}", f"shared with {other}")
    return ordered


def plan_mesh(members: Iterable[MeshMember]) -> dict[str, NodeConfig]:
    """The full mesh: for each member (by name), its interface and one peer per other
    member, peers sorted by name. Raises InputError (see `validate`)."""
    ordered = validate(members)
    plans: dict[str, NodeConfig] = {}
    for m in ordered:
        peers = tuple(
            Peer(p.name, p.public_key, _endpoint(p.public_ip), (f"{p.mesh_ip}/32",))
            for p in ordered if p.name != m.name
        )
        # The interface takes the whole mesh prefix: one connected route covers every peer,
        # present and future, so peers added live by `wg syncconf` need no new route.
        plans[m.name] = NodeConfig(m.name, f"{m.mesh_ip}/{MESH.prefixlen}", LISTEN_PORT, MTU, peers)
    return plans


def without_keepalive(config: NodeConfig, keep: Collection[str] = ()) -> NodeConfig:
    """`config` with PersistentKeepalive off for every peer but those whose public keys are
    in `keep`. Setting a keepalive on a live interface sends at once (a handshake initiation
    when there is no session yet), so new peers get theirs only once their sessions exist."""
    peers = tuple(p if p.public_key in keep else replace(p, keepalive_s=0) for p in config.peers)
    return replace(config, peers=peers)


def interface_only(name: str, mesh_ip: str) -> NodeConfig:
    """A node's interface without peers: what it comes up with before the mesh is known."""
    return NodeConfig(name, f"{mesh_ip}/{MESH.prefixlen}", LISTEN_PORT, MTU, ())


def _endpoint(public_ip: str) -> str:
    address = ipaddress.ip_address(public_ip)
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"{host}:{LISTEN_PORT}"


def _check_lines(config: NodeConfig) -> None:
    """Every rendered field is one line: a line break would add a key (PostUp = ...) or a
    [Peer] section. InputError naming the field otherwise."""
    one_line("name", config.name)
    one_line("address", config.address)
    for p in config.peers:
        for field, value in (("name", p.name), ("public_key", p.public_key), ("endpoint", p.endpoint),
                             *(("allowed_ips", a) for a in p.allowed_ips)):
            one_line(f"{p.name}.{field}", value)


def render_wg_quick(config: NodeConfig) -> str:
    """The node's /etc/wireguard/wg0.conf in wg-quick format (a peer's keepalive of 0: no
    PersistentKeepalive line). It holds no PrivateKey: PostUp loads the key from
    PRIVATE_KEY_PATH on the node."""
    _check_lines(config)
    lines = [
        f"# Managed by cast: node {config.name}. The private key never leaves the node;",
        f"# PostUp loads it from {PRIVATE_KEY_PATH}.",
        "[Interface]",
        f"Address = {config.address}",
        f"ListenPort = {config.listen_port}",
        f"MTU = {config.mtu}",
        # Address's prefix route already covers every peer; without Table = off wg-quick
        # would also check a route per peer at bring-up (one `ip route get` each).
        "Table = off",
        f"PostUp = wg set %i private-key {PRIVATE_KEY_PATH}",
    ]
    for peer in config.peers:
        lines += [
            "",
            "[Peer]",
            f"# {peer.name}",
            f"PublicKey = {peer.public_key}",
            f"Endpoint = {peer.endpoint}",
            f"AllowedIPs = {', '.join(peer.allowed_ips)}",
        ]
        if peer.keepalive_s:
            lines.append(f"PersistentKeepalive = {peer.keepalive_s}")
    return "\n".join(lines) + "\n"
