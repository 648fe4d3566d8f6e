"""Everything of a cluster on AWS, found by its UUID: the inventory that serves both listing
and teardown.

Order (each kind waits for the kinds it names): instances first (one TerminateInstances for
all of them, shared by their entries); detached volumes and network interfaces after
instances; security groups, subnets and internet gateways (detached, then deleted: AWS
refuses while instances hold public addresses) after those; VPCs after all of them. Route
tables (disassociated first) and key pairs wait for nothing. provisioner.teardown runs the
passes, the retries and the stall budget.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from ..errors import NotFoundError
from ..teardown import Batch
from .aws_api import CLOUD, AwsApi
from .aws_instances import live_instances, terminate
from .aws_owned import owned, tags_of
from .base import ClusterRef, Owned, Settings

_INSTANCES = frozenset({"instance"})
# what holds a subnet, group or gateway (a load balancer holds an address in the subnet)
_ATTACHED = frozenset({"instance", "volume", "network-interface", "load-balancer", "elastic-ip"})

# kind -> (describe operation, result key, id key, extra filters, after)
_KINDS: dict[str, tuple[str, str, str, tuple[dict[str, Any], ...], frozenset[str]]] = {
    "volume": ("describe_volumes", "Volumes", "VolumeId",
               ({"Name": "status", "Values": ["available"]},), _INSTANCES),
    "network-interface": ("describe_network_interfaces", "NetworkInterfaces", "NetworkInterfaceId",
                          ({"Name": "status", "Values": ["available"]},), _INSTANCES),
    "security-group": ("describe_security_groups", "SecurityGroups", "GroupId", (), _ATTACHED),
    "subnet": ("describe_subnets", "Subnets", "SubnetId", (), _ATTACHED),
    "route-table": ("describe_route_tables", "RouteTables", "RouteTableId", (), frozenset()),
    "internet-gateway": ("describe_internet_gateways", "InternetGateways", "InternetGatewayId", (), _ATTACHED),
    "vpc": ("describe_vpcs", "Vpcs", "VpcId", (),
            frozenset({"security-group", "subnet", "route-table", "internet-gateway"})),
    "key-pair": ("describe_key_pairs", "KeyPairs", "KeyPairId", (), frozenset()),
}


def inventory(api: AwsApi, cluster: ClusterRef, settings: Settings) -> list[Owned]:
    """Describe every kind at once (one filtered call per kind, in parallel)."""
    def one(kind: str) -> tuple[str, list[dict[str, Any]]]:
        if kind == "instance":
            return kind, live_instances(api, cluster)
        operation, key, _, more, _ = _KINDS[kind]
        return kind, api.describe(operation, key, Filters=owned(cluster, *more))

    from .aws_lb import inventory as balancer_inventory

    kinds = ["instance", *_KINDS]
    with ThreadPoolExecutor(max_workers=len(kinds) + 1) as pool:
        balancers = pool.submit(balancer_inventory, api, cluster)  # its lookups alongside the kinds'
        found = dict(pool.map(one, kinds))
        out_balancers = balancers.result()
    instances = [i["InstanceId"] for i in found["instance"]]
    batch = Batch("instances terminating", CLOUD, _terminator(api, cluster, instances, settings))
    out = [Owned("instance", i, _name(item), delete=batch.deleter(i))
           for i, item in zip(instances, found["instance"], strict=True)]
    out += out_balancers
    for kind, (_, _, id_key, _, after) in _KINDS.items():
        out += [Owned(kind, item[id_key], _name(item), after=after,
                      delete=functools.partial(_DELETERS[kind], api, item)) for item in found[kind]]
    return out


def _name(item: dict[str, Any]) -> str:
    return tags_of(item).get("Name") or item.get("KeyName") or ""


def _delete(api: AwsApi, operation: str, **params: Any) -> None:
    api.ec2(operation, what=f"{operation} {' '.join(map(str, params.values()))}", **params)


def _terminator(api: AwsApi, cluster: ClusterRef, known: list[str], settings: Settings) -> Callable[[], None]:
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
                terminate(api, ids, settings)
        except NotFoundError:
            ids = live()
            if ids:
                terminate(api, ids, settings)

    return terminate_live


def _delete_route_table(api: AwsApi, table: dict[str, Any]) -> None:
    for association in table.get("Associations", []):
        if not association.get("Main"):
            with suppress(NotFoundError):
                _delete(api, "disassociate_route_table",
                        AssociationId=association["RouteTableAssociationId"])
    _delete(api, "delete_route_table", RouteTableId=table["RouteTableId"])


def _delete_gateway(api: AwsApi, gateway: dict[str, Any]) -> None:
    # A second attempt finds the gateway detached: Gateway.NotAttached maps to NotFoundError.
    for attachment in gateway.get("Attachments", []):
        with suppress(NotFoundError):
            _delete(api, "detach_internet_gateway",
                    InternetGatewayId=gateway["InternetGatewayId"], VpcId=attachment["VpcId"])
    _delete(api, "delete_internet_gateway", InternetGatewayId=gateway["InternetGatewayId"])


_DELETERS: dict[str, Callable[[AwsApi, dict[str, Any]], None]] = {
    "volume": lambda api, v: _delete(api, "delete_volume", VolumeId=v["VolumeId"]),
    "network-interface": lambda api, n: _delete(api, "delete_network_interface",
                                                NetworkInterfaceId=n["NetworkInterfaceId"]),
    "security-group": lambda api, g: _delete(api, "delete_security_group", GroupId=g["GroupId"]),
    "subnet": lambda api, s: _delete(api, "delete_subnet", SubnetId=s["SubnetId"]),
    "route-table": _delete_route_table,
    "internet-gateway": _delete_gateway,
    "vpc": lambda api, v: _delete(api, "delete_vpc", VpcId=v["VpcId"]),
    "key-pair": lambda api, k: _delete(api, "delete_key_pair", KeyName=k["KeyName"]),
}
