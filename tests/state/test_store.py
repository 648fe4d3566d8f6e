"""The object-storage store in this process, against moto over HTTP: the contract of
state.backend kept as the SQLite store keeps it, conditional writes, the lease and its
fencing token, and sealed secrets."""

from __future__ import annotations

import json
import time

import pytest

from provisioner.errors import InputError, LockHeldError
from provisioner.state import StateStore, open_store
from provisioner.state.lease import LeaseLostError, acquire, break_lease, read
from provisioner.state.sealing import SealError, new_key_file
from provisioner.state.transfer import move

from .cluster import make_local_cluster


def remote(tmp_path, bucket, key, wait=0.0):
    return open_store(f"s3://{bucket}/team", tmp_path / "home", key=key, lock_wait_s=wait)


def test_round_trip_matches_the_local_store(aws, tmp_path, bucket, kms_key):
    local = StateStore(tmp_path / "local")
    made = make_local_cluster(tmp_path / "local", "demo", nodes=3)
    store = remote(tmp_path, bucket, kms_key)
    moved = move(local, store, "demo", "state push", remote_first=True)
    assert (moved.nodes, moved.secrets) == (3, 5)
    uuid = made["uuid"]
    row = store.require_cluster("demo")
    assert row.uuid == uuid and row.region == "us-east" and row.spec["name"] == "demo"
    assert [n.name for n in store.nodes(uuid)] == ["demo-aws-m1", "demo-aws-w2", "demo-aws-w3"]
    assert store.allocations(uuid, "mesh") == {"10.4.0.1": "demo-aws-m1", "10.4.0.2": "demo-aws-w2",
                                               "10.4.0.3": "demo-aws-w3"}
    assert store.last_journal(uuid, "aws", "firewall") == ("end", "created")
    for name, data in made["secrets"].items():
        assert store.read_secret(uuid, name) == data
    assert local.cluster("demo") is None  # moved, not copied
    # a fresh process (a fresh store object) sees the same
    again = remote(tmp_path, bucket, kms_key)
    assert again.read_secret(uuid, "kubeconfig") == made["secrets"]["kubeconfig"]
    files = again.secrets_dir(uuid)
    assert (files / "ssh_key").read_bytes() == made["secrets"]["ssh_key"]
    assert oct((files / "ssh_key").stat().st_mode & 0o777) == "0o600"
    # and back
    back = move(again, StateStore(tmp_path / "local"), "demo", "state pull", remote_first=True)
    assert back.journal == 6 and StateStore(tmp_path / "local").read_secret(uuid, "kubeconfig") is not None
    assert again.clusters() == []


def test_secrets_need_the_key_and_the_right_one(aws, tmp_path, bucket, kms_key):
    make_local_cluster(tmp_path / "local", "demo")
    with pytest.raises(InputError, match="--state-key"):
        move(StateStore(tmp_path / "local"), remote(tmp_path, bucket, None), "demo", "state push", remote_first=True)
    assert StateStore(tmp_path / "local").cluster("demo") is not None  # nothing lost
    move(StateStore(tmp_path / "local"), remote(tmp_path, bucket, kms_key), "demo", "state push", remote_first=True)
    key_file = new_key_file(tmp_path / "other.key")
    wrong = remote(tmp_path, bucket, f"file://{key_file}")
    uuid = wrong.require_cluster("demo").uuid
    with pytest.raises(SealError, match="sealed with kms://"):
        wrong.read_secret(uuid, "ssh_key")


def test_file_key_seals_too(aws, tmp_path, bucket):
    key = f"file://{new_key_file(tmp_path / 'team.key')}"
    made = make_local_cluster(tmp_path / "local", "demo")
    move(StateStore(tmp_path / "local"), remote(tmp_path, bucket, key), "demo", "state push", remote_first=True)
    assert remote(tmp_path, bucket, key).read_secret(made["uuid"], "kubeconfig") == made["secrets"]["kubeconfig"]


