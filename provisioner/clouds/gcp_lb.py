"""GCP's load balancer for the cluster's workers: a regional external passthrough Network Load
Balancer of the backend-service kind, through google-cloud-compute (gcp_api's clients, errors,
operations). The SDK is imported lazily.

Why a backend service and not a target pool: a target pool needs a legacy HTTP health check
(the global httpHealthChecks collection), and google-cloud-compute has no client for that
collection; the backend-service kind takes the regional health checks it does have.

One cluster, one region: a static external address `cast-<shortid>-lb-ip`, a regional HTTP
health check `-lb-hc` (the plan's port and path), an unmanaged instance group `-lb-ig` of the
workers in the cluster's zone, a regional backend service `-lb-bs` (EXTERNAL, TCP, CONNECTION
mode) over that group, and one TCP forwarding rule `-lb-fr` on the address with the plan's
listen ports. Each carries the cluster's UUID in its description, the address and the rule in
their labels too. Passthrough balancing does not translate ports: a packet to the address's
port 80 reaches a worker on port 80, where the ingress controller answers for the address
(its Service's externalIPs); the forwards' NodePorts are what the sandbox forwards to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..errors import CloudError
from ..parallel import gather
from ..tags import CLUSTER_UUID, cluster_tags
from ..teardown import delete_inventory
from . import gcp_layout as layout
from .balancing import BalancerEnsured, BalancerPlan, LoadBalancing
from .base import CloudResource, CloudTarget, ClusterRef, Owned, Vm
from .gcp_api import CLOUD, AlreadyExistsError, GcpApi, UsesGcpApi

PARTS = ("ip", "hc", "ig", "bs", "fr")  # name suffixes: cast-<shortid>-lb-<part>


def part_name(cluster: ClusterRef, part: str) -> str:
    """The name of one load-balancer resource of the cluster (`part` in PARTS)."""
    return f"{layout.prefix(cluster)}lb-{part}"


def _short(link: str) -> str:
    """A resource link as `projects/...`, whatever host it was written with."""
    return link[link.find("projects/"):] if "projects/" in link else link


@dataclass
class Parts:
    """The cluster's load-balancer resources as found (None: absent); `members` are the
    instance links in the group."""

    address: Any = None
    health_check: Any = None
    group: Any = None
    service: Any = None
    rule: Any = None
    members: tuple[str, ...] = ()


class Balancers(UsesGcpApi, LoadBalancing):
    """The cluster's load balancer in one region (and, for the instance group, one zone)."""

    keeps_port = True  # a passthrough forwarding rule delivers to the backends on 80/443 themselves
    stall_budget_s = 120.0

    def __init__(self, region: str, zone: str | None = None):
        self.region, self.zone = region, zone

    # --- the contract ------------------------------------------------------------------

    def ensure_load_balancer(self, target: CloudTarget, plan: BalancerPlan, workers: Sequence[Vm], *,
                             dry_run: bool = False) -> BalancerEnsured:
        cluster, zone = target.cluster, self._zone(target)
        parts = find_parts(self.api, cluster, self.region, zone)
        steps: list[tuple[str, Callable[[], None]]] = []
        if parts.address is None:
            steps.append((f"reserve address {part_name(cluster, 'ip')} in {self.region}",
                          lambda: self._insert_address(cluster)))
        check = parts.health_check
        if check is None or (check.http_health_check.port, check.http_health_check.request_path) != (
                plan.health_port, plan.health_path):
            verb = "create" if check is None else "repair"
            steps.append((f"{verb} health check {part_name(cluster, 'hc')} (HTTP {plan.health_port} "
                          f"{plan.health_path})", lambda: self._put_health_check(cluster, plan, update=bool(check))))
        if parts.group is None:
            steps.append((f"create instance group {part_name(cluster, 'ig')} in {zone}",
                          lambda: self._insert_group(cluster, zone)))
        wanted = {_short(vm.extra.get("self_link", "")): vm.name for vm in workers}
        have = set(parts.members)
        for link in sorted(set(wanted) - have):
            steps.append((f"add {wanted[link]} to the load balancer",
                          partial(self._members, cluster, zone, "add_instances", [link])))
        for link in sorted(have - set(wanted)):
            steps.append((f"remove {_node_of(cluster, link)} from the load balancer",
                          partial(self._members, cluster, zone, "remove_instances", [link])))
        if parts.service is None or _service_differs(parts.service, self.api.project, cluster, self.region, zone):
            verb = "create" if parts.service is None else "repair"
            steps.append((f"{verb} backend service {part_name(cluster, 'bs')}",
                          lambda: self._put_service(cluster, zone, update=parts.service is not None)))
        ports = [str(port) for port in sorted({f.listen for f in plan.forwards})]
        address = parts.address.address if parts.address is not None else None
        stale = parts.rule is not None and (list(parts.rule.ports) != ports or parts.rule.I_p_address != address)
        if stale:
            steps.append((f"delete forwarding rule {part_name(cluster, 'fr')} (not as planned)",
                          lambda: self._delete("ForwardingRulesClient", "forwarding_rule", part_name(cluster, "fr"))))
        if parts.rule is None or stale:
            steps.append((f"create forwarding rule {part_name(cluster, 'fr')} (TCP {', '.join(ports)})",
                          lambda: self._insert_rule(cluster, ports)))
        if dry_run:
            return BalancerEnsured(resources=_resources(parts), actions=tuple(s for s, _ in steps), address=address,
                                   backends=tuple(sorted(_node_of(cluster, m) for m in parts.members)))
        for _, step in steps:  # in order: each part needs the ones before it
            step()
        found = find_parts(self.api, cluster, self.region, zone) if steps else parts
        return BalancerEnsured(resources=_resources(found), actions=tuple(s for s, _ in steps),
                               address=found.address.address if found.address is not None else None,
                               backends=tuple(sorted(wanted.get(m) or _node_of(cluster, m) for m in found.members)))

    def find_load_balancer(self, cluster: ClusterRef) -> BalancerEnsured | None:
        parts = find_parts(self.api, cluster, self.region, self.zone)
        if not _resources(parts):
            return None
        return BalancerEnsured(resources=_resources(parts),
                               address=parts.address.address if parts.address is not None else None,
                               backends=tuple(sorted(_node_of(cluster, m) for m in parts.members)))

    def delete_load_balancer(self, target: CloudTarget) -> None:
        items = inventory(self.api, target.cluster, self.region, self._zone(target))
        delete_inventory(CLOUD, items, stall_budget_s=self.stall_budget_s)

    # --- the parts ---------------------------------------------------------------------

    def _link(self, cluster: ClusterRef, part: str, zone: str | None = None) -> str:
        project = self.api.project
        if part == "ig":
            return f"projects/{project}/zones/{zone}/instanceGroups/{part_name(cluster, part)}"
        kind = {"hc": "healthChecks", "bs": "backendServices", "ip": "addresses"}[part]
        return f"projects/{project}/regions/{self.region}/{kind}/{part_name(cluster, part)}"

    def _insert_address(self, cluster: ClusterRef) -> None:
        from google.cloud import compute_v1

        body = compute_v1.Address(name=part_name(cluster, "ip"), address_type="EXTERNAL",
                                  description=layout.description(cluster, "load-balancer address"),
                                  labels=cluster_tags(cluster.name, cluster.uuid))
        self._insert("AddressesClient", compute_v1.InsertAddressRequest(
            project=self.api.project, region=self.region, address_resource=body), body.name)

    def _put_health_check(self, cluster: ClusterRef, plan: BalancerPlan, *, update: bool) -> None:
        from google.cloud import compute_v1

        api, name = self.api, part_name(cluster, "hc")
        body = compute_v1.HealthCheck(
            name=name, type_="HTTP", description=layout.description(cluster, "load-balancer health check"),
            http_health_check=compute_v1.HTTPHealthCheck(port=plan.health_port, request_path=plan.health_path))
        if update:
            api.mutate(f"repair health check {name}", api.client("RegionHealthChecksClient").update_unary,
                       compute_v1.UpdateRegionHealthCheckRequest(project=api.project, region=self.region,
                                                                 health_check=name, health_check_resource=body))
            return
        self._insert("RegionHealthChecksClient", compute_v1.InsertRegionHealthCheckRequest(
            project=api.project, region=self.region, health_check_resource=body), name)

    def _insert_group(self, cluster: ClusterRef, zone: str) -> None:
        from google.cloud import compute_v1

        api = self.api
        body = compute_v1.InstanceGroup(
            name=part_name(cluster, "ig"), description=layout.description(cluster, "load-balancer backends"),
            network=f"projects/{api.project}/global/networks/{layout.network_name(cluster)}")
        self._insert("InstanceGroupsClient", compute_v1.InsertInstanceGroupRequest(
            project=api.project, zone=zone, instance_group_resource=body), body.name)

    def _members(self, cluster: ClusterRef, zone: str, verb: str, links: list[str]) -> None:
        """Add (verb "add_instances") or remove ("remove_instances") instances of the group."""
        from google.cloud import compute_v1

        api, name = self.api, part_name(cluster, "ig")
        refs = [compute_v1.InstanceReference(instance=link) for link in links]
        if verb == "add_instances":
            request: Any = compute_v1.AddInstancesInstanceGroupRequest(
                project=api.project, zone=zone, instance_group=name,
                instance_groups_add_instances_request_resource=compute_v1.InstanceGroupsAddInstancesRequest(
                    instances=refs))
        else:
            request = compute_v1.RemoveInstancesInstanceGroupRequest(
                project=api.project, zone=zone, instance_group=name,
                instance_groups_remove_instances_request_resource=compute_v1.InstanceGroupsRemoveInstancesRequest(
                    instances=refs))
        client = api.client("InstanceGroupsClient")
        api.mutate(f"{verb.replace('_', ' ')} of instance group {name}", getattr(client, f"{verb}_unary"), request)

    def _put_service(self, cluster: ClusterRef, zone: str, *, update: bool) -> None:
        from google.cloud import compute_v1

        api, name = self.api, part_name(cluster, "bs")
        body = compute_v1.BackendService(
            name=name, load_balancing_scheme="EXTERNAL", protocol="TCP",
            description=layout.description(cluster, "load-balancer backend service"),
            health_checks=[self._link(cluster, "hc")],
            backends=[compute_v1.Backend(group=self._link(cluster, "ig", zone), balancing_mode="CONNECTION")])
        client = api.client("RegionBackendServicesClient")
        if update:
            api.mutate(f"repair backend service {name}", client.update_unary,
                       compute_v1.UpdateRegionBackendServiceRequest(project=api.project, region=self.region,
                                                                    backend_service=name,
                                                                    backend_service_resource=body))
            return
        self._insert("RegionBackendServicesClient", compute_v1.InsertRegionBackendServiceRequest(
            project=api.project, region=self.region, backend_service_resource=body), name)

    def _insert_rule(self, cluster: ClusterRef, ports: list[str]) -> None:
        from google.cloud import compute_v1

        api = self.api
        address = api.call("get the load balancer's address", api.client("AddressesClient").get,
                           request=compute_v1.GetAddressRequest(project=api.project, region=self.region,
                                                                address=part_name(cluster, "ip"))).address
        body = compute_v1.ForwardingRule(
            name=part_name(cluster, "fr"), I_p_address=address, I_p_protocol="TCP", ports=ports,
            backend_service=self._link(cluster, "bs"), load_balancing_scheme="EXTERNAL",
            labels=cluster_tags(cluster.name, cluster.uuid),
            description=layout.description(cluster, "load-balancer forwarding rule"))
        self._insert("ForwardingRulesClient", compute_v1.InsertForwardingRuleRequest(
            project=api.project, region=self.region, forwarding_rule_resource=body), body.name)

    def _insert(self, kind: str, request: Any, name: str) -> None:
        """A create; the name already taken counts as done (find_parts then checks that it is
        the cluster's: a stranger's is an error there)."""
        with contextlib.suppress(AlreadyExistsError):
            self.api.mutate(f"create {name}", self.api.client(kind).insert_unary, request)

    def _delete(self, kind: str, field: str, name: str) -> None:
        from google.cloud import compute_v1

        request_type = {"ForwardingRulesClient": compute_v1.DeleteForwardingRuleRequest}[kind]
        request = request_type(project=self.api.project, region=self.region, **{field: name})
        self.api.mutate(f"delete {name}", self.api.client(kind).delete_unary, request)

    def _zone(self, target: CloudTarget) -> str:
        zone = target.zone or self.zone
        if not zone:
            raise CloudError(CLOUD, f"no zone for region {target.region}: the region map must name one")
        return zone


