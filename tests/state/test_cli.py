"""The state commands as a user types them: bad input exits 2 naming the field and writes
nothing; `cast state unlock` refuses a live lease naming its holder (exit 4) unless --force;
`cast list` says where each cluster's state lives."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from provisioner.cli import cli
from provisioner.state import open_store
from provisioner.state.lease import acquire

from .cluster import make_local_cluster


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize(("args", "field"), [
    (["--state", "gs://team/x", "list"], "--state: gs:// is not a state store cast knows"),
    (["--state", "s3://Team_Bucket/x", "list"], "--state: 'Team_Bucket' is not an S3 bucket name"),
    (["--state", "s3://team-bucket/x", "--state-key", "vault://k", "list"], "--state-key: 'vault://k' names no key"),
    (["state", "push", "demo"], "--state: name the bucket to move to or from"),
    (["reconcile"], "NAME: name one cluster or give --all"),
    (["reconcile", "demo", "--all"], "NAME: name one cluster or give --all"),
])
def test_bad_input_exits_2_naming_the_field_and_writes_nothing(tmp_path, args, field):
    home = tmp_path / "home"
    done = run("--state-dir", str(home), *args, env={"CAST_STATE": None, "CAST_STATE_KEY": None})
    assert done.exit_code == 2, done.output
    assert field in done.output
    assert not home.exists()


def test_unlock_names_the_holder_and_needs_force_for_a_live_lease(aws, tmp_path, bucket, kms_key):
    state = f"s3://{bucket}/team"
    store = open_store(state, tmp_path / "home", key=kms_key)
    lease = acquire(store.objects, "demo", "create-cluster")
    try:
        refused = run("--state-dir", str(tmp_path / "home"), "--state", state, "state", "unlock", "demo")
        assert refused.exit_code == 4
        assert "locked by pid" in refused.output and "(create-cluster, since" in refused.output
        forced = run("--state-dir", str(tmp_path / "home"), "--state", state, "state", "unlock", "demo", "--force")
        assert forced.exit_code == 0 and "unlocked (live lease of pid" in forced.output
        again = run("--state-dir", str(tmp_path / "home"), "--state", state, "state", "unlock", "demo")
        assert again.exit_code == 0 and "demo: not locked" in again.output
    finally:
        lease._stop.set()


def test_list_shows_where_each_cluster_lives(aws, tmp_path, bucket, kms_key):
    home = tmp_path / "home"
    make_local_cluster(home, "demo")
    make_local_cluster(home, "solo")
    state = f"s3://{bucket}/team"
    pushed = run("--state-dir", str(home), "--state", state, "--state-key", kms_key, "state", "push", "demo")
    assert pushed.exit_code == 0, pushed.output
    listed = run("--state-dir", str(home), "--state", state, "list", "--output", "json")
    assert listed.exit_code == 0, listed.output
    assert [(c["name"], c["state"]) for c in json.loads(listed.output)] == [("demo", state), ("solo", str(home))]