def test_a_live_lease_is_refused_naming_its_holder_then_taken_over_after_expiry(aws, tmp_path, bucket, kms_key):
    store = remote(tmp_path, bucket, kms_key)
    holder = acquire(store.objects, "demo", "create-cluster", ttl=1.5)
    holder._stop.set()  # it stops renewing, as a killed process would
    with pytest.raises(LockHeldError, match=r"locked by pid \d+ on .*@.* \(create-cluster, since .*token 1"), \
            store.lock("demo", "add-node"):
        pass
    waiting = remote(tmp_path, bucket, kms_key, wait=10)
    start = time.monotonic()
    with waiting.lock("demo", "add-node"):
        waited = time.monotonic() - start
        assert read(store.objects, "demo")[0]["token"] == 2
    assert 1.4 <= waited < 4, waited
    assert read(store.objects, "demo")[0]["released"] is True


def test_a_taken_over_holder_is_fenced(aws, tmp_path, bucket, kms_key):
    made = make_local_cluster(tmp_path / "local", "demo")
    old = remote(tmp_path, bucket, kms_key)
    move(StateStore(tmp_path / "local"), old, "demo", "state push", remote_first=True)
    uuid = made["uuid"]
    with old.lock("demo", "reconcile"):
        old.journal(uuid, "aws", "network", "begin")
        old.lease_of("demo")._stop.set()  # paused: no renewal from here
        new = remote(tmp_path, bucket, kms_key, wait=10)
        with new.lock("demo", "reconcile"):
            with pytest.raises(LeaseLostError, match="taken over"):
                old.journal(uuid, "aws", "network", "end")
            new.journal(uuid, "aws", "network", "end", "by the new holder")
    fresh = remote(tmp_path, bucket, kms_key)
    assert fresh.last_journal(uuid, "aws", "network") == ("end", "by the new holder")
    assert [e.phase for e in fresh.journal_entries(uuid) if e.step == "lease"] == ["takeover"]


def test_unlock_refuses_a_live_lease_unless_forced_and_fences_its_holder(aws, tmp_path, bucket, kms_key):
    store = remote(tmp_path, bucket, kms_key)
    lease = acquire(store.objects, "demo", "create-cluster")
    with pytest.raises(LockHeldError, match="refusing to unlock a live lease"):
        break_lease(store.objects, "demo", force=False)
    doc, before = break_lease(store.objects, "demo", force=True)
    assert before == "live" and doc["token"] == 1
    with store.lock("demo", "create-cluster"):
        assert store.lease_of("demo").token == 3
    lease._stop.set()


def test_a_forced_unlock_fences_the_holder_at_once(aws, tmp_path, bucket, kms_key):
    made = make_local_cluster(tmp_path / "local", "demo")
    holder = remote(tmp_path, bucket, kms_key)
    move(StateStore(tmp_path / "local"), holder, "demo", "state push", remote_first=True)
    with holder.lock("demo", "add-node"):
        doc, before = remote(tmp_path, bucket, kms_key).break_lock("demo", force=True)
        assert before == "live" and doc["holder"]["command"] == "add-node"
        with pytest.raises(LeaseLostError):
            holder.journal(made["uuid"], "aws", "vms", "begin")


def test_concurrent_writers_lose_nothing(aws, tmp_path, bucket, kms_key):
    """Writers outside a lease (two store objects) interleave: conditional writes keep every change."""
    made = make_local_cluster(tmp_path / "local", "demo")
    move(StateStore(tmp_path / "local"), remote(tmp_path, bucket, kms_key), "demo", "state push", remote_first=True)
    a, b = remote(tmp_path, bucket, kms_key), remote(tmp_path, bucket, kms_key)
    uuid = made["uuid"]
    a.cluster("demo"), b.cluster("demo")
    for i in range(5):
        a.journal(uuid, "aws", f"a{i}", "end")
        b.journal(uuid, "aws", f"b{i}", "end")
    steps = [e.step for e in remote(tmp_path, bucket, kms_key).journal_entries(uuid)]
    assert all(f"a{i}" in steps and f"b{i}" in steps for i in range(5))


