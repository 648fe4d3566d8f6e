"""A team's clusters on a shared bucket, in the sandbox (its moto serves S3 and KMS too): create
on one machine, killed with SIGKILL mid-way and continued from another, add-node from a third,
delete from CI, each with its own local directory and only CAST_STATE / CAST_STATE_KEY in
common; then nothing of the cluster is left on any cloud, and nothing in the bucket is in clear."""

from __future__ import annotations

import json
import os
import signal

import boto3
import pytest

from .conftest import SKIP, CastRunner, wait_for
from .test_lifecycle import REGION, RELAXED

pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

BUCKET, ALIAS = "cast-team-state", "alias/cast-team"
CLOUDS = ["--cloud", "aws:1:1", "--cloud", "gcp:0:1", *RELAXED]


def aws_client(cast, service: str):
    return boto3.client(service, endpoint_url=cast.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id=cast.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=cast.env["AWS_SECRET_ACCESS_KEY"])


def bucket_journal(s3, name: str) -> list[tuple[str, str, str]]:
    try:
        body = s3.get_object(Bucket=BUCKET, Key=f"prod/clusters/{name}/state.json")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return [(e[1], e[2], e[3]) for e in json.loads(body)["journal"]]


def test_create_on_one_machine_continue_on_another_add_node_and_delete_from_ci(cast, tmp_path):
    s3, kms = aws_client(cast, "s3"), aws_client(cast, "kms")
    s3.create_bucket(Bucket=BUCKET)
    kms.create_alias(AliasName=ALIAS, TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    team = {**cast.env, "CAST_STATE": f"s3://{BUCKET}/prod", "CAST_STATE_KEY": f"kms://{ALIAS}",
            "CAST_LEASE_TTL": "5", "AWS_REGION": "us-east-1"}
    laptop, desktop, colleague, ci = (CastRunner(tmp_path / who, team) for who in ("laptop", "desktop", "bob", "ci"))
    args = ["create-cluster", "team", "--region", REGION, *CLOUDS, "--quiet"]

    first = laptop.start(*args)
    wait_for(lambda: ("aws", "vms", "begin") in bucket_journal(s3, "team") or first.poll() is not None,
             timeout=180, what="the laptop's create to reach the AWS VMs")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    raced = desktop(*args, check=False)  # the laptop's lease is still live: refused, naming it
    assert raced.returncode == 4 and f"pid {first.pid}" in raced.stderr, raced.stderr
    desktop(*args, env={"CAST_LOCK_WAIT": "30"}, timeout=400)  # waits out the lease, takes over, finishes
    cluster = desktop.cluster("team")
    assert cluster["status"] == "ready"
    assert desktop.vms("team", cluster["uuid"]) == {"aws": ["team-aws-m1", "team-aws-w1"], "gcp": ["team-gcp-w1"]}
    steps = bucket_journal(s3, "team")
    assert ("cluster", "lease", "takeover") in steps

    added = json.loads(colleague("add-node", "team", "--cloud", "gcp", "--output", "json", timeout=400).stdout)
    assert added == {"added": ["team-gcp-w2"]}
    listed = json.loads(ci("list", "--output", "json").stdout)
    assert [(c["name"], c["nodes"], c["state"]) for c in listed] == [("team", 4, f"s3://{BUCKET}/prod")]

    objects = {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
               for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    for key, blob in objects.items():
        assert b"PRIVATE KEY" not in blob and b"PrivateKey" not in blob, key
        assert b"client-key-data" not in blob and b"token:" not in blob and b"apiVersion" not in blob, key

    ci("delete-cluster", "team", "--yes", timeout=400)
    assert ci.leftovers("team", cluster["uuid"], cluster["spec"]) == {"aws": [], "gcp": []}
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert left == ["prod/clusters/team/lease.json"]  # the lease keeps its token; the state is gone
