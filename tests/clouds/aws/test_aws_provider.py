"""The AWS provider through boto3 over HTTP to a moto server (behind a fault proxy)."""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import replace
from typing import Any

import pytest

from provisioner.clouds.aws import Provider
from provisioner.errors import (
    AuthError,
    CapacityError,
    CloudError,
    ExcessResourcesError,
    ForeignVmError,
)
from provisioner.plan import firewall_rules
from provisioner.sandbox.aws_fault_proxy import Fault, FaultProxy, throttling
from provisioner.sandbox.aws_moto import BUILDS, ami_id

from ...reports import reports
from .conftest import (
    PEERS,
    PUBLIC_KEY,
    REGION,
    SECRET,
    ZONE,
    ensure_infra,
    make_target,
    requests,
    tagged_left,
)


def sg_rules(ec2: Any, group_id: str) -> set[tuple[str, int, int, str]]:
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    return {(p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
            for p in group["IpPermissions"] for r in p.get("IpRanges", [])}


def test_create_then_teardown_leaves_nothing_tagged(aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    ensure_infra(p, t)
    wanted = requests("demo", 1, 2)
    with reports() as said:
        vms = p.ensure_vms(t, wanted, PUBLIC_KEY)

    assert [v.name for v in vms] == [w.name for w in wanted]
    assert said[-1] == "3/3 running"  # the count the user watches while the instances start
    assert aws_env.calls["RunInstances"] == 3
    pool, subnet = ipaddress.ip_network("198.18.0.0/24"), ipaddress.ip_network("10.10.1.0/24")
    assert all(v.state == "running" for v in vms)
    assert all(ipaddress.ip_address(v.public_ip or "") in pool for v in vms)
    assert all(ipaddress.ip_address(v.private_ip or "") in subnet for v in vms)
    assert len({v.public_ip for v in vms}) == 3
    assert {v.extra["image_id"] for v in vms} == {ami_id(REGION)}

    master = vms[0]
    data = ec2.describe_instance_attribute(InstanceId=master.cloud_id, Attribute="userData")
    assert base64.b64decode(data["UserData"]["Value"]).decode() == wanted[0].user_data
    inst = ec2.describe_instances(InstanceIds=[master.cloud_id])["Reservations"][0]["Instances"][0]
    tags = {x["Key"]: x["Value"] for x in inst["Tags"]}
    assert tags["cast-cluster-uuid"] == t.cluster.uuid
    assert (tags["cast-node"], tags["cast-role"]) == ("demo-aws-m1", "master")
    volume = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    vol_tags = {x["Key"]: x["Value"] for x in ec2.describe_volumes(
        VolumeIds=[volume])["Volumes"][0]["Tags"]}
    assert vol_tags["cast-cluster-uuid"] == t.cluster.uuid
    assert sg_rules(ec2, inst["NetworkInterfaces"][0]["Groups"][0]["GroupId"]) == {
        ("tcp", 22, 22, "198.51.100.0/24"), ("tcp", 6443, 6443, "0.0.0.0/0"),
        ("udp", 51820, 51820, "198.18.0.10/32"), ("udp", 51820, 51820, "198.18.4.10/32")}
    kinds = sorted(r.kind for r in p.list_resources(t.cluster))
    assert kinds == ["instance"] * 3 + ["internet-gateway", "key-pair", "route-table",
                                        "security-group", "security-group", "subnet", "vpc"]

    p.teardown(t)
    assert tagged_left(ec2, t.cluster.uuid) == []
    assert p.list_resources(t.cluster) == []
    p.teardown(t)  # harmless when nothing is left


def test_instances_answer_metadata_only_with_a_token_and_one_hop(aws_env: FaultProxy, ec2: Any) -> None:
    # The user-data (the node's first host key) is served by IMDS: no IMDSv1, no second hop (pods).
    p, t = Provider(REGION, ZONE), make_target()
    ensure_infra(p, t)
    vms = p.ensure_vms(t, requests("demo", 1, 1), PUBLIC_KEY)
    described = ec2.describe_instances(InstanceIds=[v.cloud_id for v in vms])["Reservations"]
    options = [i["MetadataOptions"] for r in described for i in r["Instances"]]
    assert len(options) == 2
    assert all((o["HttpTokens"], o["HttpPutResponseHopLimit"], o["HttpEndpoint"]) == ("required", 1, "enabled")
               for o in options), options
    p.teardown(t)


def test_second_run_changes_nothing(aws_env: FaultProxy) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    ensure_infra(p, t)
    first = p.ensure_vms(t, requests("demo", 1, 1), PUBLIC_KEY)
    aws_env.clear()

    assert p.ensure_network(t).actions == ()
    assert p.ensure_subnet(t).actions == ()
    assert p.ensure_firewall(t).actions == ()
    assert p.ensure_ssh_key(t, PUBLIC_KEY).actions == ()
    again = p.ensure_vms(t, requests("demo", 1, 1), PUBLIC_KEY)
    assert [v.cloud_id for v in again] == [v.cloud_id for v in first]
    created = [a for a in aws_env.calls if a.startswith(("Create", "Run", "Import", "Authorize"))]
    assert created == []
    p.teardown(t)


def test_a_new_vpc_is_launched_into_without_reading_back_what_this_command_made(
        aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    ensure_infra(p, t)  # a new VPC: the image is looked up meanwhile, on a thread of its own
    aws_env.clear()
    first = p.ensure_vms(t, requests("demo", 1, 1), PUBLIC_KEY)
    assert {a: aws_env.calls[a] for a in ("DescribeSubnets", "DescribeSecurityGroups", "DescribeKeyPairs")} == \
        {"DescribeSubnets": 0, "DescribeSecurityGroups": 0, "DescribeKeyPairs": 0}
    assert aws_env.calls["GetParameter"] <= 1 and aws_env.calls["RunInstances"] == 2
    # ... and each VM is where the steps put it: the cluster's subnet, its role's group, key pair
    (subnet,) = ec2.describe_subnets(Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [t.cluster.uuid]}])["Subnets"]
    groups = {g["GroupId"]: g["GroupName"] for g in ec2.describe_security_groups(
        Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [t.cluster.uuid]}])["SecurityGroups"]}
    launched = [i for r in ec2.describe_instances(InstanceIds=[v.cloud_id for v in first])["Reservations"]
                for i in r["Instances"]]
    for instance in launched:
        role = {x["Key"]: x["Value"] for x in instance["Tags"]}["cast-role"]
        assert instance["SubnetId"] == subnet["SubnetId"]
        assert [groups[g["GroupId"]] for g in instance["NetworkInterfaces"][0]["Groups"]] == [f"cast-demo-{t.cluster.short_id}-{role}"]
        assert instance["KeyName"] == f"cast-demo-{t.cluster.short_id}"

    aws_env.clear()
    again = Provider(REGION, ZONE)  # a later command: the VPC is there, so it looks; nothing to launch
    ensure_infra(again, t)
    assert [v.cloud_id for v in again.ensure_vms(t, requests("demo", 1, 1), PUBLIC_KEY)] == [v.cloud_id for v in first]
    assert aws_env.calls["GetParameter"] == 1 and "RunInstances" not in aws_env.calls
    p.teardown(t)


