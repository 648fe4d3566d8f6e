"""`cast reconcile --all --watch`: replicas against one bucket share its clusters, each cluster
reconciled once per interval and never by two replicas at once (read from its journal); a
replica killed mid-run is replaced within one lease. The clusters live on AWS (moto, through
the fault proxy); the runs are dry runs, which need no SSH to a node."""

from __future__ import annotations

import json
import signal
import time

from .cluster import make_local_cluster
from .test_processes import assert_nothing_in_clear, bucket_objects, start

CLUSTERS = ("alpha", "bravo", "charlie")


def push_clusters(cast_env, tmp_path) -> dict[str, dict]:
    made = {}
    for name in CLUSTERS:
        made[name] = make_local_cluster(tmp_path / "ops", name, nodes=2)
        run = start(cast_env, tmp_path / "ops", "state", "push", name)
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
    return made


def runs_of(s3, bucket: str, name: str) -> list[tuple[float, float | None, str]]:
    """(began, ended or None, replica) of each reconcile of a cluster, from its journal."""
    doc = json.loads(s3.get_object(Bucket=bucket, Key=f"team/clusters/{name}/state.json")["Body"].read())
    runs: list[tuple[float, float | None, str]] = []
    taken_over = False
    for _, cloud, step, phase, detail, at in doc["journal"]:
        taken_over = taken_over or (cloud, step, phase) == ("cluster", "lease", "takeover")
        if (cloud, step) != ("cluster", "reconcile"):
            continue
        replica = detail.split(":")[0].removeprefix("replica ")
        if phase == "begin":
            assert not runs or runs[-1][1] is not None or taken_over, f"{name}: a reconcile began while another ran"
            runs.append((at, None, replica))
            taken_over = False
        else:
            began, _, who = runs[-1]
            assert who == replica and phase == "end", (name, detail)
            runs[-1] = (began, at, who)
    return runs


def test_replicas_share_the_clusters_one_at_a_time(cast_env, tmp_path, bucket, s3, aws):
    made = push_clusters(cast_env, tmp_path)
    interval = 8.0  # longer than one dry run on a loaded test machine (2-6 s)
    replicas = [start(cast_env, tmp_path / f"replica{i}", "reconcile", "--all", "--watch", "--dry-run",
                      "--interval", f"{interval:g}s", CAST_REPLICA=f"r{i}") for i in range(2)]
    time.sleep(28)
    for r in replicas:
        r.send_signal(signal.SIGINT)
    for r in replicas:
        _, err = r.communicate(timeout=30)
        assert "Traceback" not in err, err
    for name in CLUSTERS:
        runs = [r for r in runs_of(s3, bucket, name) if r[1] is not None]
        assert 2 <= len(runs) <= 4, (name, runs)  # about once per interval over 28 s
        for (a, _, _), (b, _, _) in zip(runs, runs[1:], strict=False):
            assert b - a >= interval - 0.1, (name, runs)  # never twice in one interval
        print(f"\n{name}: {len(runs)} runs by {[r[2] for r in runs]}, "
              f"{[round(r[1] - r[0], 2) for r in runs]} s each")
    assert_nothing_in_clear(bucket_objects(s3, bucket), made["alpha"])


def test_a_killed_replica_is_replaced_within_one_lease(cast_env, tmp_path, bucket, s3, aws):
    push_clusters(cast_env, tmp_path)
    aws.api_delay_s = 0.2  # runs take long enough to be killed in the middle of one
    victim = start(cast_env, tmp_path / "replica0", "reconcile", "--all", "--watch", "--dry-run", "--interval", "1h",
                   CAST_REPLICA="victim")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            r[1] is None for r in runs_of(s3, bucket, "alpha")):
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    killed_at = time.time()
    victim.wait()
    aws.api_delay_s = 0.0
    survivor = start(cast_env, tmp_path / "replica1", "reconcile", "--all", "--watch", "--dry-run",
                     "--interval", "1h", CAST_REPLICA="survivor")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and [r[1] is None for r in runs_of(s3, bucket, "alpha")] != [True, False]:
        time.sleep(0.2)
    survivor.send_signal(signal.SIGINT)
    survivor.communicate(timeout=30)
    runs = runs_of(s3, bucket, "alpha")
    assert [r[2] for r in runs] == ["victim", "survivor"] and runs[0][1] is None and runs[1][1] is not None
    replaced = runs[1][0] - killed_at
    print(f"\nkilled replica: its cluster's reconcile began again {replaced:.1f} s after the kill (lease ttl 2 s)")
    assert replaced < 2 + 10  # one lease, plus the new replica's start-up and its first pass over the others
