"""EC2 instances of a cluster: run what is missing, wait, list, delete, and find strangers.

Launching: one RunInstances per missing VM, in parallel with a bounded pool. Every instance
carries its own cast-node tag, and tags in a RunInstances call apply to every instance it
starts, so a batch would need a CreateTags call per instance afterwards: more calls, and a
moment where an instance lacks its node name. One call per VM puts the UUID and the node name
in TagSpecifications at launch, and its ClientToken (from the cluster UUID and the node name)
makes a retried launch after a crash return the same instance instead of a second one.
Waiting and reading addresses use one DescribeInstances per poll for all instances (polls
start short and back off); the lookups a launch needs go at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from .. import tags
from ..errors import CloudError, NotFoundError
from ..parallel import gather
from ..progress import report
from ..retry import wait_until
from . import leaks
from .aws_api import CLOUD, AwsApi
from .aws_firewall import find_groups
from .aws_keys import find_key, key_name
from .aws_network import find_subnet
from .aws_owned import LIVE_INSTANCE_STATES, owned, tag_specs, tags_of
from .base import CloudResource, CloudTarget, ClusterRef, Settings, Vm, VmRequest

LAUNCH_WORKERS = 16
FILTER_VALUES_MAX = 200  # EC2 accepts at most 200 values in one filter
# Instances take tens of seconds on AWS, none in moto: looked at soon, then with backoff.
SETTINGS = Settings(poll_initial_s=0.2)
FAILED_STATES = ("shutting-down", "terminated", "stopping", "stopped")
T = TypeVar("T")


def client_token(cluster: ClusterRef, node: str) -> str:
    """The idempotency token of a node's launch (at most 64 ASCII characters)."""
    return "cast-" + hashlib.sha256(f"{cluster.uuid}/{node}".encode()).hexdigest()[:56]


def to_vm(item: dict[str, Any]) -> Vm:
    """Our view of a described instance."""
    t = tags_of(item)
    return Vm(
        name=t.get(tags.NODE) or t.get("Name") or item["InstanceId"],
        cloud_id=item["InstanceId"],
        state=item["State"]["Name"],
        private_ip=item.get("PrivateIpAddress"),
        public_ip=item.get("PublicIpAddress"),
        role=t.get(tags.ROLE),
        cluster_uuid=t.get(tags.CLUSTER_UUID),
        extra={"instance_type": item.get("InstanceType"), "vpc_id": item.get("VpcId"),
               "subnet_id": item.get("SubnetId"), "image_id": item.get("ImageId")},
    )