def test_rerun_after_a_crash_mid_network_and_mid_vms_makes_no_duplicates(
        aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    # A crash right after CreateVpc: the gateway call fails for good.
    aws_env.faults.append(Fault("UnknownError", 400, frozenset({"CreateInternetGateway"})))
    with pytest.raises(CloudError):
        p.ensure_network(t)
    aws_env.clear()
    ensure_infra(p, t)
    # One of three VMs made before the crash.
    wanted = requests("demo", 1, 2)
    (early,) = p.ensure_vms(t, wanted[1:2], PUBLIC_KEY)
    vms = p.ensure_vms(t, wanted, PUBLIC_KEY)

    assert vms[1].cloud_id == early.cloud_id
    assert len(p.list_vms(t.cluster)) == 3
    owned = [{"Name": "tag:cast-cluster-uuid", "Values": [t.cluster.uuid]}]
    assert len(ec2.describe_vpcs(Filters=owned)["Vpcs"]) == 1
    assert len(ec2.describe_internet_gateways(Filters=owned)["InternetGateways"]) == 1
    p.teardown(t)
    assert tagged_left(ec2, t.cluster.uuid) == []


def test_dry_run_creates_nothing(aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    assert p.ensure_network(t, dry_run=True).actions
    assert p.ensure_subnet(t, dry_run=True).actions
    assert p.ensure_firewall(t, dry_run=True).actions
    assert p.ensure_ssh_key(t, PUBLIC_KEY, dry_run=True).actions
    assert tagged_left(ec2, t.cluster.uuid) == []


def test_two_vpcs_with_one_uuid_are_named_as_excess(aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    p.ensure_network(t)
    spec = [{"ResourceType": "vpc", "Tags": [{"Key": "cast-cluster-uuid", "Value": t.cluster.uuid}]}]
    extra = ec2.create_vpc(CidrBlock="10.10.0.0/16", TagSpecifications=spec)["Vpc"]["VpcId"]
    with pytest.raises(ExcessResourcesError, match=extra):
        p.ensure_network(t)
    p.teardown(t)  # teardown removes both
    assert tagged_left(ec2, t.cluster.uuid) == []


def test_two_instances_with_one_node_name_are_named_as_excess(aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    ensure_infra(p, t)
    (vm,) = p.ensure_vms(t, requests("demo", 1, 0), PUBLIC_KEY)
    tags = [{"Key": "cast-cluster-uuid", "Value": t.cluster.uuid}, {"Key": "cast-node", "Value": vm.name}]
    twin = ec2.run_instances(ImageId=ami_id(REGION), InstanceType="m6i.large", MinCount=1,
                             MaxCount=1, SubnetId=str(vm.extra["subnet_id"]),
                             TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    twin_id = twin["Instances"][0]["InstanceId"]
    with pytest.raises(ExcessResourcesError, match=twin_id):
        p.ensure_vms(t, requests("demo", 1, 0), PUBLIC_KEY)
    p.teardown(t)


def test_firewall_adds_missing_and_revokes_extra_rules(aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    p.ensure_network(t)
    group = next(r for r in p.ensure_firewall(t).resources if r.extra["role"] == "worker")
    planned = sg_rules(ec2, group.id)
    ec2.authorize_security_group_ingress(GroupId=group.id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.revoke_security_group_ingress(GroupId=group.id, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 51820, "ToPort": 51820, "IpRanges": [{"CidrIp": "198.18.0.10/32"}]}])

    actions = p.ensure_firewall(t).actions
    assert any("add udp/51820" in a for a in actions)
    assert any("remove tcp/3389" in a for a in actions)
    assert sg_rules(ec2, group.id) == planned
    assert p.ensure_firewall(t).actions == ()
    p.teardown(t)


def test_wireguard_sources_follow_the_nodes_in_place(aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    p.ensure_network(t)
    groups = {r.extra["role"]: r.id for r in p.ensure_firewall(t).resources}
    for peers in ([*PEERS, "198.18.8.3"], ["198.18.8.3"]):  # a node added, then two removed
        moved = replace(t, firewall={r: firewall_rules(r, ["198.51.100.0/24"], node_ips=peers)
                                     for r in ("master", "worker")})
        done = p.ensure_firewall(moved)
        assert {r.extra["role"]: r.id for r in done.resources} == groups  # the same groups, rules changed
        for group in groups.values():
            wireguard = {cidr for proto, port, _, cidr in sg_rules(ec2, group) if (proto, port) == ("udp", 51820)}
            assert wireguard == {f"{ip}/32" for ip in peers}
    assert not any(port == 30000 for g in groups.values() for _, port, _, _ in sg_rules(ec2, g))  # NodePorts closed
    p.teardown(t)


def test_teardown_leaves_another_cluster_alone(aws_env: FaultProxy, ec2: Any) -> None:
    p = Provider(REGION, ZONE)
    a, b = make_target("alpha"), make_target("beta")
    for t in (a, b):
        ensure_infra(p, t)
        p.ensure_vms(t, requests(t.cluster.name, 1, 0), PUBLIC_KEY)
    before = sorted((r.kind, r.id) for r in p.list_resources(b.cluster))

    p.teardown(a)
    assert tagged_left(ec2, a.cluster.uuid) == []
    assert sorted((r.kind, r.id) for r in p.list_resources(b.cluster)) == before
    assert [v.state for v in p.list_vms(b.cluster)] == ["running"]
    p.teardown(b)


def test_a_stranger_in_the_vpc_stops_teardown_before_any_deletion(aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    ensure_infra(p, t)
    (vm,) = p.ensure_vms(t, requests("demo", 1, 0), PUBLIC_KEY)
    stranger = ec2.run_instances(ImageId=ami_id(REGION), InstanceType="t3.medium", MinCount=1,
                                 MaxCount=1, SubnetId=str(vm.extra["subnet_id"]))
    stranger_id = stranger["Instances"][0]["InstanceId"]
    before = sorted((r.kind, r.id) for r in p.list_resources(t.cluster))
    aws_env.clear()

    with pytest.raises(ForeignVmError, match=stranger_id) as caught:
        p.teardown(t)
    assert caught.value.exit_code == 4
    assert [v.cloud_id for v in p.find_foreign_vms(t)] == [stranger_id]
    changed = [a for a in aws_env.calls if a.startswith(("Delete", "Terminate", "Detach", "Disassociate"))]
    assert changed == []
    assert sorted((r.kind, r.id) for r in p.list_resources(t.cluster)) == before

    ec2.terminate_instances(InstanceIds=[stranger_id])
    p.teardown(t)
    assert tagged_left(ec2, t.cluster.uuid) == []


def test_create_and_teardown_finish_through_throttling(aws_env: FaultProxy, ec2: Any) -> None:
    # Every third call throttled, a few times per phase: botocore's own backoff (up to 1 s,
    # then 2 s, ...) is what keeps the count low enough for a fast test.
    aws_env.faults.append(throttling(every=3, times=6))
    p, t = Provider(REGION, ZONE), make_target()
    ensure_infra(p, t)
    vms = p.ensure_vms(t, requests("demo", 1, 1), PUBLIC_KEY)
    assert sum(aws_env.injected.values()) == 6
    assert [v.state for v in vms] == ["running", "running"]

    aws_env.clear()
    aws_env.faults.append(throttling(every=3, times=6))
    p.teardown(t)
    assert sum(aws_env.injected.values()) == 6
    assert tagged_left(ec2, t.cluster.uuid) == []


def test_503_answers_are_retried(aws_env: FaultProxy) -> None:
    aws_env.faults.append(Fault("ServiceUnavailable", 503, frozenset({"DescribeVpcs"}), times=2))
    p, t = Provider(REGION, ZONE), make_target()
    assert p.ensure_network(t, dry_run=True).actions
    assert aws_env.injected["DescribeVpcs"] == 2


def test_instance_quota_is_a_capacity_error_naming_region_and_type(
        aws_env: FaultProxy, ec2: Any) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    ensure_infra(p, t)
    aws_env.faults.append(Fault("InstanceLimitExceeded", 400, frozenset({"RunInstances"})))
    with pytest.raises(CapacityError) as caught:
        p.ensure_vms(t, requests("demo", 1, 0), PUBLIC_KEY)
    assert REGION in str(caught.value) and "m6i.large" in str(caught.value)
    assert caught.value.exit_code == 1
    assert p.list_vms(t.cluster) == []
    aws_env.clear()
    p.teardown(t)


def test_missing_credentials_say_what_was_tried_and_how_to_fix(
        aws_env: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AuthError) as caught:
        Provider(REGION, ZONE).check_credentials()
    text = str(caught.value)
    assert "no credentials found" in text
    assert "AWS_PROFILE" in text and "AWS_ACCESS_KEY_ID" in text and "aws configure" in text
    assert aws_env.calls == {}  # refused before anything was sent


def test_refused_credentials_name_their_source_and_no_secret(aws_env: FaultProxy) -> None:
    aws_env.faults.append(Fault("AuthFailure", 401, message=f"bad signature for {SECRET}"))
    with pytest.raises(AuthError) as caught:
        Provider(REGION, ZONE).check_credentials()
    assert "source 'env'" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_ami_falls_back_to_the_newest_image_by_owner_and_name(aws_env: FaultProxy) -> None:
    image = {**make_target().image, "ssm_parameter": "/aws/service/canonical/no/such/parameter"}
    assert Provider(REGION, ZONE).ami(make_target(image=image)) == ami_id(REGION, BUILDS[-1][0])
    assert aws_env.calls["DescribeImages"] == 1


def test_delete_vms_removes_only_the_named_nodes(aws_env: FaultProxy) -> None:
    p, t = Provider(REGION, ZONE), make_target()
    ensure_infra(p, t)
    p.ensure_vms(t, requests("demo", 1, 2), PUBLIC_KEY)
    p.delete_vms(t, ["demo-aws-w1", "demo-aws-w9"])
    assert sorted(v.name for v in p.list_vms(t.cluster)) == ["demo-aws-m1", "demo-aws-w2"]
    p.teardown(t)


def test_sandbox_seeds_every_region_of_the_map(sandbox: Any) -> None:
    import boto3

    from provisioner.sandbox.aws_moto import map_regions, ssm_parameter

    assert len(sandbox.regions) == len(map_regions()) >= 10
    for region in sandbox.regions:
        kw = dict(endpoint_url=sandbox.endpoint, region_name=region,
                  aws_access_key_id=sandbox.access_key, aws_secret_access_key=sandbox.secret_key)
        value = boto3.client("ssm", **kw).get_parameter(Name=ssm_parameter())["Parameter"]["Value"]
        (image,) = boto3.client("ec2", **kw).describe_images(ImageIds=[value])["Images"]
        assert image["OwnerId"] == "099720109477" and "noble-24.04" in image["Name"]