def find_parts(api: GcpApi, cluster: ClusterRef, region: str, zone: str | None) -> Parts:
    """The cluster's load-balancer resources, by name prefix and description. A resource of one
    of those names without the cluster's UUID is an error: not ours to touch."""
    from google.cloud import compute_v1

    name_filter = f'name eq "{layout.prefix(cluster)}lb-.*"'
    project = api.project

    def one(kind: str, request: Any, part: str) -> Any:
        found = api.list_all(f"list {kind.removesuffix('Client')}", api.client(kind).list, request)
        for item in found:
            if not layout.owned(cluster, item.name, item.description):
                raise CloudError(CLOUD, f"{item.name} exists but does not carry cluster {cluster.name}'s UUID "
                                        f"({CLUSTER_UUID}) in its description: not touching it")
        return next((i for i in found if i.name == part_name(cluster, part)), None)

    regional = {"project": project, "region": region, "filter": name_filter}
    zonal = compute_v1.ListInstanceGroupsRequest(project=project, zone=zone, filter=name_filter) if zone else None
    found = gather(  # one list per kind, all at once (teardown runs this too)
        partial(one, "AddressesClient", compute_v1.ListAddressesRequest(**regional), "ip"),
        partial(one, "RegionHealthChecksClient", compute_v1.ListRegionHealthChecksRequest(**regional), "hc"),
        partial(one, "RegionBackendServicesClient", compute_v1.ListRegionBackendServicesRequest(**regional), "bs"),
        partial(one, "ForwardingRulesClient", compute_v1.ListForwardingRulesRequest(**regional), "fr"),
        partial(one, "InstanceGroupsClient", zonal, "ig") if zonal else lambda: None)
    parts = Parts(address=found[0], health_check=found[1], service=found[2], rule=found[3], group=found[4])
    if parts.group is not None:
        request = compute_v1.ListInstancesInstanceGroupsRequest(
            project=project, zone=zone, instance_group=parts.group.name,
            instance_groups_list_instances_request_resource=compute_v1.InstanceGroupsListInstancesRequest(
                instance_state="ALL"))
        listed = api.list_all("list the instance group's members", api.client("InstanceGroupsClient").list_instances,
                              request)
        parts.members = tuple(sorted(_short(i.instance) for i in listed))
    return parts


