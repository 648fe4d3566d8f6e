"""The cluster's load balancer on AWS (balancing.LoadBalancing): a Network Load Balancer in the
cluster's subnet with an Elastic IP as its static address (the subnet mapping's allocation), a
target group per forward (TCP to the NodePort, the workers registered by instance id, an HTTP
health check), and a TCP listener per forward. Everything carries the cluster's tags; the
load balancer and its target groups are found by name (`cast-<short id>`, elbv2 filters
nothing by tag) and their tags checked, the Elastic IP by its tags."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from .. import tags
from ..errors import ExcessResourcesError, NotFoundError
from ..retry import wait_until
from ..teardown import delete_inventory
from .aws_api import CLOUD, AwsApi
from .aws_instances import live_instances
from .aws_network import find_subnet
from .aws_owned import at_most_one, cluster_tags, owned, tag_list, tag_specs, tags_of
from .balancing import BalancerEnsured, BalancerPlan, Forward, LoadBalancing
from .base import CloudResource, CloudTarget, ClusterRef, Owned, Vm

PURPOSE = "cast-purpose"  # the Elastic IP's tag saying what it is for
LB_PURPOSE = "load-balancer"
ACTIVE_TIMEOUT_S = 600.0
GONE_TIMEOUT_S = 600.0


def lb_name(cluster: ClusterRef) -> str:
    """The load balancer's name (32 characters at most, letters, digits and '-')."""
    return f"cast-{cluster.short_id}"


def tg_name(cluster: ClusterRef, forward: Forward) -> str:
    """The name of the target group behind one forward."""
    return f"cast-{cluster.short_id}-{forward.listen}"


