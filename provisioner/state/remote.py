"""The state store on object storage, for teams: one document per cluster, written whole and
conditionally, under a lease.

Layout under `s3://bucket/prefix`:
  clusters/<name>/state.json            the cluster row, nodes, allocations, resources, the
                                        journal's recent entries, the index of its secrets,
                                        `fence` (the highest lease token that wrote it) and `rev`
  clusters/<name>/lease.json            the lease (lease.py)
  clusters/<name>/journal/<seq>.json    older journal entries, 500 at a time
  clusters/<name>/secrets/<name>.<id>   sealed secrets (sealing.py), never in clear

Every write reads the document, applies the change and writes it back If-Match the version
read (If-None-Match: * for a new one): a change either lands whole or not at all, and no
write is lost to another. Inside `lock()` a write carries the lease's token: a document
whose fence is higher (another run took the lease over and wrote since) refuses it with
LeaseLostError (exit 4), and so does a lease whose renewal was refused.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..state_rows import RowError, check_cluster_row, check_node_row
from . import lease as leases
from .objects import Conflict, ObjectStore, StoreUnavailable
from .remote_secrets import SealedSecrets
from .rows import ClusterRow, JournalEntry, LockHolder, NodeRow, StateError
from .sealing import Keyring

JOURNAL_KEEP = 1000  # entries kept in the document; older ones move to journal/<seq>.json
JOURNAL_MOVE = 500
WRITE_ATTEMPTS = 8
NODE_FIELDS = tuple(NodeRow.__dataclass_fields__)


def state_key(name: str) -> str:
    return f"clusters/{name}/state.json"


def empty_doc() -> dict[str, Any]:
    return {"format": "cast-state-1", "rev": 0, "fence": 0, "cluster": None, "nodes": {}, "allocations": {},
            "resources": [], "journal": [], "journal_seq": 0, "journal_archives": [], "secrets": {}}


class RemoteStateStore(SealedSecrets):
    """The state of a team's clusters under one bucket and prefix (see the module's docstring).
    `root` is a local directory of this user's for logs and the private secrets cache."""

    def __init__(self, objects: ObjectStore, root: Path, *, keyring: Keyring | None = None,
                 lock_wait_s: float = 0.0):
        self.objects = objects
        self.root = Path(root)
        self.keyring = keyring
        self.lock_wait_s = lock_wait_s
        self._docs: dict[str, tuple[dict[str, Any], str]] = {}  # name -> (document, version) last seen
        self._names: dict[str, str] = {}  # uuid -> name
        self._leases: dict[str, leases.Lease] = {}
        # The engine writes from a thread per cloud: one write at a time from this process
        # (conditional writes keep other processes' right; this only saves lost round trips).
        self._writing = threading.RLock()

    @property
    def location(self) -> str:
        return self.objects.url

    def exists(self) -> bool:
        return bool(self.objects.keys("clusters/"))

    # --- documents -----------------------------------------------------------------------

    def _load(self, name: str) -> tuple[dict[str, Any], str] | None:
        cached = self._docs.get(name)
        blob = self.objects.get(state_key(name), unless=cached[1] if cached else None)
        if blob is None:
            self._docs.pop(name, None)
            return None
        if cached and not blob.data and blob.version == cached[1]:
            return cached
        try:
            doc = json.loads(blob.data)
        except ValueError:
            raise StateError(f"{self.location}/{state_key(name)}: not JSON: cast did not write this") from None
        self._docs[name] = (doc, blob.version)
        if doc.get("cluster"):
            self._names[doc["cluster"]["uuid"]] = name
        return doc, blob.version

    def _name_of(self, cluster_uuid: str) -> str:
        if cluster_uuid not in self._names:
            self.clusters()
        if cluster_uuid not in self._names:
            raise StateError(f"{self.location}: no cluster with uuid {cluster_uuid}")
        return self._names[cluster_uuid]

    def _mutate(self, name: str, change: Callable[[dict[str, Any]], Any], *, create: bool = False) -> Any:
        """Apply `change` to the cluster's document and write it back conditionally (retried
        on a conflict with a fresh read). LeaseLostError when this run's lease was taken over."""
        with self._writing:
            return self._mutate_once(name, change, create=create)

    def _mutate_once(self, name: str, change: Callable[[dict[str, Any]], Any], *, create: bool) -> Any:
        lease = self._leases.get(name)
        for _ in range(WRITE_ATTEMPTS):
            if lease is not None and lease.lost:
                raise leases.LeaseLostError(f"cluster {name!r}: {lease.lost}; this run's write was refused")
            current = self._load(name)
            if current is None and not create:
                raise StateError(f"{self.location}: cluster {name!r} is not in the store (deleted meanwhile?)")
            doc = copy.deepcopy(current[0]) if current else empty_doc()
            if lease is not None and int(doc.get("fence", 0)) > lease.token:
                raise leases.LeaseLostError(
                    f"cluster {name!r}: the lease was taken over (token {doc['fence']} wrote the state, this run "
                    f"holds {lease.token}); this run's write was refused")
            result = change(doc)
            doc["rev"] = int(doc.get("rev", 0)) + 1
            doc["write_id"] = uuidlib.uuid4().hex
            if lease is not None:
                doc["fence"] = max(int(doc.get("fence", 0)), lease.token)
            data = json.dumps(doc, sort_keys=True).encode()
            try:
                version = self.objects.put(state_key(name), data, replaces=current[1] if current else None,
                                           create=current is None)
            except (Conflict, StoreUnavailable) as exc:
                landed = self.objects.get(state_key(name))  # a lost reply to a write that landed?
                if landed is None or json.loads(landed.data).get("write_id") != doc["write_id"]:
                    if isinstance(exc, StoreUnavailable):
                        raise
                    continue
                version = landed.version
            self._docs[name] = (doc, version)
            if doc.get("cluster"):
                self._names[doc["cluster"]["uuid"]] = name
            return result
        raise StateError(f"{self.location}: cluster {name!r}: the state kept changing under this write; run again")

    def _by_uuid(self, cluster_uuid: str, change: Callable[[dict[str, Any]], Any]) -> Any:
        return self._mutate(self._name_of(cluster_uuid), change)

    def _doc_of(self, cluster_uuid: str) -> dict[str, Any]:
        try:
            name = self._name_of(cluster_uuid)
        except StateError:
            return empty_doc()
        current = self._load(name)
        return current[0] if current else empty_doc()

    # --- clusters ------------------------------------------------------------------------

    def _row(self, doc: dict[str, Any]) -> ClusterRow | None:
        data = doc.get("cluster")
        if not data:
            return None
        try:
            check_cluster_row(data)
        except RowError as exc:
            raise StateError(f"{self.location}: {exc}: cast did not write this; refusing to use the store") from None
        return ClusterRow(**data)

    def create_cluster(self, uuid: str, name: str, region: str, spec: dict[str, Any]) -> ClusterRow:
        now = time.time()

        def change(doc: dict[str, Any]) -> None:
            if doc.get("cluster"):
                raise StateError(f"{self.location}: cluster {name!r} exists already")
            doc["cluster"] = {"uuid": uuid, "name": name, "region": region, "spec": spec, "status": "creating",
                              "created_at": now, "updated_at": now}

        self._mutate(name, change, create=True)
        row = self.cluster(name)
        assert row is not None
        return row

    def cluster(self, name: str) -> ClusterRow | None:
        current = self._load(name)
        return self._row(current[0]) if current else None

    def clusters(self) -> list[ClusterRow]:
        names = [k.split("/")[1] for k in self.objects.keys("clusters/") if k.endswith("/state.json")]
        rows = [self.cluster(n) for n in sorted(set(names))]
        return [r for r in rows if r is not None]

    def require_cluster(self, name: str) -> ClusterRow:
        row = self.cluster(name)
        if row is None:
            known = ", ".join(c.name for c in self.clusters()) or "none"
            raise InputError("NAME", f"no cluster named {name!r} in {self.location}", known)
        return row

    def update_cluster(self, uuid: str, *, status: str | None = None, spec: dict[str, Any] | None = None) -> None:
        def change(doc: dict[str, Any]) -> None:
            if status is not None:
                doc["cluster"]["status"] = status
            if spec is not None:
                doc["cluster"]["spec"] = spec
            doc["cluster"]["updated_at"] = time.time()

        self._by_uuid(uuid, change)

    def forget_cluster(self, uuid: str) -> None:
        """Remove the cluster's document, journal and sealed secrets; the lease stays (with its token)."""
        name = self._name_of(uuid)
        self._mutate(name, lambda doc: doc.update(cluster=None, secrets={}))  # fenced: refused once taken over
        for key in self.objects.keys(f"clusters/{name}/"):
            if not key.endswith("/lease.json") and not key.endswith("/state.json"):
                self.objects.delete(key)
        current = self._load(name)
        if current is not None:
            self.objects.delete(state_key(name), replaces=current[1])
        self._docs.pop(name, None)
        self._names.pop(uuid, None)
        self._drop_cache(uuid)

    # --- nodes, allocations, resources -----------------------------------------------------

    def upsert_node(self, node: NodeRow) -> None:
        self.upsert_nodes([node])

    def upsert_nodes(self, nodes: Sequence[NodeRow]) -> None:
        """Insert or update these node rows (of one cluster) in one conditional write."""
        if nodes:
            self._by_uuid(nodes[0].cluster_uuid,
                          lambda doc: doc["nodes"].update({n.name: n.__dict__.copy() for n in nodes}))

    def nodes(self, cluster_uuid: str) -> list[NodeRow]:
        from ..regions import CLOUDS, ROLES

        rows = []
        for data in self._doc_of(cluster_uuid)["nodes"].values():
            try:
                check_node_row(data, CLOUDS, ROLES)
            except RowError as exc:
                raise StateError(f"{self.location}: {exc}: cast did not write this; refusing it") from None
            rows.append(NodeRow(**{f: data.get(f) for f in NODE_FIELDS}))
        return sorted(rows, key=lambda n: (n.cloud, n.role, n.name))

    def delete_node(self, cluster_uuid: str, name: str) -> None:
        self._by_uuid(cluster_uuid, lambda doc: doc["nodes"].pop(name, None))

    def allocate(self, cluster_uuid: str, kind: str, values: dict[str, str]) -> None:
        def change(doc: dict[str, Any]) -> None:
            known = doc["allocations"].setdefault(kind, {})
            for value, owner in values.items():
                known.setdefault(value, owner)

        self._by_uuid(cluster_uuid, change)

    def allocations(self, cluster_uuid: str, kind: str) -> dict[str, str]:
        return dict(self._doc_of(cluster_uuid)["allocations"].get(kind, {}))

    def all_allocations(self, cluster_uuid: str) -> dict[str, dict[str, str]]:
        return copy.deepcopy(self._doc_of(cluster_uuid)["allocations"])

    def record_resources(self, cluster_uuid: str, cloud: str, resources: list[tuple[str, str, str]]) -> None:
        def change(doc: dict[str, Any]) -> None:
            new = {(cloud, kind, rid): name for kind, rid, name in resources}
            kept = [r for r in doc["resources"] if (r[0], r[1], r[2]) not in new]
            doc["resources"] = kept + [[c, k, i, n] for (c, k, i), n in new.items()]

        if resources:
            self._by_uuid(cluster_uuid, change)

    def resources(self, cluster_uuid: str) -> list[tuple[str, str, str, str]]:
        return sorted((r[0], r[1], r[2], r[3]) for r in self._doc_of(cluster_uuid)["resources"])

    def forget_resources(self, cluster_uuid: str, cloud: str) -> None:
        self._by_uuid(cluster_uuid, lambda doc: doc.update(resources=[r for r in doc["resources"] if r[0] != cloud]))

    # --- journal ---------------------------------------------------------------------------

    def journal(self, cluster_uuid: str, cloud: str, step: str, phase: str, detail: str = "") -> None:
        """Append to the journal; durable (in the bucket) when it returns. Never pass a secret."""
        name = self._name_of(cluster_uuid)

        def change(doc: dict[str, Any]) -> None:
            doc["journal_seq"] = int(doc.get("journal_seq", 0)) + 1
            doc["journal"].append([doc["journal_seq"], cloud, step, phase, detail, time.time()])
            self._archive(name, doc)

        self._mutate(name, change)

    def _archive(self, name: str, doc: dict[str, Any]) -> None:
        """Move the oldest entries out of a document whose journal grew past JOURNAL_KEEP; each
        archive is written before the document that stops holding its entries."""
        while len(doc["journal"]) > JOURNAL_KEEP:
            moved, doc["journal"] = doc["journal"][:JOURNAL_MOVE], doc["journal"][JOURNAL_MOVE:]
            key = f"clusters/{name}/journal/{moved[0][0]:012d}.json"
            self.objects.put(key, json.dumps(moved).encode())
            doc["journal_archives"].append(key)

    def last_journal(self, cluster_uuid: str, cloud: str, step: str) -> tuple[str, str] | None:
        for entry in reversed(self._doc_of(cluster_uuid)["journal"]):
            if entry[1] == cloud and entry[2] == step:
                return entry[3], entry[4]
        return None  # steps look only at their newest entry, which is never older than the kept ones

    def journal_entries(self, cluster_uuid: str) -> list[JournalEntry]:
        doc = self._doc_of(cluster_uuid)
        entries: list[list[Any]] = []
        for key in doc.get("journal_archives", []):
            blob = self.objects.get(key)
            entries.extend(json.loads(blob.data) if blob else [])
        entries.extend(doc["journal"])
        return [JournalEntry(e[1], e[2], e[3], e[4], e[5]) for e in entries]

    def append_journal(self, cluster_uuid: str, entries: list[JournalEntry]) -> None:
        """Append entries as they are (a journal moved from another store), in one write."""
        name = self._name_of(cluster_uuid)

        def change(doc: dict[str, Any]) -> None:
            for e in entries:
                doc["journal_seq"] = int(doc.get("journal_seq", 0)) + 1
                doc["journal"].append([doc["journal_seq"], e.cloud, e.step, e.phase, e.detail, e.at])
            self._archive(name, doc)

        if entries:
            self._mutate(name, change)

    # --- the lease -------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, cluster: str, command: str) -> Iterator[None]:
        """Hold the cluster's lease for the block (see lease.py): LockHeldError (exit 4) naming
        a live holder after `lock_wait_s`; an expired one is taken over. Then every write of
        this cluster carries the lease's token."""
        if cluster in self._leases:
            raise leases.LockHeldError(f"cluster {cluster!r}: this process already holds the lock")

        def last_token() -> int:
            current = self._load(cluster)
            return int(current[0].get("fence", 0)) if current else 0

        lease = leases.acquire(self.objects, cluster, command, wait_s=self.lock_wait_s, last_token=last_token)
        self._leases[cluster] = lease
        try:
            # The fence goes up at once: from here a run whose lease this took over cannot write.
            self._mutate(cluster, lambda doc: None, create=True)
            if lease.taken_from is not None and (row := self.cluster(cluster)) is not None:
                self.journal(row.uuid, "cluster", "lease", "takeover", f"from {lease.taken_from.describe()}")
            yield
        finally:
            self._leases.pop(cluster, None)
            current = self._docs.get(cluster)
            if current is not None and current[0].get("cluster") is None and not lease.lost:
                with contextlib.suppress(Conflict, StoreUnavailable):  # only our own placeholder goes
                    self.objects.delete(state_key(cluster), replaces=current[1])
                self._docs.pop(cluster, None)
            lease.release()

    def break_lock(self, cluster: str, *, force: bool) -> tuple[dict[str, Any] | None, str]:
        """`cast state unlock`: release the lease with a new token (lease.break_lease) and raise
        the state's fence to it, so that its holder, should it still run, cannot write again."""
        doc, before = leases.break_lease(self.objects, cluster, force=force)
        if doc is not None and before != "released" and self._load(cluster) is not None:
            token = int(doc.get("token", 0)) + 1

            def fence(state: dict[str, Any]) -> None:
                state["fence"] = max(int(state.get("fence", 0)), token)

            self._mutate(cluster, fence)
        return doc, before

    def lock_holder(self, cluster: str) -> LockHolder | None:
        current = leases.read(self.objects, cluster)
        if current is None or leases.state_of(current[0], time.time()) == "released":
            return None
        return leases.holder_of(current[0])

    def lease_of(self, cluster: str) -> leases.Lease | None:
        """The lease this process holds on `cluster`, if any."""
        return self._leases.get(cluster)
