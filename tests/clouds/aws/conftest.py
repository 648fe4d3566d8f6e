"""Fixtures for the AWS tests: one seeded moto server and one fault proxy per test module,
reached by boto3 through AWS_ENDPOINT_URL; each test isolates itself by a fresh cluster UUID."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from provisioner.clouds.aws import Provider
from provisioner.clouds.base import CloudTarget, VmRequest
from provisioner.regions import load_region_map
from provisioner.sandbox.aws_fault_proxy import FaultProxy
from provisioner.sandbox.aws_moto import MotoSandbox

from ...conftest import PEERS as PEERS  # re-exported: the tests import it from here
from ...conftest import cloud_target, vm_requests

REGION, ZONE = "us-east-1", "us-east-1a"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGn3w9V1z5i0a2bY0a9uL2V6XhkC0qk8b6wq3O0xkQ2j cast"
ACCESS_KEY = "AKIACASTTEST"
SECRET = "wJalrXUtnFEMI-not-a-real-secret"



@pytest.fixture(scope="module")

def sandbox() -> Iterator[MotoSandbox]:
    with MotoSandbox(access_key=ACCESS_KEY, secret_key=SECRET) as sb:
        yield sb


@pytest.fixture(scope="module")
def proxy(sandbox: MotoSandbox) -> Iterator[FaultProxy]:
    with FaultProxy(sandbox.endpoint) as px:
        yield px


def credentials_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Nothing from this machine's AWS set-up leaks in; instance metadata is never asked."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, proxy: FaultProxy) -> FaultProxy:
    """boto3 pointed at the proxy in front of moto, with static test keys; faults cleared."""
    credentials_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    proxy.clear()
    return proxy


@pytest.fixture
def ec2(sandbox: MotoSandbox) -> Any:
    """A plain boto3 client straight to moto, for arranging and checking what exists."""
    import boto3

    return boto3.client("ec2", endpoint_url=sandbox.endpoint, region_name=REGION,
                        aws_access_key_id=sandbox.access_key, aws_secret_access_key=sandbox.secret_key)


def aws_image() -> dict[str, str]:
    return dict(load_region_map().region("us-east").clouds["aws"].image)


def make_target(name: str = "demo", image: dict[str, str] | None = None) -> CloudTarget:
    return cloud_target(REGION, ZONE, "10.10.0.0/16", "10.10.1.0/24", image or aws_image(), name=name,
                        ssh_cidrs=["198.51.100.0/24"])


def requests(name: str, masters: int, workers: int) -> list[VmRequest]:
    return vm_requests("aws", name, masters, workers, {"master": "m6i.large", "worker": "t3.medium"},
                       lambda role, i: f"#cloud-config\nhostname: {name}-{role[0]}{i}\n")


def ensure_infra(p: Provider, t: CloudTarget) -> None:
    p.ensure_network(t)
    p.ensure_subnet(t)
    p.ensure_firewall(t)
    p.ensure_ssh_key(t, PUBLIC_KEY)


def tagged_left(ec2: Any, cluster_uuid: str) -> list[tuple[str, str]]:
    """Every resource still carrying the UUID, terminated instances excepted. (Described by
    kind: moto's DescribeTags keeps the tags of deleted resources.)"""
    owned = [{"Name": "tag:cast-cluster-uuid", "Values": [cluster_uuid]}]
    kinds = [("describe_vpcs", "Vpcs", "VpcId"), ("describe_subnets", "Subnets", "SubnetId"),
             ("describe_security_groups", "SecurityGroups", "GroupId"),
             ("describe_route_tables", "RouteTables", "RouteTableId"),
             ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
             ("describe_key_pairs", "KeyPairs", "KeyName"), ("describe_volumes", "Volumes", "VolumeId"),
             ("describe_network_interfaces", "NetworkInterfaces", "NetworkInterfaceId")]
    left = [(op, item[id_key]) for op, key, id_key in kinds
            for item in getattr(ec2, op)(Filters=owned)[key]]
    left += [("instance", i["InstanceId"]) for r in ec2.describe_instances(Filters=owned)["Reservations"]
             for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    return left
