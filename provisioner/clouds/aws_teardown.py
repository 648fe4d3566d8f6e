"""Everything of a cluster on AWS, found by its UUID, and its deletion as a graph.

Order (each line waits for the ones it names): instances; detached volumes and network
interfaces after instances; security groups, subnets and detaching internet gateways (AWS
refuses while instances hold public addresses) after those; VPCs after them; deleting a
detached gateway beside the VPC. Route tables (disassociated first) and key pairs depend on
nothing. provisioner.teardown runs the passes, the retries and the stall budget.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from ..errors import ForeignVmError, NotFoundError
from ..parallel import gather
from ..teardown import Deletable, delete_in_passes
from .aws_api import CLOUD, AwsApi
from .aws_instances import foreign_vms, live_instances, terminate
from .aws_owned import owned, tags_of
from .base import CloudResource, ClusterRef

# kind -> (describe operation, result key, id key)
_KINDS: dict[str, tuple[str, str, str]] = {
    "security-group": ("describe_security_groups", "SecurityGroups", "GroupId"),
    "subnet": ("describe_subnets", "Subnets", "SubnetId"),
    "route-table": ("describe_route_tables", "RouteTables", "RouteTableId"),
    "internet-gateway": ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
    "vpc": ("describe_vpcs", "Vpcs", "VpcId"),
    "key-pair": ("describe_key_pairs", "KeyPairs", "KeyPairId"),
}


@dataclass(frozen=True)
class Inventory:
    """The cluster's resources by kind ("instance" and the keys of _KINDS), as described."""

    items: dict[str, list[dict[str, Any]]]

    def ids(self, kind: str) -> list[str]:
        id_key = "InstanceId" if kind == "instance" else _KINDS[kind][2]
        return [i[id_key] for i in self.items.get(kind, [])]

    def resources(self) -> list[CloudResource]:
        out = []
        for kind, items in self.items.items():
            id_key = "InstanceId" if kind == "instance" else _KINDS[kind][2]
            for item in items:
                name = tags_of(item).get("Name") or item.get("KeyName") or ""
                out.append(CloudResource(kind, item[id_key], name))
        return out


def inventory(api: AwsApi, cluster: ClusterRef) -> Inventory:
    """Describe every kind at once (one filtered call per kind, in parallel)."""
    def one(kind: str) -> tuple[str, list[dict[str, Any]]]:
        if kind == "instance":
            return kind, live_instances(api, cluster)
        operation, key, _ = _KINDS[kind]
        return kind, api.describe(operation, key, Filters=owned(cluster))

    kinds = ["instance", *_KINDS]
    with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
        return Inventory(dict(pool.map(one, kinds)))


def teardown(api: AwsApi, cluster: ClusterRef, *, stall_budget_s: float) -> list[str]:
    """Refuse if a stranger runs in the cluster's VPCs; else delete everything of the cluster.
    Returns the deleted keys in order."""
    inv = inventory(api, cluster)
    strangers = foreign_vms(api, cluster, inv.ids("vpc"))  # needs the VPCs: after the inventory
    if strangers:
        raise ForeignVmError(CLOUD, [
            f"{v.cloud_id} ({v.name}, "
            f"{'cluster ' + v.cluster_uuid if v.cluster_uuid else 'no cast-cluster-uuid tag'})"
            for v in strangers
        ])
    from .aws_lb import deletables as balancer_deletables

    # the load balancer first: it holds an address in the subnet the network waits for
    done = delete_in_passes(CLOUD, balancer_deletables(api, cluster), stall_budget_s=stall_budget_s)
    return done + delete_in_passes(CLOUD, deletables(api, cluster, inv), stall_budget_s=stall_budget_s)