def describe_instances(api: AwsApi, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every instance matching `filters` (all pages, flattened)."""
    reservations = api.describe("describe_instances", "Reservations", Filters=filters)
    return [i for r in reservations for i in r["Instances"]]


def live_instances(api: AwsApi, cluster: ClusterRef, *more: dict[str, Any]) -> list[dict[str, Any]]:
    """The cluster's instances that are not terminated or being terminated."""
    state = {"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)}
    return describe_instances(api, owned(cluster, state, *more))


def by_node(cluster: ClusterRef, items: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Instances by node name; two with one name raise ExcessResourcesError (clouds.leaks)."""
    return leaks.one_per_node(CLOUD, "instance", items, lambda i: tags_of(i).get(tags.NODE),
                              lambda i: str(i["InstanceId"]))


@dataclass(frozen=True)
class Known:
    """What the VM step launches into, as the earlier steps of this command made it in a VPC
    they made (so the cluster has no instance yet): nothing is read back."""

    subnet: dict[str, Any]
    groups: dict[str, dict[str, Any]]
    key: dict[str, Any]


def known_from(made: dict[str, CloudResource] | None, cluster: ClusterRef, key: str | None = None) -> Known | None:
    """Known from the resources the subnet and firewall steps ensured in a VPC this command
    made (keyed "kind/role"), and the key pair the ssh-key step ensured (`key`, its name; by
    default the name cast gives it); None without a subnet (then the VM step looks)."""
    if not made or "subnet/" not in made:
        return None
    groups = {r.extra["role"]: {"GroupId": r.id, "GroupName": r.name}
              for r in made.values() if r.kind == "security-group"}
    return Known({"SubnetId": made["subnet/"].id}, groups, {"KeyName": key or key_name(cluster)})


def ensure_vms(api: AwsApi, target: CloudTarget, vms: Sequence[VmRequest], ami: Callable[[], str],
               settings: Settings = SETTINGS, known: Known | None = None) -> list[Vm]:
    """Run the missing VMs, start stopped ones, wait for all to run with addresses. `ami`
    finds the image (called once, beside the other lookups). `known`: the subnet, groups and
    key of a VPC this command made, with no instance in it: then only the image is looked up."""
    cluster = target.cluster
    if known is not None and all(v.role in known.groups for v in vms):
        live, subnet, groups, key, image = [], known.subnet, known.groups, known.key, ami()
    else:
        live, subnet, groups, key, image = gather(
            lambda: live_instances(api, cluster), lambda: find_subnet(api, cluster),
            lambda: find_groups(api, cluster), lambda: find_key(api, cluster), ami)
    existing = by_node(cluster, live)
    ids = {v.name: existing[v.name]["InstanceId"] for v in vms if v.name in existing}
    stopped = [ids[v.name] for v in vms if v.name in existing
               and existing[v.name]["State"]["Name"] in ("stopping", "stopped")]
    if stopped:
        api.ec2("start_instances", what="starting stopped instances", InstanceIds=stopped)
    missing = [v for v in vms if v.name not in existing]
    if missing:
        ids.update(_launch(api, target, missing, image, subnet, groups, key))
    return wait_running(api, [ids[v.name] for v in vms], settings)


METADATA_OPTIONS = {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"}


def _launch(api: AwsApi, target: CloudTarget, missing: Sequence[VmRequest], ami: str, subnet: dict[str, Any] | None,
            groups: dict[str, dict[str, Any]], key: dict[str, Any] | None) -> dict[str, str]:
    """Launch each VM; return node name -> instance id."""
    cluster = target.cluster
    if subnet is None or key is None or any(v.role not in groups for v in missing):
        raise NotFoundError(CLOUD, f"cluster {cluster.uuid} lacks its subnet, key pair or a "
                                   "role's security group: ensure them before the VMs")

    def launch(vm: VmRequest) -> str:
        vm_tags = {**tags.vm_tags(cluster.name, cluster.uuid, vm.role, vm.name), "Name": vm.name}
        reply = api.ec2(
            "run_instances", what=f"launching {vm.name} ({vm.size})", size=vm.size,
            ImageId=ami, InstanceType=vm.size, MinCount=1, MaxCount=1, KeyName=key["KeyName"],
            UserData=vm.user_data, ClientToken=client_token(cluster, vm.name),
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"],
                                "Groups": [groups[vm.role]["GroupId"]],
                                "AssociatePublicIpAddress": True, "DeleteOnTermination": True}],
            TagSpecifications=tag_specs(["instance", "volume", "network-interface"], vm_tags),
            # IMDSv2 only, one hop: a pod (one hop further behind the node's bridge) cannot reach
            # the metadata service, nor can a forged request without a session token.
            MetadataOptions=METADATA_OPTIONS,
        )
        instance = reply["Instances"][0]
        if instance["State"]["Name"] in ("shutting-down", "terminated"):
            # AWS answers a reused ClientToken with the instance it made then, even a dead one.
            raise CloudError(CLOUD, f"launching {vm.name}: its launch token belongs to "
                                    f"{instance['InstanceId']}, now terminated; node names "
                                    "must not be reused within a cluster")
        return str(instance["InstanceId"])

    return dict(zip([v.name for v in missing], _run_all(launch, missing), strict=True))


def _run_all(fn: Callable[[T], str], items: Sequence[T]) -> list[str]:
    """`fn` on every item in a bounded pool. Every call finishes before the first error is
    raised, so whatever did launch is tagged and a re-run picks it up."""
    return list(gather(*(partial(fn, i) for i in items), max_workers=LAUNCH_WORKERS))


def _by_id(api: AwsApi, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {i["InstanceId"]: i for chunk in _chunks(ids) for i in describe_instances(
        api, [{"Name": "instance-id", "Values": chunk}])}


def wait_running(api: AwsApi, ids: Sequence[str], settings: Settings = SETTINGS) -> list[Vm]:
    """Block until every instance runs with a private and a public IP; return them in the
    order of `ids`. One DescribeInstances per poll (per 200 instances), whatever the count;
    an instance that stops or terminates instead raises CloudError."""

    def running() -> list[Vm] | None:
        now = _by_id(api, ids)
        ended = sorted(i for i in ids if i in now and now[i]["State"]["Name"] in FAILED_STATES)
        if ended:
            raise CloudError(CLOUD, f"instances {', '.join(ended)} stopped or terminated while starting")
        vms = [to_vm(now[i]) for i in ids if i in now]
        ready = sum(1 for v in vms if v.state == "running" and v.public_ip and v.private_ip)
        report(f"{ready}/{len(ids)} running")
        return vms if ready == len(ids) else None

    return wait_until(running, what=f"{len(ids)} instances to run with public and private IPs",
                      timeout_s=settings.vm_timeout_s, **settings.polling())


def _chunks(values: Sequence[str]) -> list[list[str]]:
    return [list(values[i:i + FILTER_VALUES_MAX]) for i in range(0, len(values), FILTER_VALUES_MAX)]


def terminate(api: AwsApi, instance_ids: Sequence[str], settings: Settings = SETTINGS) -> None:
    """Terminate these instances (one call per 200) and block until they are terminated."""
    for chunk in _chunks(instance_ids):
        api.ec2("terminate_instances", what=f"terminating {len(chunk)} instances",
                InstanceIds=chunk)

    def terminated() -> bool:
        return all(i["State"]["Name"] == "terminated" for i in _by_id(api, instance_ids).values())

    wait_until(terminated, what=f"{len(instance_ids)} instances to terminate", timeout_s=settings.delete_timeout_s,
               **settings.polling())


def delete_vms(api: AwsApi, cluster: ClusterRef, names: Sequence[str], settings: Settings = SETTINGS) -> None:
    """Terminate the cluster's instances with these node names; absent names are done."""
    items = []
    for chunk in _chunks(list(names)):
        items += live_instances(api, cluster, {"Name": f"tag:{tags.NODE}", "Values": chunk})
    if items:
        terminate(api, [i["InstanceId"] for i in items], settings)


def foreign_vms(api: AwsApi, cluster: ClusterRef, vpc_ids: Sequence[str]) -> list[Vm]:
    """Instances in these VPCs that do not carry the cluster's UUID."""
    if not vpc_ids:
        return []
    state = {"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)}
    items = describe_instances(api, [{"Name": "vpc-id", "Values": list(vpc_ids)}, state])
    return [to_vm(i) for i in items if tags_of(i).get(tags.CLUSTER_UUID) != cluster.uuid]
