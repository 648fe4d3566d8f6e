"""The state store: SQLite in the user's data directory (override: --state-dir or CAST_HOME).

The cloud (its tags) is the truth about what exists; this store is a journal, a cache and the
home of the cluster's secrets. Every change runs in a transaction. The database file and the
secrets directory are created on the first write, never by a read, so a rejected command
leaves nothing behind. One writer per cluster at a time: `lock()` names its holder (pid, host,
start time) and takes over a stale one (a dead process on this host).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError, LockHeldError
from ..private_files import create_private_file, trusted_dir, write_private_file
from ..processes import process_start
from ..state_rows import RowError, check_cluster_row, check_node_row
from .local_secrets import LocalSecrets
from .rows import ClusterRow, JournalEntry, LockHolder, NodeRow, StateError

__all__ = ["StateStore", "write_private_file"]

SCHEMA_VERSION = 1
DB_NAME = "state.db"
BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's write to finish

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clusters (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    cluster_uuid TEXT NOT NULL REFERENCES clusters(uuid) ON DELETE CASCADE,
    name TEXT NOT NULL,
    cloud TEXT NOT NULL,
    role TEXT NOT NULL,
    mesh_ip TEXT NOT NULL,
    size TEXT NOT NULL,
    status TEXT NOT NULL,
    cloud_id TEXT,
    public_ip TEXT,
    private_ip TEXT,
    host_key TEXT NOT NULL,
    wg_public_key TEXT,
    PRIMARY KEY (cluster_uuid, name)
);
CREATE TABLE IF NOT EXISTS resources (
    cluster_uuid TEXT NOT NULL REFERENCES clusters(uuid) ON DELETE CASCADE,
    cloud TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (cluster_uuid, cloud, kind, id)
);
CREATE TABLE IF NOT EXISTS allocations (
    cluster_uuid TEXT NOT NULL REFERENCES clusters(uuid) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (cluster_uuid, kind, value)
);
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_uuid TEXT NOT NULL,
    cloud TEXT NOT NULL,
    step TEXT NOT NULL,
    phase TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS locks (
    cluster TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    proc_start TEXT NOT NULL,
    command TEXT NOT NULL,
    started_at REAL NOT NULL
);
"""