def test_nothing_in_the_bucket_is_in_clear(aws, tmp_path, bucket, kms_key, s3):
    made = make_local_cluster(tmp_path / "local", "demo")
    store = remote(tmp_path, bucket, kms_key)
    move(StateStore(tmp_path / "local"), store, "demo", "state push", remote_first=True)
    blobs = [s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
             for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(blobs) == 6  # the lease, the document, four sealed secrets
    for blob in blobs:
        assert b"PRIVATE KEY" not in blob and made["token"].encode() not in blob and b"apiVersion" not in blob
        for secret in made["secrets"].values():
            assert secret not in blob and secret.splitlines()[1] not in blob
    sealed = [json.loads(b) for b in blobs if b.startswith(b'{"ciphertext"') or b'"cast-sealed-1"' in b]
    assert len(sealed) == 4 and all(s["key"] == kms_key for s in sealed)


def test_a_renewed_lease_is_never_taken_over(aws, tmp_path, bucket, kms_key):
    store = remote(tmp_path, bucket, kms_key)
    holder = acquire(store.objects, "demo", "reconcile", ttl=1.2)  # renews every 0.4 s
    try:
        waiting = remote(tmp_path, bucket, kms_key, wait=3.5)  # three times its ttl
        started = time.monotonic()
        with pytest.raises(LockHeldError, match="wait for it to finish"), waiting.lock("demo", "add-node"):
            pass
        assert time.monotonic() - started >= 3.5
        assert read(store.objects, "demo")[0]["renewals"] >= 7
    finally:
        holder.release()


def test_racers_for_a_dead_lease_one_takes_it_over(aws, tmp_path, bucket, kms_key):
    """A lease whose holder died long ago (its expiry a ttl past): eight takers at once, one wins."""
    import threading

    store = remote(tmp_path, bucket, kms_key)
    dead = acquire(store.objects, "demo", "create-cluster", ttl=1.0)
    dead._stop.set()
    time.sleep(2.2)  # expired, and a ttl more: dead by its own clock, no need to watch it
    won, refused = [], []
    go = threading.Barrier(8)

    def take(i: int) -> None:
        racer = remote(tmp_path / str(i), bucket, kms_key)
        go.wait()
        try:
            with racer.lock("demo", f"racer {i}"):
                won.append(i)
                time.sleep(1.0)
        except LockHeldError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 7, (won, refused)
    assert all(f"(racer {won[0]}, since" in r for r in refused)
    assert read(store.objects, "demo")[0]["token"] == 2


def test_a_long_journal_moves_its_old_entries_out_and_keeps_them_all(aws, tmp_path, bucket, kms_key, monkeypatch, s3):
    from provisioner.state import remote as remote_module

    monkeypatch.setattr(remote_module, "JOURNAL_KEEP", 10)
    monkeypatch.setattr(remote_module, "JOURNAL_MOVE", 5)
    made = make_local_cluster(tmp_path / "local", "demo")
    store = remote(tmp_path, bucket, kms_key)
    move(StateStore(tmp_path / "local"), store, "demo", "state push", remote_first=True)
    uuid = made["uuid"]
    for i in range(20):
        store.journal(uuid, "aws", f"step{i}", "end", str(i))
    fresh = remote(tmp_path, bucket, kms_key)
    steps = [e.step for e in fresh.journal_entries(uuid)]
    assert steps[-20:] == [f"step{i}" for i in range(20)] and len(steps) == 26
    assert fresh.last_journal(uuid, "aws", "step19") == ("end", "19")
    archives = s3.list_objects_v2(Bucket=bucket, Prefix="team/clusters/demo/journal/")["Contents"]
    assert len(archives) == 4  # 26 entries, 10 at most kept: four times 5 moved out, 6 left


def test_many_node_rows_are_one_conditional_write(aws, tmp_path, bucket, kms_key):
    from provisioner.keys import new_ed25519
    from provisioner.state import NodeRow

    host_key = new_ed25519("many").public
    store = remote(tmp_path, bucket, kms_key)
    uuid = "7d6f3c9e-1111-4222-8333-944455556666"
    with store.lock("many", "test"):
        store.create_cluster(uuid, "many", "us-east", {"name": "many"})
        rows = [NodeRow(uuid, f"many-aws-w{i}", "aws", "worker", f"10.4.0.{i}", "t3.medium", "planned",
                        None, None, None, host_key, None) for i in range(1, 21)]
        aws.clear_calls()
        store.upsert_node(rows[0])
        one = dict(aws.calls)
        aws.clear_calls()
        store.upsert_nodes(rows[1:])
        many = dict(aws.calls)
    assert many == one, (one, many)  # nineteen rows cost what one row costs: one conditional write
    assert sorted(n.name for n in store.nodes(uuid)) == sorted(r.name for r in rows)
