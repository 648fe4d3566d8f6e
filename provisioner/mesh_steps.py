"""The node phase's mesh steps: every node reached with its pinned host key, booted, its
injected host key rotated, then one WireGuard full mesh applied live; and reconcile's look at
how far the nodes' peers drifted from that mesh. Run on a NodeSide (provisioner.node_access)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from .clouds.base import Ensured
from .cluster_keys import forget_host_key, pin
from .context import Context, first_master_of
from .errors import CastError
from .node_access import NodeSide

if TYPE_CHECKING:
    from .nodes.boot import BootMarker
    from .nodes.ssh import NodeAccess
    from .nodes.wireguard import MeshNodeAccess, Prepared
    from .state import NodeRow

SSH_TIMEOUT_S = 300.0  # a cloud VM may take minutes to boot and run cloud-init


class MeshError(CastError):
    """The mesh came up incomplete: the message names the pairs with no handshake."""


def node_access(node: NodeRow) -> NodeAccess:
    """How to reach a node that has a public IP: its address and pinned host key."""
    from .nodes.ssh import NodeAccess

    assert node.public_ip is not None
    return NodeAccess(node.name, node.public_ip, node.host_key)


def members(ctx: Context) -> list[MeshNodeAccess]:
    """The mesh as the state describes it: every node with a public IP."""
    from .nodes.wireguard import MeshNodeAccess

    return [MeshNodeAccess(node_access(n), n.cloud, n.mesh_ip, n.public_ip) for n in ctx.addressed()]


def reach(ctx: Context, nodes: NodeSide, access: NodeAccess) -> NodeAccess:
    """Wait until `access` accepts SSH with its pinned key. A node that presents the key
    a rotation recorded as pending (cast stopped between the node's switch and the pin)
    is pinned to it; any other key is refused (HostKeyMismatchError)."""
    from .nodes.hostkey import same_key
    from .nodes.ssh import HostKeyMismatchError

    try:
        nodes.wait_reachable(access, timeout_s=SSH_TIMEOUT_S)
        return access
    except HostKeyMismatchError:
        last = ctx.store.last_journal(ctx.uuid, access.name, "host-key")
        if not last or last[0] != "begin" or not last[1] or same_key(last[1], access.host_key):
            raise
    pending = replace(access, host_key=last[1])
    nodes.wait_reachable(pending, timeout_s=SSH_TIMEOUT_S)
    pin(ctx.store, ctx.uuid, access.name, pending.host_key)
    return pending


def rotate(ctx: Context, nodes: NodeSide, access: NodeAccess) -> NodeAccess:
    """Replace the host key cast injected into `access` (readable through the cloud's
    metadata service) by one the node makes, pin it, and forget the injected private key:
    the cluster keeps only the public half. Once per VM (nodes.hostkey). Returns the
    node's access with its live key."""
    uuid = ctx.uuid

    def pending(public: str) -> None:
        ctx.store.journal(uuid, access.name, "host-key", "begin", public)

    rotated = nodes.rotate_host_key(access, pending)
    # The secret goes before the pin: while it exists, a re-run would pin its (old) key
    # again for new user-data; without it, a re-run finds the pending key in the journal.
    forget_host_key(ctx.store, uuid, access.name)
    if rotated.host_key != access.host_key:
        pin(ctx.store, uuid, access.name, rotated.host_key)
        ctx.store.journal(uuid, access.name, "host-key", "end", rotated.host_key)
    return rotated


def settled_nodes(ctx: Context, grow: bool) -> dict[str, str]:
    """With `grow` (add-node): the nodes already meshed, by name, with their WireGuard public
    keys, but the first master (Kubernetes reads its boot marker); they are taken as the state
    has them. Without: none."""
    if not grow:
        return {}
    rows = ctx.addressed()
    settled = {n.name: n.wg_public_key for n in rows if n.status == "meshed" and n.wg_public_key}
    settled.pop(first_master_of(rows) or "", None)
    return settled


def wireguard(ctx: Context, nodes: NodeSide, markers: dict[str, BootMarker],
              ready: dict[str, tuple[BootMarker, Prepared]] | None = None, *, grow: bool = False) -> Ensured:
    """The mesh/wireguard step: make every node that has a public IP reachable over SSH
    (host key pinned), booted (its cloud-init done) and one WireGuard full mesh, applied
    live; fills `markers` with each node's boot marker. `ready`: the nodes as the mesh/nodes
    step left them (booted_nodes), else they are made ready here. With `grow` (add-node), the
    settled nodes (settled_nodes) only get their new peers, and only the new pairs are waited
    for (what the others' mesh lacks is reconcile's to find). Raises MeshError naming the pairs
    without a handshake, NodesError naming the nodes that failed."""
    from .nodes.wireguard import Prepared

    rows = ctx.addressed()
    settled = settled_nodes(ctx, grow)
    if ready is None:
        ready = booted_nodes(ctx, nodes, "wireguard", grow=grow)
    ctx.progress.update("mesh", "wireguard", f"bringing up the mesh of {len(rows)} nodes")
    markers.update({name: marker for name, (marker, _) in ready.items()})
    prepared = {name: prep for name, (_, prep) in ready.items() if name not in settled}
    peers = frozenset(settled.values())
    prepared.update({name: Prepared(key, "updated", peers - {key}) for name, key in settled.items()})
    joining = [n.name for n in rows if n.name not in settled] if grow else None
    pinned = members(ctx)  # with the host keys the nodes now present
    report = nodes.apply_mesh(pinned, prepared, joining)
    ctx.store.upsert_nodes([replace(n, status="meshed", wg_public_key=report.public_keys.get(n.name))
                            for n in ctx.addressed() if n.name not in settled])
    if report.missing_handshakes:
        pairs = ", ".join(f"{a}-{b}" for a, b in report.missing_handshakes)
        raise MeshError(f"no WireGuard handshake between {pairs}")
    started = f"{len(report.started)} brought up" if report.started else ""
    updated = f"{len(report.updated)} updated live" if report.updated else ""
    return Ensured(actions=(", ".join(x for x in (started, updated) if x) + f"; {len(rows)} nodes in mesh",))


def nodes_step(ctx: Context, nodes: NodeSide, ready: dict[str, tuple[BootMarker, Prepared]], *,
               grow: bool = False) -> Ensured:
    """The mesh/nodes step (before the firewalls let the peers in: it needs only SSH):
    booted_nodes, into `ready` for the mesh/wireguard step."""
    ready.update(booted_nodes(ctx, nodes, "nodes", grow=grow))
    return Ensured(actions=(f"{len(ready)} nodes booted",))


def booted_nodes(ctx: Context, nodes: NodeSide, step: str, *,
                 grow: bool = False) -> dict[str, tuple[BootMarker, Prepared]]:
    """Every node that has a public IP reached over SSH (host key pinned), booted (its
    cloud-init done), its injected host key rotated and prepared for WireGuard: its boot
    marker and what it prepared, by name; progress shown on mesh/`step`. With `grow`, the
    settled nodes (settled_nodes) are only reached (their connection opened while the new
    nodes boot) and left out of the result."""
    mesh = members(ctx)
    by_name = {m.name: m for m in mesh}
    settled = settled_nodes(ctx, grow)
    booting = len(mesh) - len(settled)
    counted = threading.Lock()
    up: list[str] = []

    def booted(access: NodeAccess) -> tuple[BootMarker, Prepared] | None:
        if access.name in settled:  # only its connection, opened while the new nodes boot
            reach(ctx, nodes, access)
            return None
        # Each node gets ready for the mesh as soon as it is up, while others still boot.
        access = reach(ctx, nodes, access)
        marker = nodes.wait_booted(access)
        access = rotate(ctx, nodes, access)
        result = marker, nodes.prepare(replace(by_name[access.name], access=access))
        with counted:
            up.append(access.name)
            ctx.progress.update("mesh", step, f"{len(up)}/{booting} nodes booted")
        return result

    ctx.progress.update("mesh", step, f"0/{booting} nodes booted")
    # Every node's boot wait at once: they mostly wait, and a cap would serialize big meshes.
    done = nodes.map([m.access for m in mesh], booted, max_workers=len(mesh) or 1)
    return {name: result for name, result in done.items() if result is not None}


def drift(ctx: Context, nodes: NodeSide, skip: set[str]) -> tuple[list[str], list[str]]:
    """What differs between each node's WireGuard peers and the full mesh the state
    describes: nodes whose wg0 is down or unreachable, missing peers, stale peers (of nodes
    that are gone, or added by hand); and the nodes that showed another host key (a finding
    of its own: "host key mismatch"). Nodes in `skip` (whose VM is gone) are not probed."""
    from .nodes.ssh import HostKeyMismatchError

    rows = [n for n in ctx.addressed() if n.name not in skip]
    keys = {n.name: n.wg_public_key for n in rows}
    names = {key: name for name, key in keys.items() if key}

    def probe(access: NodeAccess) -> list[str]:
        try:
            peers = nodes.current_peers(access)
        except HostKeyMismatchError:
            return [f"{access.name}: host key mismatch"]
        except CastError as exc:
            return [f"{access.name}: unreachable over SSH ({exc})"]
        if peers is None:
            return [f"{access.name}: not in the mesh (wg0 is down)"]
        wanted = {k for name, k in keys.items() if k and name != access.name}
        found = []
        if wanted - peers:
            found.append(f"{access.name}: lacks peers {', '.join(sorted(names[k] for k in wanted - peers))}")
        if peers - wanted:
            stale = ", ".join(sorted(peers - wanted))  # public keys: of no node the cluster has
            found.append(f"{access.name}: has {len(peers - wanted)} stale peer(s) {stale}")
        return found

    results = nodes.map([node_access(n) for n in rows], probe)
    mismatched = sorted(name for name, lines in results.items() if f"{name}: host key mismatch" in lines)
    return [f"mesh: {line}" for name in sorted(results) for line in results[name]], mismatched