def deletables(api: AwsApi, cluster: ClusterRef, inv: Inventory) -> list[Deletable]:
    """The teardown graph of an inventory."""
    items: list[Deletable] = []
    first: frozenset[str] = frozenset()
    if inv.ids("instance"):
        key = f"instances {', '.join(sorted(inv.ids('instance')))}"
        items.append(Deletable(key, _terminator(api, cluster, inv.ids("instance"))))
        leftovers = "detached volumes and network interfaces"
        items.append(Deletable(leftovers, lambda: _delete_leftovers(api, cluster),
                               frozenset({key})))
        first = frozenset({key, leftovers})

    def add(kind: str, delete: Callable[[dict[str, Any]], None], after: frozenset[str],
            label: str = "") -> list[str]:
        keys = []
        for item in inv.items.get(kind, []):
            key = f"{label or kind} {item[_KINDS[kind][2]]}"
            items.append(Deletable(key, functools.partial(delete, item), after))
            keys.append(key)
        return keys

    middle = add("security-group", lambda g: _delete(api, "delete_security_group",
                                                      GroupId=g["GroupId"]), first)
    middle += add("subnet", lambda s: _delete(api, "delete_subnet", SubnetId=s["SubnetId"]), first)
    middle += add("route-table", lambda t: _delete_route_table(api, t), frozenset())
    detached = add("internet-gateway", lambda g: _detach_gateway(api, g), first, "detach internet-gateway")
    middle += detached
    add("internet-gateway", lambda g: _delete(api, "delete_internet_gateway",
                                              InternetGatewayId=g["InternetGatewayId"]), frozenset(detached))
    add("vpc", lambda v: _delete(api, "delete_vpc", VpcId=v["VpcId"]), frozenset(middle))
    add("key-pair", lambda k: _delete(api, "delete_key_pair", KeyName=k["KeyName"]),
        frozenset())
    return items


def _delete(api: AwsApi, operation: str, **params: Any) -> None:
    api.ec2(operation, what=f"{operation} {' '.join(map(str, params.values()))}", **params)


def _terminator(api: AwsApi, cluster: ClusterRef, known: list[str]) -> Callable[[], None]:
    """Terminate the cluster's live instances: first those of the inventory (just described),
    on any later attempt those described afresh. One unknown id fails a whole
    TerminateInstances call: then too they are described afresh."""
    untried = [list(known)]

    def live() -> list[str]:
        return [i["InstanceId"] for i in live_instances(api, cluster)]

    def terminate_live() -> None:
        ids = untried.pop() if untried else live()
        try:
            if ids:
                terminate(api, ids)
        except NotFoundError:
            ids = live()
            if ids:
                terminate(api, ids)

    return terminate_live


def _delete_leftovers(api: AwsApi, cluster: ClusterRef) -> None:
    """Volumes and network interfaces the instances left behind, available and tagged."""
    available = {"Name": "status", "Values": ["available"]}
    volumes, enis = gather(
        lambda: api.describe("describe_volumes", "Volumes", Filters=owned(cluster, available)),
        lambda: api.describe("describe_network_interfaces", "NetworkInterfaces", Filters=owned(cluster, available)))
    for volume in volumes:
        with suppress(NotFoundError):
            _delete(api, "delete_volume", VolumeId=volume["VolumeId"])
    for eni in enis:
        with suppress(NotFoundError):
            _delete(api, "delete_network_interface", NetworkInterfaceId=eni["NetworkInterfaceId"])


def _delete_route_table(api: AwsApi, table: dict[str, Any]) -> None:
    for association in table.get("Associations", []):
        if not association.get("Main"):
            with suppress(NotFoundError):
                _delete(api, "disassociate_route_table",
                        AssociationId=association["RouteTableAssociationId"])
    _delete(api, "delete_route_table", RouteTableId=table["RouteTableId"])


def _detach_gateway(api: AwsApi, gateway: dict[str, Any]) -> None:
    for attachment in gateway.get("Attachments", []):
        with suppress(NotFoundError):
            _delete(api, "detach_internet_gateway",
                    InternetGatewayId=gateway["InternetGatewayId"], VpcId=attachment["VpcId"])

