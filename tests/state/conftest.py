"""Fixtures for the state-store tests: one seeded moto server (S3 and KMS over HTTP, IAM keys
checked) and one fault proxy in front of it per session; each test gets its own bucket, a
local store holding a realistic cluster, and the environment a `cast` subprocess needs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.sandbox.aws_fault_proxy import FaultProxy
from provisioner.sandbox.aws_moto import MotoSandbox
from tests.clouds.aws.conftest import credentials_env

ACCESS_KEY = "AKIACASTSTATE"
SECRET = "state-tests-not-a-real-secret"
REGION = "us-east-1"
KMS_ALIAS = "alias/cast-state-test"
TTL_S = "2"  # the lease of the subprocesses: short, so take-overs happen within a test


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoSandbox]:
    with MotoSandbox(access_key=ACCESS_KEY, secret_key=SECRET) as sb:
        yield sb


@pytest.fixture(scope="session")
def proxy(moto: MotoSandbox) -> Iterator[FaultProxy]:
    with FaultProxy(moto.endpoint) as px:
        yield px


def client(moto: MotoSandbox, service: str) -> Any:
    """A boto3 client straight to moto (not through the proxy), to arrange and inspect."""
    import boto3

    return boto3.client(service, endpoint_url=moto.endpoint, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET)


@pytest.fixture(scope="session")
def kms_key(moto: MotoSandbox) -> str:
    kms = client(moto, "kms")
    key_id = kms.create_key(Description="cast state tests")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=KMS_ALIAS, TargetKeyId=key_id)
    return f"kms://{KMS_ALIAS}"


@pytest.fixture
def bucket(moto: MotoSandbox) -> str:
    name = f"cast-{uuid.uuid4().hex[:12]}"
    client(moto, "s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3(moto: MotoSandbox) -> Any:
    return client(moto, "s3")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, proxy: FaultProxy) -> FaultProxy:
    """This process's boto3 pointed at the proxy, static test keys, faults cleared."""
    credentials_env(monkeypatch, tmp_path)
    for var, value in env_of(proxy).items():
        monkeypatch.setenv(var, value)
    proxy.clear()
    proxy.api_delay_s = 0.0
    return proxy


def env_of(proxy: FaultProxy) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_ENDPOINT_URL": proxy.endpoint,
            "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true", "CAST_LEASE_TTL": TTL_S}


@pytest.fixture
def cast_env(aws: FaultProxy, tmp_path: Path, bucket: str, kms_key: str) -> dict[str, str]:
    """The environment of a `cast` subprocess on this test's bucket (CAST_HOME: set per run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CAST_"))}
    env.update(env_of(aws))
    env.update({"AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "CAST_STATE": f"s3://{bucket}/team", "CAST_STATE_KEY": kms_key})
    return env
