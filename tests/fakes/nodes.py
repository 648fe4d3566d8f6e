"""FakeNodes: the node side of a FakeWorld's VMs, in memory, behind the engine's `node_side`
hook (provisioner.node_access.NodeSide). Each VM answers at its public IP with the host key
its user-data carries (as sshd would), rotates it once, keeps a WireGuard key, an interface
that is up or down and a set of peers, and says in its boot marker whether it can run a
kubelet. A deleted VM no longer answers; another host key is refused.

    nodes = FakeNodes(world)
    engine = Engine(store, regions, cloud_factory=world.open, node_side=nodes.open)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from provisioner.cloudinit import read_bootstrap
from provisioner.keys import new_ed25519
from provisioner.node_access import NodeSide
from provisioner.nodes.boot import UNSUPPORTED, BootMarker
from provisioner.nodes.hostkey import same_key
from provisioner.nodes.kubernetes import KubernetesResult
from provisioner.nodes.latency import LatencyReport, PairLatency
from provisioner.nodes.ssh import HostKeyMismatchError, NodeAccess, NodeError, NodesError
from provisioner.nodes.wireguard import MeshNodeAccess, MeshReport, Prepared
from provisioner.state import NodeRow

from .cloud import FakeVm, FakeWorld

T = TypeVar("T")


@dataclass
class Host:
    """What one VM holds, as a node."""

    host_key: str
    rotated: bool = False
    wg_key: str | None = None
    up: bool = False
    peers: set[str] = field(default_factory=set)
    joined: bool = False


@dataclass
class FakeNodes(NodeSide):
    """The nodes of `world`'s VMs. `kubernetes`: what every boot marker says (default: cannot
    run a kubelet, as the sandbox's hosts). `latency_ms`: every pair's round trip."""

    world: FakeWorld
    kubernetes: str = UNSUPPORTED
    reason: str = "fake host: no kubelet"
    latency_ms: float = 1.0
    hosts: dict[str, Host] = field(default_factory=dict)  # by cloud_id
    deleted_nodes: list[str] = field(default_factory=list)  # Node objects deleted from Kubernetes
    client_keys: list[Path] = field(default_factory=list)
    faults: dict[tuple[str, str], Exception] = field(default_factory=dict)  # (method, node) -> raised once
    booted: list[str] = field(default_factory=list)  # the nodes waited for, in order

    def fail(self, method: str, node: str, error: Exception) -> None:
        """The next `method` call on `node` raises `error`."""
        self.faults[(method, node)] = error

    def _fault(self, method: str, node: str) -> None:
        error = self.faults.pop((method, node), None)
        if error is not None:
            raise error

    @contextlib.contextmanager
    def open(self, client_key: Path) -> Iterator[FakeNodes]:
        """The engine's node_side hook."""
        assert client_key.exists(), "the engine opens its nodes with the cluster's client key"
        self.client_keys.append(client_key)
        yield self

    def vm(self, access: NodeAccess) -> tuple[FakeVm, Host]:
        vm = self.world.vm_at(access.host)
        if vm is None:
            raise NodeError(access.name, f"nothing answers at {access.host}")
        if vm.cloud_id not in self.hosts:
            boot = read_bootstrap(vm.user_data)
            assert boot is not None, f"{vm.name}'s user-data holds no host key"
            self.hosts[vm.cloud_id] = Host(boot.host_key_public)
        host = self.hosts[vm.cloud_id]
        if not same_key(host.host_key, access.host_key):
            raise HostKeyMismatchError(access.name, "the host key differs from the pinned one")
        return vm, host

    def host(self, node: str) -> Host:
        """The host of the cluster VM named `node` (for tests to look at or change)."""
        vm = next(vm for a in self.world.accounts.values() for vm in a.vms if vm.name == node)
        return self.hosts[vm.cloud_id]

    def wait_reachable(self, node: NodeAccess, timeout_s: float) -> None:
        self.vm(node)

    def wait_booted(self, node: NodeAccess) -> BootMarker:
        self._fault("wait_booted", node.name)
        self.vm(node)
        self.booted.append(node.name)
        return BootMarker(self.kubernetes, self.reason)

    def rotate_host_key(self, node: NodeAccess, record_pending: Callable[[str], None]) -> NodeAccess:
        _, host = self.vm(node)
        if host.rotated:
            return node
        public = new_ed25519(node.name).public
        record_pending(public)
        host.host_key, host.rotated = public, True
        return replace(node, host_key=public)

    def prepare(self, node: MeshNodeAccess) -> Prepared:
        _, host = self.vm(node.access)
        if host.wg_key is None:
            host.wg_key = base64.b64encode(hashlib.sha256(node.name.encode() + host.host_key.encode()).digest()).decode()
        state = "updated" if host.up else "started"
        had = frozenset(host.peers) if host.up else frozenset()
        host.up = True
        return Prepared(host.wg_key, state, had)

    def apply_mesh(self, nodes: list[MeshNodeAccess], prepared: dict[str, Prepared],
                   joining: Collection[str] | None = None) -> MeshReport:
        for n in nodes:
            self._fault("apply_mesh", n.name)
        ready = dict(prepared)
        ready.update(self.map([n.access for n in nodes if n.name not in ready],
                              lambda a: self.prepare(next(n for n in nodes if n.name == a.name))))
        keys = {n.name: ready[n.name].public_key for n in nodes}
        for n in nodes:
            self.vm(n.access)[1].peers = {k for name, k in keys.items() if name != n.name}
        return MeshReport(keys, tuple(sorted(n for n in keys if ready[n].state == "started")),
                          tuple(sorted(n for n in keys if ready[n].state == "updated")))

    def current_peers(self, node: NodeAccess) -> frozenset[str] | None:
        _, host = self.vm(node)
        return frozenset(host.peers) if host.up else None

    def measure_latency(self, nodes: list[MeshNodeAccess], *, count: int, interval_s: float,
                        threshold_ms: float) -> LatencyReport:
        for n in nodes:
            self.vm(n.access)
        ms = self.latency_ms
        pairs = tuple(PairLatency(a.name, b.name, a.group, b.group, count, count, ms, ms, ms)
                      for a in nodes for b in nodes if a.name != b.name)
        return LatencyReport(pairs, threshold_ms, count, interval_s)

    def bootstrap_kubernetes(self, cluster: str, members: Sequence[tuple[NodeAccess, NodeRow]],
                             kubernetes_version: str, ingress: object = None) -> KubernetesResult:
        fresh = 0
        for access, _ in members:
            _, host = self.vm(access)
            fresh += not host.joined
            host.joined = True
        return KubernetesResult(f"apiVersion: v1\nkind: Config\n# fake {cluster}\n",
                                (f"{kubernetes_version} on {len(members)} nodes, {fresh} joined now",))

    def forget_kubernetes_node(self, first_master: NodeAccess, node: str) -> None:
        self.vm(first_master)
        self.deleted_nodes.append(node)

    def map(self, nodes: Iterable[NodeAccess], work: Callable[[NodeAccess], T], *,
            max_workers: int | None = None) -> dict[str, T]:
        results: dict[str, T] = {}
        errors: dict[str, Exception] = {}
        for node in nodes:
            try:
                results[node.name] = work(node)
            except NodeError as exc:
                errors[node.name] = exc
        if errors:
            raise NodesError(errors)
        return results
