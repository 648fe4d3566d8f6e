"""What one command knows of the cluster it works on: its state row and spec, the state store,
progress, and how its nodes are reached. The engine makes one per command; the step modules
(creation, mesh_steps, latency_step, kubernetes_steps) take it instead of the engine."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .clouds.base import ClusterRef
from .graph import Journal
from .progress import Progress
from .spec import ClusterSpec
from .state import ClusterRow, NodeRow, StateStore


@dataclass(frozen=True)
class Cluster:
    """What the engine knows of one cluster while it works on it."""

    row: ClusterRow
    spec: ClusterSpec

    @property
    def ref(self) -> ClusterRef:
        return ClusterRef(self.row.name, self.row.uuid)


@dataclass(frozen=True)
class Context:
    """One command's work on one cluster."""

    store: StateStore
    progress: Progress
    cluster: Cluster
    dry_run: bool = False

    @property
    def uuid(self) -> str:
        return self.cluster.row.uuid

    @property
    def name(self) -> str:
        return self.cluster.row.name

    def with_spec(self, spec: ClusterSpec) -> Context:
        """The same command, the cluster's spec now `spec`."""
        return replace(self, cluster=Cluster(self.cluster.row, spec))

    def journal(self) -> Journal:
        """Where this command's steps are recorded (nothing in a dry run)."""
        return Journal(self.store, self.name, self.uuid, self.progress, dry_run=self.dry_run)

    def nodes(self) -> list[NodeRow]:
        """The cluster's nodes as the state has them now."""
        return self.store.nodes(self.uuid)

    def addressed(self) -> list[NodeRow]:
        """The cluster's nodes that have a public IP (a VM that ran)."""
        return [n for n in self.nodes() if n.public_ip]


def first_master_of(rows: list[NodeRow]) -> str | None:
    """The cluster's first master among `rows` (the lowest name), or None: the node Kubernetes
    is set up from and reached through."""
    return min((n.name for n in rows if n.role == "master"), default=None)