KINDS = ("forwarding-rule", "backend-service", "address", "health-check", "instance-group")


def inventory(api: GcpApi, cluster: ClusterRef, region: str, zone: str | None) -> list[Owned]:
    """The cluster's load-balancer resources as inventory entries, each after what uses it:
    the forwarding rule, then the backend service and the address, then the health check and
    the instance group (all before the network: its entry lists KINDS)."""
    from google.cloud import compute_v1

    parts, project = find_parts(api, cluster, region, zone), api.project
    regional = {"project": project, "region": region}
    found: list[tuple[str, Any, str, Any, tuple[str, ...]]] = [
        ("forwarding-rule", parts.rule, "ForwardingRulesClient",
         lambda n: compute_v1.DeleteForwardingRuleRequest(**regional, forwarding_rule=n), ()),
        ("backend-service", parts.service, "RegionBackendServicesClient",
         lambda n: compute_v1.DeleteRegionBackendServiceRequest(**regional, backend_service=n), ("forwarding-rule",)),
        ("address", parts.address, "AddressesClient",
         lambda n: compute_v1.DeleteAddressRequest(**regional, address=n), ("forwarding-rule",)),
        ("health-check", parts.health_check, "RegionHealthChecksClient",
         lambda n: compute_v1.DeleteRegionHealthCheckRequest(**regional, health_check=n), ("backend-service",)),
        ("instance-group", parts.group, "InstanceGroupsClient",
         lambda n: compute_v1.DeleteInstanceGroupRequest(project=project, zone=zone, instance_group=n),
         ("backend-service",)),
    ]
    return [
        Owned(kind, item.name, item.name, after=frozenset(after),
              delete=_deleter(api, f"delete {kind} {item.name}", client, request(item.name)))
        for kind, item, client, request, after in found if item is not None
    ]


