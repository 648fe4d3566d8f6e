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
    for _, cloud, step, phase, detail, at in doc["journal"]:
        if (cloud, step) != ("cluster", "reconcile"):
            continue
        replica = detail.split(":")[0].removeprefix("replica ")
        if phase == "begin":
            assert not runs or runs[-1][1] is not None, f"{name}: a reconcile began while another ran"
            runs.append((at, None, replica))
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
