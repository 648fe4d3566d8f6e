"""The cluster's Network Load Balancer on AWS, through boto3 against moto: an Elastic IP as its
static address, a target group per forward with the workers by instance id and an HTTP health
check, TCP listeners; idempotent, backends updated live, and deleted with everything made
for it. Checked with a plain boto3 client, as any AWS user would look."""

from __future__ import annotations

import ipaddress
from typing import Any

import boto3
import pytest

from provisioner.clouds.aws import Provider
from provisioner.clouds.aws_lb import Balancers, lb_name
from provisioner.clouds.balancing import BalancerPlan, open_balancers
from provisioner.sandbox.aws_moto import PUBLIC_POOL, MotoSandbox

from .conftest import REGION, ZONE, ensure_infra, make_target, requests


@pytest.fixture
def elbv2(sandbox: MotoSandbox) -> Any:
    return boto3.client("elbv2", endpoint_url=sandbox.endpoint, region_name=REGION,
                        aws_access_key_id=sandbox.access_key, aws_secret_access_key=sandbox.secret_key)


@pytest.fixture
def cluster(aws_env: Any) -> Any:
    """A cluster's network and two workers (and a master, never a backend) on AWS."""
    provider = Provider(REGION, ZONE)
    target = make_target()
    ensure_infra(provider, target)
    vms = provider.ensure_vms(target, requests(target.cluster.name, 1, 2), "")
    workers = [vm for vm in vms if vm.role == "worker" or "-w" in vm.name]
    return provider, target, workers


def plan_of(workers: list[Any]) -> BalancerPlan:
    return BalancerPlan(backends=tuple(vm.name for vm in workers))


def registered(elbv2: Any, arn: str) -> set[str]:
    return {d["Target"]["Id"] for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}


def test_the_registry_finds_the_aws_module() -> None:
    assert isinstance(open_balancers("aws", REGION, ZONE), Balancers)


def test_load_balancer_is_an_nlb_on_an_elastic_ip_with_the_workers(cluster: Any, elbv2: Any, ec2: Any) -> None:
    _, target, workers = cluster
    balancers = Balancers(REGION, ZONE)
    made = balancers.ensure_load_balancer(target, plan_of(workers), workers)
    lb = elbv2.describe_load_balancers(Names=[lb_name(target.cluster)])["LoadBalancers"][0]
    assert lb["Type"] == "network" and lb["Scheme"] == "internet-facing"
    tags = {t["Key"]: t["Value"] for t in
            elbv2.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"][0]["Tags"]}
    assert tags["cast-cluster-uuid"] == target.cluster.uuid
    eips = ec2.describe_addresses(Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [target.cluster.uuid]}])
    assert [a["PublicIp"] for a in eips["Addresses"]] == [made.address]
    assert ipaddress.ip_address(made.address) in ipaddress.ip_network(PUBLIC_POOL)  # the sandbox's pool, not moto's
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert sorted((x["Port"], x["Protocol"]) for x in listeners) == [(80, "TCP"), (443, "TCP")]
    ports = {}
    for listener in listeners:
        group_arn = listener["DefaultActions"][0]["TargetGroupArn"]
        group = elbv2.describe_target_groups(TargetGroupArns=[group_arn])["TargetGroups"][0]
        ports[listener["Port"]] = group["Port"]
        assert (group["HealthCheckProtocol"], group["HealthCheckPort"], group["HealthCheckPath"]) == \
            ("HTTP", "30080", "/healthz")
        assert group["TargetType"] == "instance"
        assert registered(elbv2, group_arn) == {vm.cloud_id for vm in workers}
    assert ports == {80: 30080, 443: 30443}
    assert made.backends == tuple(vm.name for vm in workers)


def test_ensure_twice_changes_nothing_and_dry_run_nothing(cluster: Any, elbv2: Any) -> None:
    _, target, workers = cluster
    balancers = Balancers(REGION, ZONE)
    dry = balancers.ensure_load_balancer(target, plan_of(workers), workers, dry_run=True)
    assert any("create network load balancer" in a for a in dry.actions)
    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_load_balancers(Names=[lb_name(target.cluster)])
    first = balancers.ensure_load_balancer(target, plan_of(workers), workers)
    again = balancers.ensure_load_balancer(target, plan_of(workers), workers)
    assert again.actions == () and again.address == first.address
    assert len(elbv2.describe_load_balancers(Names=[lb_name(target.cluster)])["LoadBalancers"]) == 1


def test_backends_follow_the_workers_live(cluster: Any, elbv2: Any) -> None:
    _, target, workers = cluster
    balancers = Balancers(REGION, ZONE)
    balancers.ensure_load_balancer(target, plan_of(workers), workers)
    one = workers[:1]
    changed = balancers.ensure_load_balancer(target, plan_of(one), one)
    assert any(workers[1].cloud_id in a for a in changed.actions)
    found = balancers.find_load_balancer(target.cluster)
    assert found is not None and found.backends == (workers[0].name,)
    balancers.ensure_load_balancer(target, plan_of(workers), workers)
    found = balancers.find_load_balancer(target.cluster)
    assert found is not None and set(found.backends) == {vm.name for vm in workers}


def test_delete_removes_the_balancer_its_groups_and_its_address(cluster: Any, elbv2: Any, ec2: Any) -> None:
    _, target, workers = cluster
    balancers = Balancers(REGION, ZONE)
    balancers.ensure_load_balancer(target, plan_of(workers), workers)
    balancers.delete_load_balancer(target)
    assert balancers.find_load_balancer(target.cluster) is None
    names = {g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]}
    assert not any(n.startswith(lb_name(target.cluster)) for n in names)
    eips = ec2.describe_addresses(Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [target.cluster.uuid]}])
    assert eips["Addresses"] == []
    balancers.delete_load_balancer(target)  # harmless when none exists


def test_teardown_takes_the_load_balancer_before_the_network(cluster: Any, elbv2: Any) -> None:
    provider, target, workers = cluster
    Balancers(REGION, ZONE).ensure_load_balancer(target, plan_of(workers), workers)
    provider.teardown(target)
    with pytest.raises(elbv2.exceptions.LoadBalancerNotFoundException):
        elbv2.describe_load_balancers(Names=[lb_name(target.cluster)])
