"""regions.yaml against the sandbox's EC2 (moto with AMI and instance-type validation on):
every AWS region of the region map launches one VM of each default size from its image
reference, through cast's provider; what EC2 refuses (an unknown AMI, an AMI of another
region, an instance type it does not offer, an unknown zone, credentials it does not know) is
refused with EC2's code and message."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from provisioner.clouds.aws import Provider
from provisioner.clouds.base import CloudTarget, ClusterRef, VmRequest
from provisioner.plan import firewall_rules
from provisioner.regions import ROLES, load_region_map
from provisioner.sandbox.aws_fault_proxy import FaultProxy
from provisioner.sandbox.aws_moto import MotoSandbox, ami_id

from .conftest import PEERS, PUBLIC_KEY, ensure_infra, tagged_left

AWS_REGIONS = [(key, r.clouds["aws"]) for key, r in load_region_map().regions.items() if "aws" in r.clouds]


@pytest.mark.parametrize(("key", "cloud"), AWS_REGIONS, ids=[k for k, _ in AWS_REGIONS])
def test_every_default_size_and_image_launches(aws_env: FaultProxy, sandbox: MotoSandbox, key: str,
                                               cloud: Any) -> None:
    target = CloudTarget(
        cluster=ClusterRef(f"map-{key}", str(uuid.uuid4())), region=cloud.region, zone=cloud.zone,
        network_cidr="10.10.0.0/16", subnet_cidr="10.10.1.0/24",
        firewall={role: firewall_rules(role, ["198.51.100.0/24"], node_ips=PEERS) for role in ROLES}, image=dict(cloud.image))
    provider = Provider(cloud.region, cloud.zone)
    ensure_infra(provider, target)
    wanted = [VmRequest(f"map-{key}-aws-{role[0]}1", role, cloud.sizes[role], "#cloud-config\n") for role in ROLES]
    vms = provider.ensure_vms(target, wanted, PUBLIC_KEY)

    assert [(v.name, v.state) for v in vms] == [(w.name, "running") for w in wanted]
    ec2 = boto3.client("ec2", endpoint_url=sandbox.endpoint, region_name=cloud.region,
                       aws_access_key_id=sandbox.access_key, aws_secret_access_key=sandbox.secret_key)
    launched = ec2.describe_instances(InstanceIds=[v.cloud_id for v in vms])["Reservations"]
    types = sorted(i["InstanceType"] for r in launched for i in r["Instances"])
    assert types == sorted(cloud.sizes.values())
    assert {i["ImageId"] for r in launched for i in r["Instances"]} == {ami_id(cloud.region)}
    provider.teardown(target)
    assert tagged_left(ec2, target.cluster.uuid) == []


@pytest.mark.parametrize(("image", "instance_type", "code", "message"), [
    ("ami-0doesnotexist0000", "t3.medium", "InvalidAMIID.NotFound",
     "The image id '[ami-0doesnotexist0000]' does not exist"),
    (ami_id("eu-central-1"), "t3.medium", "InvalidAMIID.NotFound", "does not exist"),
    (None, "x9.fake", "InvalidParameterValue", "Invalid value 'x9.fake' for InstanceType."),
])
def test_what_ec2_refuses_at_launch_is_refused(sandbox: MotoSandbox, image: str | None, instance_type: str,
                                               code: str, message: str) -> None:
    ec2 = boto3.client("ec2", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                       aws_access_key_id=sandbox.access_key, aws_secret_access_key=sandbox.secret_key)
    before = sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"])
    with pytest.raises(ClientError) as refused:
        ec2.run_instances(ImageId=image or ami_id("us-east-1"), InstanceType=instance_type, MinCount=1, MaxCount=1)
    error = refused.value.response["Error"]
    assert error["Code"] == code and message in error["Message"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"]) == before


def test_validation_is_given_back_when_the_sandbox_stops() -> None:
    from moto import settings

    def switches() -> tuple[bool, bool]:
        return settings.ENABLE_AMI_VALIDATION, settings.EC2_ENABLE_INSTANCE_TYPE_VALIDATION

    before = switches()
    with MotoSandbox(regions=["us-east-1"]):
        assert switches() == (True, True)
    assert switches() == before


def test_an_unknown_availability_zone_is_refused(sandbox: MotoSandbox) -> None:
    ec2 = boto3.client("ec2", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                       aws_access_key_id=sandbox.access_key, aws_secret_access_key=sandbox.secret_key)
    with pytest.raises(ClientError) as refused:
        ec2.run_instances(ImageId=ami_id("us-east-1"), InstanceType="t3.medium", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": "us-east-1z"})
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "us-east-1z" in refused.value.response["Error"]["Message"]


@pytest.mark.parametrize(("key", "secret"), [("AKIANOTTHESANDBOX", "x"), (None, "a-wrong-secret")])
def test_credentials_other_than_the_sandboxs_are_refused(sandbox: MotoSandbox, key: str | None, secret: str) -> None:
    ec2 = boto3.client("ec2", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                       aws_access_key_id=key or sandbox.access_key, aws_secret_access_key=secret)
    with pytest.raises(ClientError) as refused:
        ec2.describe_vpcs()
    assert refused.value.response["Error"]["Code"] == "AuthFailure"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    good = boto3.client("ec2", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                        aws_access_key_id=sandbox.access_key, aws_secret_access_key=sandbox.secret_key)
    assert good.describe_vpcs()["Vpcs"]

