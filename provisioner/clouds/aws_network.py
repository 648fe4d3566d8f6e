"""The cluster's network on AWS: VPC, internet gateway, route table with the default route,
and the /24 subnet associated with that route table. Each piece is found by the cluster's
UUID and made only when missing; lookups go at once, and so do creates that do not need each
other (VPC and gateway; attaching the gateway and making the route table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import NotFoundError
from ..parallel import gather
from ..retry import wait_until
from .aws_api import CLOUD, AwsApi
from .aws_owned import at_most_one, cluster_tags, owned, tag_specs, tags_of
from .base import CloudResource, CloudTarget, ClusterRef, Ensured

AVAILABLE_TIMEOUT_S = 300.0

DEFAULT_ROUTE = "0.0.0.0/0"


def find_vpc(api: AwsApi, cluster: ClusterRef) -> dict[str, Any] | None:
    """The cluster's VPC, or None."""
    return at_most_one("VPC", api.describe("describe_vpcs", "Vpcs", Filters=owned(cluster)),
                       "VpcId", cluster)


def find_subnet(api: AwsApi, cluster: ClusterRef) -> dict[str, Any] | None:
    """The cluster's subnet, or None."""
    items = api.describe("describe_subnets", "Subnets", Filters=owned(cluster))
    return at_most_one("subnet", items, "SubnetId", cluster)


def _resource(kind: str, item: dict[str, Any], id_key: str, **extra: Any) -> CloudResource:
    return CloudResource(kind, item[id_key], tags_of(item).get("Name", ""), extra)


def find_gateway(api: AwsApi, cluster: ClusterRef) -> dict[str, Any] | None:
    """The cluster's internet gateway, or None."""
    items = api.describe("describe_internet_gateways", "InternetGateways", Filters=owned(cluster))
    return at_most_one("internet gateway", items, "InternetGatewayId", cluster)


def ensure_network(api: AwsApi, target: CloudTarget, dry_run: bool,
                   on_new_vpc: Callable[[], object] | None = None) -> Ensured:
    """VPC, internet gateway (attached) and a route table with the default route to it.
    `on_new_vpc` is called when a VPC is about to be made (not in a dry run)."""
    cluster = target.cluster
    name = f"cast-{cluster.name}-{cluster.short_id}"
    actions: list[str] = []
    resources: list[CloudResource] = []

    vpc, igw, table = gather(lambda: find_vpc(api, cluster), lambda: find_gateway(api, cluster),
                             lambda: find_route_table(api, cluster))
    if vpc is None:
        actions.append(f"create VPC {name} {target.network_cidr}")
        if on_new_vpc is not None and not dry_run:
            on_new_vpc()
        if dry_run:
            actions += ["create internet gateway", "create route table with 0.0.0.0/0 route"]
            return Ensured(actions=tuple(actions))
    if igw is None:
        actions.append("create internet gateway")
    if not dry_run:
        found_vpc, found_igw = vpc, igw

        def the_vpc() -> dict[str, Any]:
            return found_vpc or _create_vpc(api, target, name)

        def the_gateway() -> dict[str, Any]:
            return found_igw or api.ec2("create_internet_gateway", what="creating the internet gateway",
                                        TagSpecifications=tag_specs(["internet-gateway"], cluster_tags(cluster, name))
                                        )["InternetGateway"]

        vpc, igw = gather(the_vpc, the_gateway)
    assert vpc is not None
    vpc_id = vpc["VpcId"]
    resources.append(_resource("vpc", vpc, "VpcId", cidr=vpc.get("CidrBlock")))

    attach = igw is not None and vpc_id not in {a["VpcId"] for a in igw.get("Attachments", [])}
    if attach:
        actions.append(f"attach internet gateway to {vpc_id}")
    if table is None:
        actions.append("create route table")
    if not dry_run:
        assert igw is not None
        gateway_id, found_table = igw["InternetGatewayId"], table

        def attach_gateway() -> None:
            if attach:
                api.ec2("attach_internet_gateway", what="attaching the internet gateway",
                        InternetGatewayId=gateway_id, VpcId=vpc_id)

        def the_table() -> dict[str, Any]:
            return found_table or api.ec2("create_route_table", what="creating the route table", VpcId=vpc_id,
                                          TagSpecifications=tag_specs(["route-table"], cluster_tags(cluster, name))
                                          )["RouteTable"]

        _, table = gather(attach_gateway, the_table)
    if igw is not None:
        resources.append(_resource("internet-gateway", igw, "InternetGatewayId"))
    if table is not None and igw is not None:
        _ensure_default_route(api, table, igw["InternetGatewayId"], actions, dry_run)
        resources.append(_resource("route-table", table, "RouteTableId"))
    elif dry_run:
        actions.append(f"add route {DEFAULT_ROUTE} via the internet gateway")
    return Ensured(resources=tuple(resources), actions=tuple(actions))


