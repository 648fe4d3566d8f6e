"""Real `cast` processes sharing one bucket (moto over HTTP, through the fault proxy): races for
a cluster's lease, a holder killed with SIGKILL or paused with SIGSTOP, S3 faults during
writes. The command is `cast state push`, which takes the cluster's lease and writes its whole
state (document, journal, sealed secrets) into the bucket."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.sandbox.aws_fault_proxy import dropped, s3_fault

from .cluster import make_local_cluster

CAST = [sys.executable, "-m", "provisioner.cli"]


def start(env: dict[str, str], home: Path, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([*CAST, *args], env={**env, "CAST_HOME": str(home), **extra},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def homes(tmp_path: Path, count: int) -> tuple[list[Path], dict]:
    """`count` local stores (one per machine) holding the same cluster."""
    made = make_local_cluster(tmp_path / "home0", "demo", nodes=3)
    for i in range(1, count):
        shutil.copytree(tmp_path / "home0", tmp_path / f"home{i}")
    return [tmp_path / f"home{i}" for i in range(count)], made


def bucket_objects(s3, bucket: str) -> dict[str, bytes]:
    found = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in found}


def check_complete(s3, bucket: str, made: dict) -> dict:
    """The bucket holds the whole cluster once: every node, every secret sealed exactly once and
    pointed at, nothing else (no orphan), the journal without a duplicate."""
    objects = bucket_objects(s3, bucket)
    doc = json.loads(objects["team/clusters/demo/state.json"])
    assert doc["cluster"]["uuid"] == made["uuid"]
    assert sorted(doc["nodes"]) == ["demo-aws-m1", "demo-aws-w2", "demo-aws-w3"]
    assert sorted(doc["secrets"]) == sorted(made["secrets"])
    sealed = {k for k in objects if "/secrets/" in k}
    assert sealed == {f"team/{k}" for k in doc["secrets"].values()}, "orphan or missing sealed secrets"
    copied = [e for e in doc["journal"] if e[1] == "aws"]
    assert len(copied) == 6, copied
    assert_nothing_in_clear(objects, made)
    return doc


def assert_nothing_in_clear(objects: dict[str, bytes], made: dict) -> None:
    for key, blob in objects.items():
        assert b"PRIVATE KEY" not in blob and b"PrivateKey" not in blob, key
        assert made["token"].encode() not in blob and b"apiVersion" not in blob and b"users:" not in blob, key
        for secret in made["secrets"].values():
            assert secret.splitlines()[1] not in blob, key


@pytest.mark.parametrize("racers", [2, 8])
def test_racers_for_one_cluster_exactly_one_proceeds(cast_env, tmp_path, bucket, s3, aws, racers):
    stores, made = homes(tmp_path, racers)
    aws.api_delay_s = 0.15  # a push takes seconds, as over a real network: the others arrive meanwhile
    began = time.monotonic()
    runs = [start(cast_env, home, "state", "push", "demo") for home in stores]
    ended: dict[int, float] = {}
    while len(ended) < len(runs) and time.monotonic() - began < 120:
        ended.update({p.pid: time.monotonic() - began for p in runs if p.pid not in ended and p.poll() is not None})
        time.sleep(0.02)
    results = [(p, *p.communicate(timeout=120)) for p in runs]
    winners = [p for p, _, _ in results if p.returncode == 0]
    losers = [(p, err) for p, _, err in results if p.returncode != 0]
    assert len(winners) == 1, [(p.returncode, err[-300:]) for p, _, err in results]
    for p, err in losers:
        assert p.returncode == 4, err
        assert f"locked by pid {winners[0].pid} on " in err and "(state push, since" in err, err
    aws.api_delay_s = 0.0
    check_complete(s3, bucket, made)
    refused = sorted(ended[p.pid] for p, _ in losers)
    print(f"\n{racers} racers: 1 proceeded ({ended[winners[0].pid]:.1f} s), {len(losers)} exited 4 "
          f"after {refused[0]:.1f}-{refused[-1]:.1f} s (start-up included)")


def test_killed_holder_next_run_waits_takes_over_and_completes(cast_env, tmp_path, bucket, s3, aws):
    (home,), made = homes(tmp_path, 1)
    aws.api_delay_s = 0.15
    victim = start(cast_env, home, "state", "push", "demo")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it mid-push: the cluster is in the bucket, half its secrets too
        objects = bucket_objects(s3, bucket)
        if sum("/secrets/" in k for k in objects) >= 2:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    aws.api_delay_s = 0.0
    partial = bucket_objects(s3, bucket)
    assert 2 <= sum("/secrets/" in k for k in partial) < len(made["secrets"])
    began = time.monotonic()
    again = start(cast_env, home, "state", "push", "demo", CAST_LOCK_WAIT="30")
    out, err = again.communicate(timeout=60)
    waited = time.monotonic() - began
    assert again.returncode == 0, err
    print(f"\nkill -9 mid-push: the next run took over and completed in {waited:.1f} s (lease ttl 2 s)")
    assert waited >= 1.5  # it waited for the lease rather than barging in
    doc = check_complete(s3, bucket, made)
    takeovers = [e for e in doc["journal"] if e[2] == "lease"]
    assert len(takeovers) == 1 and f"pid {victim.pid}" in takeovers[0][4]
    assert "moved demo" in out


def test_paused_holder_is_fenced_when_it_resumes(cast_env, tmp_path, bucket, s3, aws):
    stores, made = homes(tmp_path, 2)
    aws.api_delay_s = 0.15
    paused = start(cast_env, stores[0], "state", "push", "demo")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if sum("/secrets/" in k for k in bucket_objects(s3, bucket)) >= 1:
            break
        time.sleep(0.05)
    paused.send_signal(signal.SIGSTOP)
    aws.api_delay_s = 0.0
    taker = start(cast_env, stores[1], "state", "push", "demo", CAST_LOCK_WAIT="30")
    out, err = taker.communicate(timeout=60)
    assert taker.returncode == 0, err
    paused.send_signal(signal.SIGCONT)
    _, err = paused.communicate(timeout=60)
    assert paused.returncode == 4, err
    assert "taken over" in err and "refused" in err, err
    doc = json.loads(bucket_objects(s3, bucket)["team/clusters/demo/state.json"])
    assert doc["fence"] == 2 and sorted(doc["secrets"]) == sorted(made["secrets"])
    assert (stores[0] / "state.db").exists()  # the fenced run kept its local copy: nothing lost


@pytest.mark.parametrize("fault", [  # an episode of faults: a burst, then the service recovers
    s3_fault("SlowDown", 503, every=2, times=20),
    s3_fault("InternalError", 500, every=3, times=20),
    dropped("reply", frozenset({"PutObject"}), every=2, times=12),
    dropped("request", every=3, times=12),
], ids=["throttling", "5xx", "reply-lost", "request-lost"])
def test_s3_faults_during_writes_leave_no_half_written_state(cast_env, tmp_path, bucket, s3, aws, fault):
    (home,), made = homes(tmp_path, 1)
    aws.faults.append(fault)
    outcomes = []
    for _ in range(6):  # what a user does: run it again until it is done
        run = start(cast_env, home, "state", "push", "demo", AWS_MAX_ATTEMPTS="2", CAST_LOCK_WAIT="10")
        _, err = run.communicate(timeout=120)
        outcomes.append(run.returncode)
        objects = bucket_objects(s3, bucket)
        if "team/clusters/demo/state.json" in objects:  # whatever happened, the document is whole
            doc = json.loads(objects["team/clusters/demo/state.json"])
            assert set(doc["secrets"].values()) <= {k.removeprefix("team/") for k in objects}
        if run.returncode == 0:
            break
        assert run.returncode in (1, 4) and "Traceback" not in err, err
        print(f"\nrun {len(outcomes)}: exit {run.returncode}: {err.strip()[-400:]}")
    assert outcomes[-1] == 0, outcomes
    assert aws.injected, "no fault fired"
    print(f"\n{fault.code}: runs {outcomes}, faults injected {dict(aws.injected)}")
    aws.faults.clear()
    check_complete(s3, bucket, made)
    assert not (home / "secrets" / made["uuid"]).exists() or not os.listdir(home / "secrets" / made["uuid"])
