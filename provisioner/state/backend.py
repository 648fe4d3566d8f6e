"""The contract every state backend keeps: the methods the engine and the commands call.

Two backends keep it: SQLite in a local directory (`sqlite.StateStore`, the default) and
object storage shared by a team (`remote.RemoteStateStore` over an `objects.ObjectStore`:
S3 today; GCS and Azure Blob are each one more ObjectStore module). Writes of one cluster
happen inside `lock()`; on object storage every such write carries the lease's fencing token
and is refused (LeaseLostError, exit 4) once another run has taken the lease over.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from .rows import ClusterRow, JournalEntry, LockHolder, NodeRow


class StateBackend(Protocol):
    """A state store. Reads never create anything; a write is all or nothing."""

    root: Path  # a local directory of this user's: logs, and (object storage) a private cache

    @property
    def location(self) -> str:
        """Where the state lives, as the user names it: a directory or `s3://bucket/prefix`."""
        ...

    # clusters
    def create_cluster(self, uuid: str, name: str, region: str, spec: dict[str, Any]) -> ClusterRow:
        """Record a new cluster (status 'creating')."""
        ...

    def cluster(self, name: str) -> ClusterRow | None:
        """The cluster named `name`, or None; StateError when what is stored fails the row checks."""
        ...

    def clusters(self) -> list[ClusterRow]:
        """Every cluster, by name."""
        ...

    def require_cluster(self, name: str) -> ClusterRow:
        """The cluster named `name`; InputError (exit 2) naming the clusters there are."""
        ...

    def update_cluster(self, uuid: str, *, status: str | None = None, spec: dict[str, Any] | None = None) -> None:
        ...

    def forget_cluster(self, uuid: str) -> None:
        """Remove a cluster, its journal and its secrets (after the clouds confirmed deletion)."""
        ...

    # nodes, allocations, resources
    def upsert_node(self, node: NodeRow) -> None: ...

    def upsert_nodes(self, nodes: Sequence[NodeRow]) -> None:
        """Insert or update these node rows of one cluster in one write (one round trip on a
        remote store)."""
        ...

    def nodes(self, cluster_uuid: str) -> list[NodeRow]: ...

    def delete_node(self, cluster_uuid: str, name: str) -> None: ...

    def allocate(self, cluster_uuid: str, kind: str, values: dict[str, str]) -> None:
        """Record allocations {value: owner} of a kind; never released while the cluster lives."""
        ...

    def allocations(self, cluster_uuid: str, kind: str) -> dict[str, str]: ...

    def all_allocations(self, cluster_uuid: str) -> dict[str, dict[str, str]]: ...

    def record_resources(self, cluster_uuid: str, cloud: str, resources: list[tuple[str, str, str]]) -> None: ...

    def resources(self, cluster_uuid: str) -> list[tuple[str, str, str, str]]: ...

    def forget_resources(self, cluster_uuid: str, cloud: str) -> None: ...

    # journal
    def journal(self, cluster_uuid: str, cloud: str, step: str, phase: str, detail: str = "") -> None:
        """Append to the journal (phase begin, end, fail or skip); durable when it returns."""
        ...

    def last_journal(self, cluster_uuid: str, cloud: str, step: str) -> tuple[str, str] | None: ...

    def journal_entries(self, cluster_uuid: str) -> list[JournalEntry]: ...

    def append_journal(self, cluster_uuid: str, entries: list[JournalEntry]) -> None:
        """Append entries as they are, in one write (moving a journal between stores)."""
        ...

    # the per-cluster lock
    def lock(self, cluster: str, command: str) -> AbstractContextManager[None]:
        """Hold the cluster's lock for the block; LockHeldError (exit 4) naming a live holder."""
        ...

    def lock_holder(self, cluster: str) -> LockHolder | None: ...

    # secrets
    def secrets_dir(self, cluster_uuid: str, *, create: bool = True) -> Path:
        """A private local directory (0700) holding the cluster's secrets as files (0600)."""
        ...

    def write_secret(self, cluster_uuid: str, name: str, data: bytes) -> Path: ...

    def read_secret(self, cluster_uuid: str, name: str) -> bytes | None: ...

    def delete_secret(self, cluster_uuid: str, name: str) -> None: ...

    def secret_names(self, cluster_uuid: str) -> list[str]: ...