class Balancers(LoadBalancing):
    """The cluster's NLB in one region, through boto3's elbv2 and EC2 clients."""

    def __init__(self, region: str, zone: str | None = None, *, api: AwsApi | None = None):
        self.region = region
        self.zone = zone
        self._api = api

    @property
    def api(self) -> AwsApi:
        if self._api is None:
            self._api = AwsApi(self.region)
        return self._api

    # --- lookups ---------------------------------------------------------------------------

    def _owned_by(self, cluster: ClusterRef, arn: str) -> bool:
        found = self.api.call("elbv2", "describe_tags", what="reading load-balancer tags", ResourceArns=[arn])
        for description in found.get("TagDescriptions", []):
            if tags_of(description).get(tags.CLUSTER_UUID) == cluster.uuid:
                return True
        return False

    def _load_balancer(self, cluster: ClusterRef) -> dict[str, Any] | None:
        name = lb_name(cluster)
        try:
            found = self.api.call("elbv2", "describe_load_balancers", what=f"looking up load balancer {name}",
                                  Names=[name])["LoadBalancers"]
        except NotFoundError:
            return None
        return self._checked(cluster, "load balancer", found, "LoadBalancerArn")

    def _target_group(self, cluster: ClusterRef, forward: Forward) -> dict[str, Any] | None:
        name = tg_name(cluster, forward)
        try:
            found = self.api.call("elbv2", "describe_target_groups", what=f"looking up target group {name}",
                                  Names=[name])["TargetGroups"]
        except NotFoundError:
            return None
        return self._checked(cluster, "target group", found, "TargetGroupArn")

    def _checked(self, cluster: ClusterRef, kind: str, found: list[dict[str, Any]],
                 arn_key: str) -> dict[str, Any] | None:
        item = found[0] if found else None
        if item is not None and not self._owned_by(cluster, item[arn_key]):
            # the name holds our short id, but the resource is another cluster's (or the user's)
            raise ExcessResourcesError(CLOUD, f"{kind} {item[arn_key]} has cast's name for cluster {cluster.name} "
                                              f"but not {tags.CLUSTER_UUID}={cluster.uuid}: rename or delete it")
        return item

    def _address(self, cluster: ClusterRef) -> dict[str, Any] | None:
        items = self.api.describe("describe_addresses", "Addresses",
                                  Filters=owned(cluster, {"Name": f"tag:{PURPOSE}", "Values": [LB_PURPOSE]}))
        return at_most_one("load-balancer Elastic IP", items, "AllocationId", cluster)

    def _registered(self, group_arn: str) -> set[str]:
        found = self.api.call("elbv2", "describe_target_health", what="reading the registered targets",
                              TargetGroupArn=group_arn)
        return {d["Target"]["Id"] for d in found.get("TargetHealthDescriptions", [])}

    # --- the contract ----------------------------------------------------------------------

    def ensure_load_balancer(self, target: CloudTarget, plan: BalancerPlan, workers: Sequence[Vm], *,
                             dry_run: bool = False) -> BalancerEnsured:
        cluster = target.cluster
        name = lb_name(cluster)
        actions: list[str] = []
        address = self._address(cluster)
        if address is None:
            actions.append("allocate an Elastic IP for the load balancer")
            if not dry_run:
                address = self.api.ec2("allocate_address", what="allocating the load balancer's Elastic IP",
                                       Domain="vpc", TagSpecifications=tag_specs(
                                           ["elastic-ip"], cluster_tags(cluster, name, **{PURPOSE: LB_PURPOSE})))
        lb = self._load_balancer(cluster)
        if lb is None:
            actions.append(f"create network load balancer {name}")
            if dry_run:
                return BalancerEnsured(actions=(*actions, *self._plan_actions(plan, workers)),
                                       address=address.get("PublicIp") if address else None)
            assert address is not None
            lb = self._create(target, name, address["AllocationId"])
        resources = [CloudResource("load-balancer", lb["LoadBalancerArn"], name),
                     *([CloudResource("elastic-ip", address["AllocationId"], address.get("PublicIp", ""))]
                       if address else [])]
        listeners = self.api.call("elbv2", "describe_listeners", what=f"reading the listeners of {name}",
                                  LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        wanted_ports = {f.listen for f in plan.forwards}
        for forward in plan.forwards:
            group = self._ensure_group(target, plan, forward, lb["VpcId"], actions, dry_run)
            if group is None:
                continue
            resources.append(CloudResource("target-group", group["TargetGroupArn"], tg_name(cluster, forward)))
            self._ensure_listener(lb, listeners, forward, group, actions, dry_run)
            self._ensure_targets(group, forward, workers, actions, dry_run)
        for listener in listeners:
            if listener["Port"] not in wanted_ports:
                actions.append(f"delete listener on port {listener['Port']}")
                if not dry_run:
                    self.api.call("elbv2", "delete_listener", what="deleting a listener not in the plan",
                                  ListenerArn=listener["ListenerArn"])
        return BalancerEnsured(resources=tuple(resources), actions=tuple(actions),
                               address=address.get("PublicIp") if address else None,
                               backends=tuple(vm.name for vm in workers))

    @staticmethod
    def _plan_actions(plan: BalancerPlan, workers: Sequence[Vm]) -> list[str]:
        names = ", ".join(vm.name for vm in workers) or "none"
        return [f"forward tcp {f.listen} to node port {f.node_port} (targets {names})" for f in plan.forwards]

    def _create(self, target: CloudTarget, name: str, allocation: str) -> dict[str, Any]:
        subnet = find_subnet(self.api, target.cluster)
        if subnet is None:
            raise NotFoundError(CLOUD, f"no subnet carries cluster {target.cluster.uuid}: ensure the subnet "
                                       "before the load balancer")
        created = self.api.call(
            "elbv2", "create_load_balancer", what=f"creating network load balancer {name}", Name=name,
            Type="network", Scheme="internet-facing", IpAddressType="ipv4",
            SubnetMappings=[{"SubnetId": subnet["SubnetId"], "AllocationId": allocation}],
            Tags=tag_list(cluster_tags(target.cluster, name)))["LoadBalancers"][0]
        arn = created["LoadBalancerArn"]

        def active() -> dict[str, Any] | None:
            found = self.api.call("elbv2", "describe_load_balancers", what=f"waiting for {name}",
                                  LoadBalancerArns=[arn])["LoadBalancers"]
            return found[0] if found and found[0].get("State", {}).get("Code") == "active" else None

        return wait_until(active, what=f"load balancer {name} to be active", timeout_s=ACTIVE_TIMEOUT_S,
                          initial=0.2, maximum=5.0)

    def _ensure_group(self, target: CloudTarget, plan: BalancerPlan, forward: Forward, vpc_id: str,
                      actions: list[str], dry_run: bool) -> dict[str, Any] | None:
        cluster = target.cluster
        name = tg_name(cluster, forward)
        health = {"HealthCheckProtocol": "HTTP", "HealthCheckPort": str(plan.health_port),
                  "HealthCheckPath": plan.health_path, "HealthCheckEnabled": True}
        group = self._target_group(cluster, forward)
        if group is None:
            actions.append(f"create target group {name} (tcp {forward.node_port}, health check http "
                           f"{plan.health_port}{plan.health_path})")
            if dry_run:
                return None
            return self.api.call("elbv2", "create_target_group", what=f"creating target group {name}", Name=name,
                                 Protocol="TCP", Port=forward.node_port, VpcId=vpc_id, TargetType="instance",
                                 Tags=tag_list(cluster_tags(cluster, name)), **health)["TargetGroups"][0]
        differs = (group.get("HealthCheckProtocol") != "HTTP"
                   or str(group.get("HealthCheckPort")) != str(plan.health_port)
                   or group.get("HealthCheckPath") != plan.health_path)
        if differs:
            actions.append(f"repair the health check of {name}")
            if not dry_run:
                self.api.call("elbv2", "modify_target_group", what=f"repairing the health check of {name}",
                              TargetGroupArn=group["TargetGroupArn"], **health)
        return group

    def _ensure_listener(self, lb: dict[str, Any], listeners: list[dict[str, Any]], forward: Forward,
                         group: dict[str, Any], actions: list[str], dry_run: bool) -> None:
        action = [{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}]
        listener = next((x for x in listeners if x["Port"] == forward.listen), None)
        if listener is None:
            actions.append(f"listen on tcp {forward.listen}")
            if not dry_run:
                self.api.call("elbv2", "create_listener", what=f"creating the listener on {forward.listen}",
                              LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=forward.listen,
                              DefaultActions=action)
            return
        current = [(a.get("Type"), a.get("TargetGroupArn")) for a in listener.get("DefaultActions", [])]
        if listener.get("Protocol") != "TCP" or current != [("forward", group["TargetGroupArn"])]:
            actions.append(f"repair the listener on tcp {forward.listen}")
            if not dry_run:
                self.api.call("elbv2", "modify_listener", what=f"repairing the listener on {forward.listen}",
                              ListenerArn=listener["ListenerArn"], Protocol="TCP", Port=forward.listen,
                              DefaultActions=action)

    def _ensure_targets(self, group: dict[str, Any], forward: Forward, workers: Sequence[Vm],
                        actions: list[str], dry_run: bool) -> None:
        arn = group["TargetGroupArn"]
        registered = self._registered(arn)
        wanted = {vm.cloud_id: vm.name for vm in workers}
        missing = [i for i in wanted if i not in registered]
        extra = sorted(registered - wanted.keys())
        if missing:
            actions.append(f"register {', '.join(wanted[i] for i in missing)} on tcp {forward.node_port}")
            if not dry_run:
                self.api.call("elbv2", "register_targets", what="registering the workers", TargetGroupArn=arn,
                              Targets=[{"Id": i, "Port": forward.node_port} for i in missing])
        if extra:
            actions.append(f"deregister {', '.join(extra)} from tcp {forward.node_port}")
            if not dry_run:
                self.api.call("elbv2", "deregister_targets", what="deregistering targets not in the plan",
                              TargetGroupArn=arn, Targets=[{"Id": i} for i in extra])

    def find_load_balancer(self, cluster: ClusterRef) -> BalancerEnsured | None:
        lb = self._load_balancer(cluster)
        if lb is None:
            return None
        address = self._address(cluster)
        group = self._target_group(cluster, BalancerPlan().forwards[0])
        ids = self._registered(group["TargetGroupArn"]) if group else set()
        names = {i["InstanceId"]: tags_of(i).get(tags.NODE, i["InstanceId"]) for i in live_instances(self.api, cluster)}
        return BalancerEnsured(resources=(CloudResource("load-balancer", lb["LoadBalancerArn"], lb_name(cluster)),),
                               address=address.get("PublicIp") if address else None,
                               backends=tuple(sorted(names.get(i, i) for i in ids)))

    def delete_load_balancer(self, target: CloudTarget) -> None:
        delete_inventory(CLOUD, inventory(self.api, target.cluster))


def inventory(api: AwsApi, cluster: ClusterRef) -> list[Owned]:
    """The cluster's load-balancer resources on AWS as inventory entries: the load balancer
    (its listeners go with it) first, then its target groups and its Elastic IP (the subnet,
    the gateway and the VPC wait for the kinds "load-balancer" and "elastic-ip")."""
    from concurrent.futures import ThreadPoolExecutor

    balancers = Balancers(api.region, api=api)
    items: list[Owned] = []
    forwards = BalancerPlan().forwards
    with ThreadPoolExecutor(max_workers=len(forwards) + 2) as pool:  # the lookups at once
        looked = pool.submit(balancers._load_balancer, cluster)
        address_found = pool.submit(balancers._address, cluster)
        groups = list(pool.map(lambda forward: balancers._target_group(cluster, forward), forwards))
        lb, address = looked.result(), address_found.result()
    first = frozenset({"load-balancer"})
    if lb is not None:
        items.append(Owned("load-balancer", lb["LoadBalancerArn"], str(lb.get("LoadBalancerName", "")),
                           delete=functools.partial(_delete_lb, api, lb["LoadBalancerArn"])))
    for forward, group in zip(forwards, groups, strict=True):
        if group is not None:
            items.append(Owned("target-group", group["TargetGroupArn"], tg_name(cluster, forward), after=first,
                               delete=functools.partial(
                                   api.call, "elbv2", "delete_target_group",
                                   what=f"deleting target group {tg_name(cluster, forward)}",
                                   TargetGroupArn=group["TargetGroupArn"])))
    if address is not None:
        items.append(Owned("elastic-ip", address["AllocationId"], str(address.get("PublicIp", "")), after=first,
                           delete=functools.partial(api.ec2, "release_address",
                                                    what="releasing the load balancer's Elastic IP",
                                                    AllocationId=address["AllocationId"])))
    return items


def _delete_lb(api: AwsApi, arn: str) -> None:
    """Delete the load balancer and block until AWS no longer lists it."""
    api.call("elbv2", "delete_load_balancer", what="deleting the load balancer", LoadBalancerArn=arn)

    def gone() -> bool:
        try:
            return not api.call("elbv2", "describe_load_balancers", what="waiting for the load balancer to go",
                                LoadBalancerArns=[arn])["LoadBalancers"]
        except NotFoundError:
            return True

    wait_until(gone, what="the load balancer to be deleted", timeout_s=GONE_TIMEOUT_S, initial=0.2, maximum=5.0)