def _deleter(api: GcpApi, what: str, kind: str, request: Any) -> Callable[[], None]:
    def delete() -> None:
        api.mutate(what, api.client(kind).delete_unary, request)  # NotFoundError: already gone

    return delete


def _service_differs(service: Any, project: str, cluster: ClusterRef, region: str, zone: str) -> bool:
    checks = [_short(c) for c in service.health_checks]
    groups = [_short(b.group) for b in service.backends]
    return (checks != [f"projects/{project}/regions/{region}/healthChecks/{part_name(cluster, 'hc')}"]
            or groups != [f"projects/{project}/zones/{zone}/instanceGroups/{part_name(cluster, 'ig')}"]
            or service.protocol != "TCP")


def _node_of(cluster: ClusterRef, link: str) -> str:
    """The node name of an instance link (`<node>-<shortid>`, gcp_layout.instance_name)."""
    return link.rsplit("/", 1)[-1].removesuffix(f"-{cluster.short_id}")


def _resources(parts: Parts) -> tuple[CloudResource, ...]:
    found = [("address", parts.address), ("health-check", parts.health_check), ("instance-group", parts.group),
             ("backend-service", parts.service), ("forwarding-rule", parts.rule)]
    return tuple(CloudResource(kind, str(item.id), item.name, {"self_link": item.self_link})
                 for kind, item in found if item is not None)
