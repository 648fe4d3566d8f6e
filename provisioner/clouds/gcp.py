"""GCP (Compute Engine) behind the cloud interface (base.Cloud), through google-cloud-compute
over REST. Names and descriptions: gcp_layout. Credentials, clients, errors, operations:
gcp_api. The SDK is imported lazily.

A cluster on GCP: a custom-mode network `cast-<shortid>-net`, a /24 subnetwork in the region,
firewalls per role targeting the role's network tag, and labelled instances in the zone,
each with an external IP, the cloud-init text in `user-data` and the cluster's key in
`ssh-keys` (`root:<key>`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..errors import CapacityError, CloudError, NotFoundError
from ..parallel import gather
from ..progress import report
from ..retry import wait_until
from ..tags import CLUSTER_UUID, NODE, ROLE, vm_tags
from . import gcp_layout as layout
from . import gcp_sdk, leaks
from .base import Cloud, CloudResource, CloudTarget, ClusterRef, Ensured, Owned, Settings, Vm, VmRequest
from .gcp_api import CLOUD, AlreadyExistsError, UsesGcpApi

# The SDK modules this cloud imports lazily; the registry imports them in the caller's thread
# (concurrent first imports of one package from several threads can deadlock).
# (From google-cloud-compute only the service modules cast calls: gcp_sdk; the package root,
# which imports every service, never runs.)
SDK_MODULES = (
    "google.auth",
    "google.auth.credentials",
    "google.auth.exceptions",
    "google.api_core.exceptions",
    "google.oauth2.credentials",
    *gcp_sdk.FOR_CHECK,
)
SDK_AFTER_CHECK = tuple(m for m in gcp_sdk.MODULES if m not in gcp_sdk.FOR_CHECK)  # Cloud.finish_opening
# Every `from google.cloud import compute_v1` of cast gets the package without its root's
# imports of ~100 service clients; registered (by the registry) before any of them runs.
prepare_sdk = gcp_sdk.install


class Provider(UsesGcpApi, Cloud):
    """Compute Engine in one project, region and zone."""

    name = CLOUD
    settings = Settings()  # timeouts, stall budget, workers, polling
    # compute v1 discovery document, Metadata.items[].value: "their size must be less than
    # or equal to 262144 bytes (256 KiB)".
    user_data_limit = 256 * 1024

    @staticmethod
    def image_label(image: Mapping[str, str]) -> str:
        return f"{image['project']}/{image['family']}"

    # --- credentials -------------------------------------------------------------------

    def check_credentials(self) -> None:
        from google.cloud import compute_v1

        api = self.api
        request = compute_v1.ListNetworksRequest(project=api.project, max_results=1)
        api.call(f"list networks in project {api.project} with {api.credential_source}",
                 api.client("NetworksClient").list, request=request)

    # --- network, subnetwork, firewall -------------------------------------------------

    def ensure_network(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        from google.cloud import compute_v1

        cluster, name = target.cluster, layout.network_name(target.cluster)
        found = leaks.at_most_one(CLOUD, "network", self._networks(cluster), _name)
        if found:
            return Ensured(resources=(_resource("network", found),))
        if dry_run:
            return Ensured(actions=(f"create network {name}",))
        request = compute_v1.InsertNetworkRequest(
            project=self.api.project,
            network_resource=compute_v1.Network(name=name, auto_create_subnetworks=False,
                                                description=layout.description(cluster, "network")),
        )
        op = self._create(f"create network {name}", self.api.client("NetworksClient").insert_unary, request)
        made = _made("network", name, op) or _resource("network", self._one(self._networks(cluster), name))
        return Ensured(resources=(made,), actions=(f"created network {name}",))

    def ensure_subnet(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        from google.cloud import compute_v1

        cluster, name = target.cluster, layout.subnetwork_name(target.cluster)
        found = leaks.at_most_one(CLOUD, "subnetwork", self._subnetworks(cluster, target.region), _name)
        if found:
            return Ensured(resources=(_resource("subnetwork", found),))
        if dry_run:
            return Ensured(actions=(f"create subnetwork {name} {target.subnet_cidr} in {target.region}",))
        api = self.api
        request = compute_v1.InsertSubnetworkRequest(
            project=api.project,
            region=target.region,
            subnetwork_resource=compute_v1.Subnetwork(
                name=name,
                ip_cidr_range=target.subnet_cidr,
                network=f"projects/{api.project}/global/networks/{layout.network_name(cluster)}",
                description=layout.description(cluster, "subnetwork"),
            ),
        )
        op = self._create(f"create subnetwork {name}", api.client("SubnetworksClient").insert_unary, request)
        made = _made("subnetwork", name, op) or _resource("subnetwork",
                                                         self._one(self._subnetworks(cluster, target.region), name))
        return Ensured(resources=(made,),
                       actions=(f"created subnetwork {name} {target.subnet_cidr} in {target.region}",))

    def ensure_firewall(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        from google.cloud import compute_v1

        cluster, api = target.cluster, self.api
        wanted = {s.name: s for s in layout.firewall_specs(cluster, target.firewall)}
        existing = {f.name: f for f in self._firewalls(cluster)}
        network = f"projects/{api.project}/global/networks/{layout.network_name(cluster)}"
        client = api.client("FirewallsClient")
        work: list[tuple[str, Callable[[], Any]]] = []

        def body(spec: layout.FirewallSpec) -> Any:
            return compute_v1.Firewall(
                name=spec.name, network=network, direction="INGRESS",
                description=layout.description(cluster, f"role={spec.role}"),
                allowed=[compute_v1.Allowed(I_p_protocol=p, ports=list(ports)) for p, ports in spec.allowed],
                source_ranges=list(spec.sources), target_tags=list(spec.target_tags),
            )

        made: dict[str, CloudResource | None] = {}  # name -> what its create or repair made

        def create(name: str, request: Any) -> None:
            made[name] = _made("firewall", name, self._create(f"create firewall {name}", client.insert_unary,
                                                               request))

        def repair(name: str, request: Any) -> None:
            made[name] = _made("firewall", name, api.mutate(f"repair firewall {name}", client.update_unary, request))

        for name, spec in wanted.items():
            if name not in existing:
                request = compute_v1.InsertFirewallRequest(project=api.project, firewall_resource=body(spec))
                work.append((f"create firewall {name}", _bind(create, name, request)))
            elif _firewall_differs(existing[name], spec):
                request = compute_v1.UpdateFirewallRequest(project=api.project, firewall=name,
                                                           firewall_resource=body(spec))
                work.append((f"repair firewall {name}", _bind(repair, name, request)))
        for name in sorted(existing.keys() - wanted.keys()):
            request = compute_v1.DeleteFirewallRequest(project=api.project, firewall=name)
            work.append((f"delete firewall {name} (not in the plan)",
                         _bind(api.mutate, f"delete firewall {name}", client.delete_unary, request)))
        resources = {name: _resource("firewall", f) for name, f in existing.items()}
        if work and not dry_run:
            self._parallel([fn for _, fn in work])
            if all(made.values()):  # every operation named what it made: nothing to list again
                resources = {n: r for n, r in resources.items() if n in wanted}
                resources.update({n: r for n, r in made.items() if r is not None})
            else:
                resources = {f.name: _resource("firewall", f) for f in self._firewalls(cluster)}
        return Ensured(resources=tuple(resources.values()), actions=tuple(what for what, _ in work))

    def ensure_ssh_key(self, target: CloudTarget, public_key: str, *, dry_run: bool = False) -> Ensured:
        return Ensured()  # the key travels in each instance's `ssh-keys` metadata

    # --- instances ---------------------------------------------------------------------

    def ensure_vms(self, target: CloudTarget, vms: Sequence[VmRequest], public_key: str) -> list[Vm]:
        cluster, zone = target.cluster, self._zone(target)
        by_node = _by_node(self._cluster_instances(cluster))
        missing = [v for v in vms if v.name not in by_node]
        self._parallel([_bind(self._insert, target, zone, v, public_key) for v in missing],
                       prefer=CapacityError)
        names = [v.name for v in vms]

        def all_running() -> list[Vm] | None:
            now = _by_node(self._cluster_instances(cluster))
            found = [_vm(now[n]) for n in names if n in now]
            ready = sum(1 for vm in found if vm.state == "RUNNING" and vm.public_ip and vm.private_ip)
            report(f"{ready}/{len(names)} running")
            return found if ready == len(names) else None

        return wait_until(all_running, what=f"{len(names)} GCP instance(s) running with public IPs in {zone}",
                          timeout_s=self.settings.vm_timeout_s, **self.settings.polling())

    def _insert(self, target: CloudTarget, zone: str, vm: VmRequest, public_key: str) -> None:
        from google.cloud import compute_v1

        cluster, api = target.cluster, self.api
        name = layout.instance_name(cluster, vm.name)
        subnet = f"projects/{api.project}/regions/{target.region}/subnetworks/{layout.subnetwork_name(cluster)}"
        instance = compute_v1.Instance(
            name=name,
            machine_type=f"zones/{zone}/machineTypes/{vm.size}",
            labels=vm_tags(cluster.name, cluster.uuid, vm.role, vm.name),
            tags=compute_v1.Tags(items=[layout.role_tag(vm.role)]),
            disks=[compute_v1.AttachedDisk(
                boot=True, auto_delete=True,
                initialize_params=compute_v1.AttachedDiskInitializeParams(
                    source_image=layout.image_link(target.image), disk_size_gb=layout.DISK_GB),
            )],
            network_interfaces=[compute_v1.NetworkInterface(
                subnetwork=subnet,
                access_configs=[compute_v1.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")],
            )],
            metadata=compute_v1.Metadata(items=[
                compute_v1.Items(key=layout.USER_DATA, value=vm.user_data),
                compute_v1.Items(key="ssh-keys", value=f"root:{public_key.strip()}"),
                # The guest agent would otherwise give logins to every project-wide SSH key.
                compute_v1.Items(key="block-project-ssh-keys", value="TRUE"),
            ]),
        )
        request = compute_v1.InsertInstanceRequest(project=api.project, zone=zone, instance_resource=instance)
        try:
            api.mutate(f"create instance {name} ({vm.size})", api.client("InstancesClient").insert_unary,
                       request, capacity_hint=f"region {target.region}, zone {zone}, machine type {vm.size}")
        except AlreadyExistsError:
            raise CloudError(CLOUD, f"instance name {name} in {zone} is taken by an instance without "
                                    f"the cluster's labels") from None

    def list_vms(self, cluster: ClusterRef) -> list[Vm]:
        return [_vm(i) for i in self._cluster_instances(cluster)]

    removes_user_data = True

    def forget_user_data(self, target: CloudTarget, names: Sequence[str]) -> Ensured:
        holding = [i for i in self._cluster_instances(target.cluster)
                   if i.labels.get(NODE) in set(names)
                   and any(item.key == layout.USER_DATA for item in i.metadata.items)]
        self._parallel([_bind(self._drop_user_data, i) for i in holding])
        return Ensured(actions=tuple(f"user-data removed from {i.labels.get(NODE)}" for i in holding))

    def _drop_user_data(self, instance: Any) -> None:
        from google.cloud import compute_v1

        zone = instance.zone.rsplit("/", 1)[1]
        kept = [compute_v1.Items(key=i.key, value=i.value) for i in instance.metadata.items
                if i.key != layout.USER_DATA]
        request = compute_v1.SetMetadataInstanceRequest(
            project=self.api.project, zone=zone, instance=instance.name,
            metadata_resource=compute_v1.Metadata(fingerprint=instance.metadata.fingerprint, items=kept))
        self.api.mutate(f"remove user-data from instance {instance.name}",
                        self.api.client("InstancesClient").set_metadata_unary, request)

    def delete_vms(self, target: CloudTarget, names: Sequence[str]) -> None:
        doomed = [i for i in self._cluster_instances(target.cluster) if i.labels.get(NODE) in set(names)]
        self._parallel([_bind(self._delete_instance, i) for i in doomed])

    def _delete_instance(self, instance: Any) -> None:
        from google.cloud import compute_v1

        zone = instance.zone.rsplit("/", 1)[1]
        request = compute_v1.DeleteInstanceRequest(project=self.api.project, zone=zone, instance=instance.name)
        with contextlib.suppress(NotFoundError):
            self.api.mutate(f"delete instance {instance.name}", self.api.client("InstancesClient").delete_unary,
                            request)

    def find_foreign_vms(self, target: CloudTarget) -> list[Vm]:
        networks, instances = gather(lambda: self._networks(target.cluster), lambda: self._all_instances(None))
        return _foreign(target.cluster, networks, instances)

    # --- inventory (teardown: base.Cloud.teardown) ----------------------------------

    def list_resources(self, cluster: ClusterRef) -> list[Owned]:
        from google.cloud import compute_v1

        from . import gcp_lb

        api, project = self.api, self.api.project
        networks, subnetworks, firewalls, instances, balancing = gather(
            lambda: self._networks(cluster), lambda: self._subnetworks(cluster, self.region),
            lambda: self._firewalls(cluster), lambda: self._cluster_instances(cluster),
            lambda: gcp_lb.inventory(api, cluster, self.region, self.zone))  # every lookup at once

        def deleter(what: str, client: str, request: Any) -> Callable[[], None]:
            return _bind(api.mutate, what, api.client(client).delete_unary, request)

        return [
            *(_owned("instance", i, frozenset(), _bind(self._delete_instance, i)) for i in instances),
            *(_owned("firewall", f, frozenset(), deleter(
                f"delete firewall {f.name}", "FirewallsClient",
                compute_v1.DeleteFirewallRequest(project=project, firewall=f.name))) for f in firewalls),
            *(_owned("subnetwork", s, frozenset({"instance"}), deleter(
                f"delete subnetwork {s.name}", "SubnetworksClient",
                compute_v1.DeleteSubnetworkRequest(project=project, region=self.region, subnetwork=s.name)))
              for s in subnetworks),
            *balancing,
            *(_owned("network", n, frozenset({"instance", "firewall", "subnetwork", *gcp_lb.KINDS}), deleter(
                f"delete network {n.name}", "NetworksClient",
                compute_v1.DeleteNetworkRequest(project=project, network=n.name))) for n in networks),
        ]

    # --- lookups -----------------------------------------------------------------------

    def _networks(self, cluster: ClusterRef) -> list[Any]:
        from google.cloud import compute_v1

        api = self.api
        request = compute_v1.ListNetworksRequest(project=api.project, filter=layout.name_filter(cluster))
        found = api.list_all("list networks", api.client("NetworksClient").list, request)
        return [n for n in found if layout.owned(cluster, n.name, n.description)]

    def _subnetworks(self, cluster: ClusterRef, region: str) -> list[Any]:
        from google.cloud import compute_v1

        api = self.api
        request = compute_v1.ListSubnetworksRequest(project=api.project, region=region,
                                                    filter=layout.name_filter(cluster))
        found = api.list_all(f"list subnetworks in {region}", api.client("SubnetworksClient").list, request)
        return [s for s in found if layout.owned(cluster, s.name, s.description)]

    def _firewalls(self, cluster: ClusterRef) -> list[Any]:
        from google.cloud import compute_v1

        api = self.api
        request = compute_v1.ListFirewallsRequest(project=api.project, filter=layout.name_filter(cluster))
        found = api.list_all("list firewalls", api.client("FirewallsClient").list, request)
        return [f for f in found if layout.owned(cluster, f.name, f.description)]

    def _cluster_instances(self, cluster: ClusterRef) -> list[Any]:
        return self._all_instances(filter_=layout.label_filter(cluster))

    def _all_instances(self, filter_: str | None) -> list[Any]:
        """Instances in every zone of the project (one aggregated list, paged)."""
        from google.cloud import compute_v1

        api = self.api
        request = compute_v1.AggregatedListInstancesRequest(project=api.project, max_results=500)
        if filter_:
            request.filter = filter_
        scoped = api.list_all("list instances", api.client("InstancesClient").aggregated_list, request)
        return [i for _, scope in scoped for i in scope.instances]

    # --- helpers -----------------------------------------------------------------------

    def _zone(self, target: CloudTarget) -> str:
        zone = target.zone or self.zone
        if not zone:
            raise CloudError(CLOUD, f"no zone for region {target.region}: the region map must name one")
        return zone

    def _create(self, what: str, fn: Callable[..., Any], request: Any, capacity_hint: str = "") -> Any | None:
        """A create that counts a name already taken as done; returns its operation, or None
        when the name was taken (the caller's lookup then decides whether it is the cluster's)."""
        try:
            return self.api.mutate(what, fn, request, capacity_hint)
        except AlreadyExistsError:
            return None

    @staticmethod
    def _one(found: list[Any], name: str) -> Any:
        match = [r for r in found if r.name == name]
        if not match:
            raise CloudError(CLOUD, f"{name} exists but does not carry the cluster's UUID in its description")
        return match[0]

    def _parallel(self, jobs: Iterable[Callable[[], None]], prefer: type[BaseException] | None = None) -> None:
        """Run every job on a bounded pool; then raise the first error (of type `prefer` if any)."""
        gather(*jobs, prefer=prefer, max_workers=self.settings.workers)


def _bind(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], None]:
    def job() -> None:
        fn(*args, **kwargs)

    return job


def _name(item: Any) -> str:
    return str(item.name)


def _by_node(instances: list[Any]) -> dict[str, Any]:
    """Instances by node name (clouds.leaks: two for one node is a leak)."""
    return leaks.one_per_node(CLOUD, "instance", instances, lambda i: i.labels.get(NODE) or i.name, _name)


def _vm(instance: Any) -> Vm:
    nic = instance.network_interfaces[0] if instance.network_interfaces else None
    access = nic.access_configs[0] if nic and nic.access_configs else None
    labels = dict(instance.labels)
    return Vm(
        name=labels.get(NODE) or instance.name,
        cloud_id=instance.name,
        state=instance.status,
        private_ip=(nic.network_i_p or None) if nic else None,
        public_ip=(access.nat_i_p or None) if access else None,
        role=labels.get(ROLE),
        cluster_uuid=labels.get(CLUSTER_UUID),
        extra={"zone": instance.zone.rsplit("/", 1)[-1], "id": str(instance.id), "self_link": instance.self_link},
    )


def _resource(kind: str, item: Any) -> CloudResource:
    return CloudResource(kind=kind, id=str(item.id), name=item.name, extra={"self_link": item.self_link})


def _owned(kind: str, item: Any, after: frozenset[str], delete: Callable[[], None]) -> Owned:
    return Owned(kind=kind, id=str(item.id), name=item.name, extra={"self_link": item.self_link}, after=after,
                 delete=delete)


def _made(kind: str, name: str, op: Any | None) -> CloudResource | None:
    """What a DONE insert or update made, from its operation (None when it does not say)."""
    if op is None or not op.target_id or not op.target_link:
        return None
    return CloudResource(kind=kind, id=str(op.target_id), name=name, extra={"self_link": op.target_link})


def _foreign(cluster: ClusterRef, networks: list[Any], instances: list[Any]) -> list[Vm]:
    """Instances in the cluster's networks that do not carry its UUID."""
    links = tuple(f"/global/networks/{n.name}" for n in networks)
    if not links:
        return []
    return [_vm(i) for i in instances if i.labels.get(CLUSTER_UUID) != cluster.uuid
            and any(nic.network.endswith(links) for nic in i.network_interfaces)]


def _firewall_differs(existing: Any, spec: layout.FirewallSpec) -> bool:
    allowed = tuple((a.I_p_protocol, tuple(a.ports)) for a in existing.allowed)
    return (
        allowed != spec.allowed
        or tuple(sorted(existing.source_ranges)) != spec.sources
        or tuple(existing.target_tags) != spec.target_tags
        or bool(existing.denied)
        or existing.direction not in ("", "INGRESS")
    )
