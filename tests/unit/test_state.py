"""The state store: transactions, the lock that names its holder, secrets with mode 0600."""

import os
import stat
import subprocess
import sys

import pytest

from provisioner.errors import LockHeldError
from provisioner.state import SCHEMA_VERSION, NodeRow, StateError, StateStore


def test_reads_create_nothing(tmp_path):
    store = StateStore(tmp_path / "state")
    assert store.clusters() == [] and store.cluster("x") is None
    assert not (tmp_path / "state").exists()


def test_cluster_nodes_allocations_round_trip(tmp_path):
    store = StateStore(tmp_path)
    store.create_cluster("u-1", "demo", "us-east", {"name": "demo"})
    store.upsert_node(
        NodeRow(
            "u-1",
            "demo-aws-m1",
            "aws",
            "master",
            "10.4.0.1",
            "m6i.large",
            "planned",
            None,
            None,
            None,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmS+5RSqnYIqLBOj44vY3fOoaXBmd1vGL1VX+wOQTZH demo-aws-m1",
            None,
        )
    )
    store.allocate("u-1", "mesh", {"10.4.0.1": "demo-aws-m1"})
    assert [n.name for n in store.nodes("u-1")] == ["demo-aws-m1"]
    store.delete_node("u-1", "demo-aws-m1")
    assert store.nodes("u-1") == []
    assert store.allocations("u-1", "mesh") == {"10.4.0.1": "demo-aws-m1"}  # never released
    assert stat.S_IMODE(os.stat(store.db_path).st_mode) == 0o600


def test_a_failed_transaction_changes_nothing(tmp_path):
    store = StateStore(tmp_path)
    store.create_cluster("u-1", "demo", "us-east", {})
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("UPDATE clusters SET status = 'ready'")
        raise RuntimeError("crash")
    assert store.cluster("demo").status == "creating"


def test_secrets_are_0600_in_a_0700_directory(tmp_path):
    store = StateStore(tmp_path)
    path = store.write_secret("u-1", "ssh_key", b"secret")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.read_secret("u-1", "ssh_key") == b"secret"


def test_lock_names_its_holder_and_a_stale_lock_is_taken_over(tmp_path):
    store = StateStore(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from provisioner.state import StateStore; s = StateStore(sys.argv[1]);\n"
            "with s.lock('demo', 'create-cluster'):\n print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError) as err, store.lock("demo", "delete-cluster"):
            pass
        assert f"pid {holder.pid}" in str(err.value) and "create-cluster" in str(err.value)
        assert err.value.exit_code == 4
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: the lock is stale and is taken over
    with store.lock("demo", "delete-cluster"):
        assert store.lock_holder("demo").pid == os.getpid()
    assert store.lock_holder("demo") is None


def test_a_holder_suspended_mid_write_is_named_at_once_and_a_busy_store_is_a_clear_error(tmp_path, monkeypatch):
    import sqlite3
    import time

    from provisioner.errors import CastError
    from provisioner.state import sqlite as state_module

    store = StateStore(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; from provisioner.state import StateStore; s = StateStore(sys.argv[1]);\n"
            "with s.lock('demo', 'create-cluster'):\n"
            " c = sqlite3.connect(s.db_path, isolation_level=None); c.execute('BEGIN IMMEDIATE')\n"
            " print('writing', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    monkeypatch.setattr(state_module, "BUSY_TIMEOUT_S", 0.3)
    try:
        assert holder.stdout.readline().strip() == "writing"  # holds the lock and the store's write lock
        started = time.monotonic()
        with pytest.raises(LockHeldError) as err, store.lock("demo", "delete-cluster"):
            pass
        assert f"pid {holder.pid}" in str(err.value)
        assert time.monotonic() - started < 0.3  # named from a read, without waiting for the write
        with pytest.raises(CastError, match="is busy: another cast process has been writing to it") as busy:
            store.journal("u-1", "aws", "network", "begin")
        assert not isinstance(busy.value, sqlite3.Error)
    finally:
        holder.kill()
        holder.wait()


def test_newer_schema_is_refused(tmp_path):
    store = StateStore(tmp_path)
    store.create_cluster("u-1", "demo", "us-east", {})
    with store.transaction() as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StateError, match="newer"):
        store.clusters()
