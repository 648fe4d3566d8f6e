"""What the engine does on the cluster's nodes, behind one interface: `NodeSide`. The real one,
`SshNodes`, runs provisioner.nodes' commands over one SSH pool (host keys pinned); tests hand
the engine another through its `node_side` hook (a factory taking the path of the cluster's
SSH client key), so the engine's flows run without VMs.

The methods are the nodes' own functions, with the pool bound; their contracts (what blocks,
what is raised) are those functions' docstrings in provisioner/nodes/.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .kube.addons import IngressSettings
    from .nodes.boot import BootMarker
    from .nodes.kubernetes import KubernetesResult
    from .nodes.latency import LatencyReport
    from .nodes.ssh import NodeAccess, SshPool
    from .nodes.wireguard import MeshNodeAccess, MeshReport, Prepared
    from .state import NodeRow

T = TypeVar("T")
NodeSideFactory = Callable[[Path], AbstractContextManager["NodeSide"]]


class NodeSide(ABC):
    """The cluster's nodes as the engine reaches them, for one command."""

    @abstractmethod
    def wait_reachable(self, node: NodeAccess, timeout_s: float) -> None:
        """SshPool.wait_reachable: HostKeyMismatchError at once on another host key."""

    @abstractmethod
    def wait_booted(self, node: NodeAccess) -> BootMarker:
        """nodes.boot.wait_booted."""

    @abstractmethod
    def rotate_host_key(self, node: NodeAccess, record_pending: Callable[[str], None]) -> NodeAccess:
        """nodes.hostkey.rotate_host_key."""

    @abstractmethod
    def prepare(self, node: MeshNodeAccess) -> Prepared:
        """nodes.wireguard.prepare_node."""

    @abstractmethod
    def apply_mesh(self, nodes: list[MeshNodeAccess], prepared: dict[str, Prepared],
                   joining: Collection[str] | None = None) -> MeshReport:
        """nodes.wireguard.apply_mesh."""

    @abstractmethod
    def current_peers(self, node: NodeAccess) -> frozenset[str] | None:
        """nodes.wireguard.current_peers."""

    @abstractmethod
    def measure_latency(self, nodes: list[MeshNodeAccess], *, count: int, interval_s: float,
                        threshold_ms: float) -> LatencyReport:
        """nodes.latency.measure_latency."""

    @abstractmethod
    def bootstrap_kubernetes(self, cluster: str, members: Sequence[tuple[NodeAccess, NodeRow]],
                             kubernetes_version: str, ingress: IngressSettings | None = None) -> KubernetesResult:
        """nodes.kubernetes.bootstrap_kubernetes."""

    @abstractmethod
    def forget_kubernetes_node(self, first_master: NodeAccess, node: str) -> None:
        """nodes.kubernetes.forget_kubernetes_node."""

    @abstractmethod
    def map(self, nodes: Iterable[NodeAccess], work: Callable[[NodeAccess], T], *,
            max_workers: int | None = None) -> dict[str, T]:
        """SshPool.map: `work` on every node at once (at most `max_workers`, by default the
        pool's); NodesError naming every failed node."""


class SshNodes(NodeSide):
    """The nodes over SSH, through one pool for the whole command."""

    def __init__(self, pool: SshPool):
        self.pool = pool

    def wait_reachable(self, node: NodeAccess, timeout_s: float) -> None:
        self.pool.wait_reachable(node, timeout_s=timeout_s)

    def wait_booted(self, node: NodeAccess) -> BootMarker:
        from .nodes.boot import wait_booted

        return wait_booted(self.pool, node)

    def rotate_host_key(self, node: NodeAccess, record_pending: Callable[[str], None]) -> NodeAccess:
        from .nodes.hostkey import rotate_host_key

        return rotate_host_key(self.pool, node, record_pending)

    def prepare(self, node: MeshNodeAccess) -> Prepared:
        from .nodes.wireguard import prepare_node

        return prepare_node(self.pool, node)

    def apply_mesh(self, nodes: list[MeshNodeAccess], prepared: dict[str, Prepared],
                   joining: Collection[str] | None = None) -> MeshReport:
        from .nodes.wireguard import apply_mesh

        return apply_mesh(nodes, self.pool, prepared=prepared, joining=joining)

    def current_peers(self, node: NodeAccess) -> frozenset[str] | None:
        from .nodes.wireguard import current_peers

        return current_peers(self.pool, node)

    def measure_latency(self, nodes: list[MeshNodeAccess], *, count: int, interval_s: float,
                        threshold_ms: float) -> LatencyReport:
        from .nodes.latency import measure_latency

        return measure_latency(self.pool, nodes, count=count, interval_s=interval_s, threshold_ms=threshold_ms)

    def bootstrap_kubernetes(self, cluster: str, members: Sequence[tuple[NodeAccess, NodeRow]],
                             kubernetes_version: str, ingress: IngressSettings | None = None) -> KubernetesResult:
        from .nodes.kubernetes import bootstrap_kubernetes

        return bootstrap_kubernetes(self.pool, cluster, members, kubernetes_version, ingress=ingress)

    def forget_kubernetes_node(self, first_master: NodeAccess, node: str) -> None:
        from .nodes.kubernetes import forget_kubernetes_node

        forget_kubernetes_node(self.pool, first_master, node)

    def map(self, nodes: Iterable[NodeAccess], work: Callable[[NodeAccess], T], *,
            max_workers: int | None = None) -> dict[str, T]:
        return self.pool.map(nodes, work, max_workers=max_workers)


@contextlib.contextmanager
def ssh_nodes(client_key: Path) -> Iterator[NodeSide]:
    """The default node side: SSH as root with the cluster's client key (the file at
    `client_key`); one pool serves a whole command, so each node is connected to once."""
    from .nodes.ssh import SshPool, load_private_key

    with SshPool(load_private_key(str(client_key))) as pool:
        yield SshNodes(pool)