def _create_vpc(api: AwsApi, target: CloudTarget, name: str) -> dict[str, Any]:
    """Create the VPC and return it once it is available."""
    vpc: dict[str, Any] = api.ec2("create_vpc", what=f"creating VPC {name}", CidrBlock=target.network_cidr,
                                  TagSpecifications=tag_specs(["vpc"], cluster_tags(target.cluster, name)))["Vpc"]
    if vpc.get("State") == "available":
        return vpc

    def available() -> dict[str, Any] | None:
        found = api.describe("describe_vpcs", "Vpcs", VpcIds=[vpc["VpcId"]])
        return found[0] if found and found[0].get("State") == "available" else None

    return wait_until(available, what=f"VPC {vpc['VpcId']} to be available", timeout_s=AVAILABLE_TIMEOUT_S,
                      initial=0.2, maximum=2.0)


def find_route_table(api: AwsApi, cluster: ClusterRef) -> dict[str, Any] | None:
    """The cluster's route table, or None."""
    items = api.describe("describe_route_tables", "RouteTables", Filters=owned(cluster))
    return at_most_one("route table", items, "RouteTableId", cluster)


def _ensure_default_route(api: AwsApi, table: dict[str, Any], igw_id: str, actions: list[str],
                          dry_run: bool) -> None:
    route = next((r for r in table.get("Routes", [])
                  if r.get("DestinationCidrBlock") == DEFAULT_ROUTE), None)
    if route is not None and route.get("GatewayId") == igw_id and route.get("State") != "blackhole":
        return
    verb = "create_route" if route is None else "replace_route"
    actions.append(f"{'add' if route is None else 'repair'} route {DEFAULT_ROUTE} via {igw_id}")
    if not dry_run:
        api.ec2(verb, what="setting the default route", RouteTableId=table["RouteTableId"],
                DestinationCidrBlock=DEFAULT_ROUTE, GatewayId=igw_id)


def ensure_subnet(api: AwsApi, target: CloudTarget, dry_run: bool) -> Ensured:
    """The cluster's /24 in its zone, associated with the cluster's route table."""
    cluster = target.cluster
    name = f"cast-{cluster.name}-{cluster.short_id}"
    actions: list[str] = []
    subnet, table, vpc = gather(lambda: find_subnet(api, cluster), lambda: find_route_table(api, cluster),
                                lambda: find_vpc(api, cluster))
    if subnet is None:
        actions.append(f"create subnet {target.subnet_cidr} in {target.zone or target.region}")
        if dry_run:
            return Ensured(actions=tuple(actions + ["associate the route table"]))
        if vpc is None:
            raise NotFoundError(CLOUD, f"no VPC carries cluster {cluster.uuid}: ensure the "
                                       "network before the subnet")
        zone = {"AvailabilityZone": target.zone} if target.zone else {}
        subnet = api.ec2("create_subnet", what=f"creating subnet {target.subnet_cidr}",
                         VpcId=vpc["VpcId"], CidrBlock=target.subnet_cidr,
                         TagSpecifications=tag_specs(["subnet"], cluster_tags(cluster, name)),
                         **zone)["Subnet"]
    if table is not None:
        associated = {a.get("SubnetId") for a in table.get("Associations", [])}
        if subnet["SubnetId"] not in associated:
            actions.append(f"associate route table with {subnet['SubnetId']}")
            if not dry_run:
                api.ec2("associate_route_table", what="associating the route table",
                        RouteTableId=table["RouteTableId"], SubnetId=subnet["SubnetId"])
    resources = (_resource("subnet", subnet, "SubnetId", cidr=subnet.get("CidrBlock"),
                           zone=subnet.get("AvailabilityZone")),)
    return Ensured(resources=resources, actions=tuple(actions))