class StateStore(LocalSecrets):
    """The state of every cluster on this machine (or under one --state-dir)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.db_path = self.root / DB_NAME
        # This process's writers take turns here, not in SQLite's busy handler, which sleeps
        # up to 100 ms a try and lets some threads wait far longer than others (24 nodes
        # journaling their host-key rotations at once: one waited 1.2 s). Other processes
        # still wait in the busy handler. The turn also makes the first write connection,
        # which sets WAL mode and the schema, the only one (two threads switching a new
        # database to WAL at once get "database is locked" at once, without the busy timeout).
        self._writing = threading.RLock()
        self._set_up = False

    # --- connections -------------------------------------------------------------------

    @property
    def location(self) -> str:
        """Where this store lives, as a user would name it (`cast list` shows it)."""
        return str(self.root)

    def exists(self) -> bool:
        return self.db_path.exists()

    def _prepare(self, *, write: bool) -> None:
        """Refuse a root others own or can write to (UntrustedPathError), chmod it 0700, and
        make the database 0600 before SQLite opens it: SQLite gives its -wal and -shm files
        the database's mode, so they are 0600 from their first byte too."""
        if write:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        trusted_dir(self.root)
        if write:
            create_private_file(self.db_path)
        for suffix in ("-wal", "-shm"):  # left 0644 by an older cast
            side = self.db_path.with_name(DB_NAME + suffix)
            if side.exists():
                create_private_file(side)

    @contextlib.contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        self._prepare(write=write)
        conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if write and not self._set_up:  # only under self._writing (transaction)
                conn.execute("PRAGMA journal_mode = WAL")
                self._migrate(conn)
                self._set_up = True
            else:
                self._check_version(conn)
            yield conn
        finally:
            conn.close()

    def _check_version(self, conn: sqlite3.Connection) -> int | None:
        """The store's schema version (None for a new store); StateError when it is newer
        than this cast understands."""
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:
            return None
        if row and int(row[0]) > SCHEMA_VERSION:
            raise StateError(
                f"{self.db_path}: schema version {row[0]} is newer than this cast understands "
                f"({SCHEMA_VERSION}); upgrade cast"
            )
        return int(row[0]) if row else None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        if self._check_version(conn) == SCHEMA_VERSION:
            return  # up to date: no write lock taken just to open the store
        conn.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
        os.chmod(self.db_path, 0o600)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: all of it or none of it. Raises StateError when the store
        stays locked for longer than the busy timeout (one deadline for the wait for this
        process's other writers and for another process's write)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        if not self._writing.acquire(timeout=BUSY_TIMEOUT_S):
            raise self._busy()
        try:
            with self._connect(write=True) as conn:
                conn.execute(f"PRAGMA busy_timeout = {max(1, int((deadline - time.monotonic()) * 1000))}")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            raise self._busy() from None
        finally:
            self._writing.release()

    def _busy(self) -> StateError:
        return StateError(
            f"{self.db_path} is busy: another cast process has been writing to it for {BUSY_TIMEOUT_S:.0f} s "
            "(is one suspended, e.g. with Ctrl-Z?). Let it finish, then run this again."
        )

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if not self.exists():
            return []
        with self._connect(write=False) as conn:
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError:
                return []

    # --- clusters ----------------------------------------------------------------------

    def create_cluster(self, uuid: str, name: str, region: str, spec: dict[str, Any]) -> ClusterRow:
        """Record a new cluster (status 'creating')."""
        now = time.time()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO clusters (uuid, name, region, spec, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, 'creating', ?, ?)",
                (uuid, name, region, json.dumps(spec), now, now),
            )
        cluster = self.cluster(name)
        assert cluster is not None
        return cluster

    def cluster(self, name: str) -> ClusterRow | None:
        """The cluster named `name`, or None. StateError when its row fails the checks of
        state_rows (as does every row loaded: whoever wrote the file, cast checks it)."""
        rows = self._read("SELECT * FROM clusters WHERE name = ?", (name,))
        return self._cluster(rows[0]) if rows else None

    def clusters(self) -> list[ClusterRow]:
        return [self._cluster(r) for r in self._read("SELECT * FROM clusters ORDER BY name")]

    def _checked(self, check: Callable[..., None], *args: Any) -> None:
        try:
            check(*args)
        except RowError as exc:
            raise StateError(f"{self.db_path}: {exc}: cast did not write this; refusing to use the store "
                             "(who else can write it?)") from None

    def _cluster(self, row: sqlite3.Row) -> ClusterRow:
        data = dict(row)
        try:
            data["spec"] = json.loads(data["spec"])
        except (TypeError, ValueError):
            raise StateError(f"{self.db_path}: clusters row {data.get('name')!r}: field spec is not JSON") from None
        self._checked(check_cluster_row, data)
        return ClusterRow(**data)

    def require_cluster(self, name: str) -> ClusterRow:
        """The cluster named `name`; InputError (exit 2) naming the clusters there are when
        there is none."""
        row = self.cluster(name)
        if row is None:
            known = ", ".join(c.name for c in self.clusters()) or "none"
            raise InputError("NAME", f"no cluster named {name!r}", known)
        return row

    def update_cluster(self, uuid: str, *, status: str | None = None, spec: dict[str, Any] | None = None) -> None:
        with self.transaction() as conn:
            if status is not None:
                conn.execute(
                    "UPDATE clusters SET status = ?, updated_at = ? WHERE uuid = ?", (status, time.time(), uuid)
                )
            if spec is not None:
                conn.execute(
                    "UPDATE clusters SET spec = ?, updated_at = ? WHERE uuid = ?", (json.dumps(spec), time.time(), uuid)
                )

    def forget_cluster(self, uuid: str) -> None:
        """Remove a cluster and everything recorded about it (after the clouds confirmed deletion)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM clusters WHERE uuid = ?", (uuid,))
            conn.execute("DELETE FROM journal WHERE cluster_uuid = ?", (uuid,))
        secrets = self.secrets_dir(uuid, create=False)
        if secrets.exists():
            for f in secrets.iterdir():
                f.unlink()
            secrets.rmdir()

    # --- nodes -------------------------------------------------------------------------

    def upsert_node(self, node: NodeRow) -> None:
        self.upsert_nodes([node])

    def upsert_nodes(self, nodes: Sequence[NodeRow]) -> None:
        """Insert or update these node rows in one transaction."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (cluster_uuid, name) DO UPDATE SET status = excluded.status, "
                "cloud_id = excluded.cloud_id, public_ip = excluded.public_ip, "
                "private_ip = excluded.private_ip, wg_public_key = excluded.wg_public_key, "
                "size = excluded.size, host_key = excluded.host_key",
                [(n.cluster_uuid, n.name, n.cloud, n.role, n.mesh_ip, n.size, n.status, n.cloud_id, n.public_ip,
                  n.private_ip, n.host_key, n.wg_public_key) for n in nodes],
            )

    def nodes(self, cluster_uuid: str) -> list[NodeRow]:
        """The cluster's nodes; StateError naming the row and field when one fails state_rows' checks."""
        from ..regions import CLOUDS, ROLES

        rows = [dict(r) for r in
                self._read("SELECT * FROM nodes WHERE cluster_uuid = ? ORDER BY cloud, role, name", (cluster_uuid,))]
        for data in rows:
            self._checked(check_node_row, data, CLOUDS, ROLES)
        return [NodeRow(**data) for data in rows]

    def delete_node(self, cluster_uuid: str, name: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM nodes WHERE cluster_uuid = ? AND name = ?", (cluster_uuid, name))

    # --- allocations (never released while the cluster lives) ---------------------------

    def allocate(self, cluster_uuid: str, kind: str, values: dict[str, str]) -> None:
        """Record allocations {value: owner} of a kind (e.g. mesh addresses, node names)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO allocations VALUES (?, ?, ?, ?)",
                [(cluster_uuid, kind, value, owner) for value, owner in values.items()],
            )

    def allocations(self, cluster_uuid: str, kind: str) -> dict[str, str]:
        rows = self._read(
            "SELECT value, owner FROM allocations WHERE cluster_uuid = ? AND kind = ?", (cluster_uuid, kind)
        )
        return {r["value"]: r["owner"] for r in rows}

    def all_allocations(self, cluster_uuid: str) -> dict[str, dict[str, str]]:
        """Every allocation of the cluster, {kind: {value: owner}}."""
        found: dict[str, dict[str, str]] = {}
        for r in self._read("SELECT kind, value, owner FROM allocations WHERE cluster_uuid = ?", (cluster_uuid,)):
            found.setdefault(r["kind"], {})[r["value"]] = r["owner"]
        return found

    # --- resources (a cache of what the clouds reported) ---------------------------------

    def record_resources(self, cluster_uuid: str, cloud: str, resources: list[tuple[str, str, str]]) -> None:
        """Record (kind, id, name) resources found or made on a cloud."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO resources VALUES (?, ?, ?, ?, ?)",
                [(cluster_uuid, cloud, kind, rid, name) for kind, rid, name in resources],
            )

    def resources(self, cluster_uuid: str) -> list[tuple[str, str, str, str]]:
        rows = self._read(
            "SELECT cloud, kind, id, name FROM resources WHERE cluster_uuid = ? ORDER BY cloud, kind", (cluster_uuid,)
        )
        return [(r["cloud"], r["kind"], r["id"], r["name"]) for r in rows]

    def forget_resources(self, cluster_uuid: str, cloud: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM resources WHERE cluster_uuid = ? AND cloud = ?", (cluster_uuid, cloud))

    # --- journal -----------------------------------------------------------------------

    def journal(self, cluster_uuid: str, cloud: str, step: str, phase: str, detail: str = "") -> None:
        """Append to the journal: phase is begin, end or fail. Never pass a secret as detail."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO journal (cluster_uuid, cloud, step, phase, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
                (cluster_uuid, cloud, step, phase, detail, time.time()),
            )

    def last_journal(self, cluster_uuid: str, cloud: str, step: str) -> tuple[str, str] | None:
        """The newest journal entry of one step as (phase, detail), or None if it never ran."""
        rows = self._read(
            "SELECT phase, detail FROM journal WHERE cluster_uuid = ? AND cloud = ? AND step = ? "
            "ORDER BY id DESC LIMIT 1",
            (cluster_uuid, cloud, step),
        )
        return (rows[0]["phase"], rows[0]["detail"]) if rows else None

    def journal_entries(self, cluster_uuid: str) -> list[JournalEntry]:
        """The whole journal of a cluster, oldest first."""
        rows = self._read("SELECT cloud, step, phase, detail, at FROM journal WHERE cluster_uuid = ? ORDER BY id",
                          (cluster_uuid,))
        return [JournalEntry(r["cloud"], r["step"], r["phase"], r["detail"], r["at"]) for r in rows]

    def append_journal(self, cluster_uuid: str, entries: list[JournalEntry]) -> None:
        """Append entries as they are (e.g. a journal moved from another store), in one transaction."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO journal (cluster_uuid, cloud, step, phase, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
                [(cluster_uuid, e.cloud, e.step, e.phase, e.detail, e.at) for e in entries],
            )

    # --- the per-cluster lock ------------------------------------------------------------

    def lock_holder(self, cluster: str) -> LockHolder | None:
        rows = self._read("SELECT pid, host, proc_start, command, started_at FROM locks WHERE cluster = ?", (cluster,))
        return LockHolder(**dict(rows[0])) if rows else None

    @staticmethod
    def _is_stale(holder: LockHolder) -> bool:
        if holder.host != socket.gethostname():
            return False  # cannot see another host's processes: assume it is alive
        return process_start(holder.pid) != holder.proc_start

    @contextlib.contextmanager
    def lock(self, cluster: str, command: str) -> Iterator[None]:
        """Hold the cluster's lock for the duration of the block. Raises LockHeldError (exit 4)
        naming the holder when another live process holds it; a stale lock is taken over."""
        pid = os.getpid()
        me = LockHolder(pid, socket.gethostname(), process_start(pid), command, time.time())
        # Read first: a live holder is named at once, even while it is in the middle of a
        # write (readers never wait in WAL mode); the write below then only races a newcomer.
        holder = self.lock_holder(cluster)
        if holder and (holder.pid, holder.host) != (pid, me.host) and not self._is_stale(holder):
            raise LockHeldError(f"cluster {cluster!r} is locked by {holder.describe()}; wait for it to finish")
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT pid, host, proc_start, command, started_at FROM locks WHERE cluster = ?", (cluster,)
            ).fetchone()
            if row:
                holder = LockHolder(**dict(row))
                if holder.pid == pid and holder.host == me.host:
                    raise LockHeldError(f"cluster {cluster!r}: this process already holds the lock")
                if not self._is_stale(holder):
                    raise LockHeldError(f"cluster {cluster!r} is locked by {holder.describe()}; wait for it to finish")
            conn.execute(
                "INSERT OR REPLACE INTO locks VALUES (?, ?, ?, ?, ?, ?)",
                (cluster, me.pid, me.host, me.proc_start, me.command, me.started_at),
            )
        try:
            yield
        finally:
            with self.transaction() as conn:
                conn.execute("DELETE FROM locks WHERE cluster = ? AND pid = ? AND host = ?", (cluster, me.pid, me.host))
