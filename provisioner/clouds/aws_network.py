"""The cluster's network on AWS: VPC, internet gateway, route table with the default route,
and the /24 subnet associated with that route table. Each piece is found by the cluster's
UUID and made only when missing."""

from __future__ import annotations

from typing import Any

from ..errors import NotFoundError
from .aws_api import CLOUD, AwsApi
from .aws_owned import at_most_one, cluster_tags, owned, tag_specs, tags_of
from .base import CloudResource, CloudTarget, ClusterRef, Ensured

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


def ensure_network(api: AwsApi, target: CloudTarget, dry_run: bool) -> Ensured:
    """VPC, internet gateway (attached) and a route table with the default route to it."""
    cluster = target.cluster
    name = f"cast-{cluster.name}-{cluster.short_id}"
    actions: list[str] = []
    resources: list[CloudResource] = []

    vpc = find_vpc(api, cluster)
    if vpc is None:
        actions.append(f"create VPC {name} {target.network_cidr}")
        if dry_run:
            actions += ["create internet gateway", "create route table with 0.0.0.0/0 route"]
            return Ensured(actions=tuple(actions))
        vpc = api.ec2("create_vpc", what=f"creating VPC {name}", CidrBlock=target.network_cidr,
                      TagSpecifications=tag_specs(["vpc"], cluster_tags(cluster, name)))["Vpc"]
        if vpc.get("State") != "available":
            api.wait("vpc_available", what=f"waiting for VPC {vpc['VpcId']}", delay=2,
                     VpcIds=[vpc["VpcId"]])
    vpc_id = vpc["VpcId"]
    resources.append(_resource("vpc", vpc, "VpcId", cidr=vpc.get("CidrBlock")))

    igw = at_most_one("internet gateway", api.describe(
        "describe_internet_gateways", "InternetGateways", Filters=owned(cluster)),
        "InternetGatewayId", cluster)
    if igw is None:
        actions.append("create internet gateway")
        if not dry_run:
            igw = api.ec2("create_internet_gateway", what="creating the internet gateway",
                          TagSpecifications=tag_specs(["internet-gateway"],
                                                      cluster_tags(cluster, name)))["InternetGateway"]
    if igw is not None:
        attached = {a["VpcId"] for a in igw.get("Attachments", [])}
        if vpc_id not in attached:
            actions.append(f"attach internet gateway to {vpc_id}")
            if not dry_run:
                api.ec2("attach_internet_gateway", what="attaching the internet gateway",
                        InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id)
        resources.append(_resource("internet-gateway", igw, "InternetGatewayId"))

    table = find_route_table(api, cluster)
    if table is None:
        actions.append("create route table")
        if not dry_run:
            table = api.ec2("create_route_table", what="creating the route table", VpcId=vpc_id,
                            TagSpecifications=tag_specs(["route-table"],
                                                        cluster_tags(cluster, name)))["RouteTable"]
    if table is not None and igw is not None:
        _ensure_default_route(api, table, igw["InternetGatewayId"], actions, dry_run)
        resources.append(_resource("route-table", table, "RouteTableId"))
    elif dry_run:
        actions.append(f"add route {DEFAULT_ROUTE} via the internet gateway")
    return Ensured(resources=tuple(resources), actions=tuple(actions))


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
    subnet = find_subnet(api, cluster)
    table = find_route_table(api, cluster)
    if subnet is None:
        actions.append(f"create subnet {target.subnet_cidr} in {target.zone or target.region}")
        if dry_run:
            return Ensured(actions=tuple(actions + ["associate the route table"]))
        vpc = find_vpc(api, cluster)
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
