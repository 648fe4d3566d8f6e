"""Azure VMs for the provider: creating them in batches (every missing VM's public IP, then
NIC, then VM, each batch at once and watched in one list), the view of a resource group's VMs
with their addresses (three list calls, whatever the node count), deleting VMs with their NICs
and public IPs, and finding VMs without the cluster's UUID.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import tags
from ..errors import CloudError, NotFoundError
from ..parallel import gather
from ..progress import report
from ..retry import wait_until
from ..teardown import Deletable, delete_in_passes
from . import azure_arm as arm
from . import azure_build as build
from . import leaks
from .azure_level import Level
from .azure_session import CLOUD
from .base import CloudTarget, ClusterRef, Vm, VmRequest

if TYPE_CHECKING:
    from .azure import Provider

PIP_KIND = "Microsoft.Network/publicIPAddresses"
NIC_KIND = "Microsoft.Network/networkInterfaces"
VM_KIND = "Microsoft.Compute/virtualMachines"


def has_uuid(resource: Any, cluster: ClusterRef) -> bool:
    """True when an SDK resource carries the cluster's UUID tag."""
    return (resource.tags or {}).get(tags.CLUSTER_UUID) == cluster.uuid


def _node(resource: Any) -> str | None:
    return (resource.tags or {}).get(tags.NODE)


def _by_node(resources: Sequence[Any], cluster: ClusterRef, what: str) -> dict[str, Any]:
    """The cluster's resources keyed by their node tag; two for one node is a leak (clouds.leaks)."""
    return leaks.one_per_node(CLOUD, what, resources, lambda r: _node(r) if has_uuid(r, cluster) else None,
                              lambda r: str(r.name))


def _split_id(rid: str) -> tuple[str, str]:
    """(resource group, name) of an ARM resource id."""
    parts = rid.strip("/").split("/")
    return parts[3], parts[-1]


class VmOps:
    """VM work on behalf of one Provider (its session, region, zone and error mapping)."""

    def __init__(self, provider: Provider):
        self.p = provider

    # --- reading ---------------------------------------------------------------------

    def inventory(self, group: str) -> tuple[list[Any], list[Any], list[Any]]:
        """Every VM (with instance view), NIC and public IP in the group (three lists at once)."""
        vms, nics, pips = gather(*self._inventory_calls(group))
        return vms, nics, pips

    def _inventory_calls(self, group: str) -> tuple[Any, Any, Any]:
        return (partial(self._list_vms, group, expand="instanceView"), partial(self._list_nics, group),
                partial(self._list_pips, group))

    # Each reads the SDK client in the thread it runs in: clients are per thread.
    def _list_vms(self, group: str, expand: str | None = None) -> list[Any]:
        compute = self.p.session.compute
        return self.p.call(f"list VMs in {group}", lambda: list(compute.virtual_machines.list(group, expand=expand)))

    def _list_nics(self, group: str) -> list[Any]:
        net = self.p.session.network
        return self.p.call(f"list network interfaces in {group}", lambda: list(net.network_interfaces.list(group)))

    def _list_pips(self, group: str) -> list[Any]:
        net = self.p.session.network
        return self.p.call(f"list public IPs in {group}", lambda: list(net.public_ip_addresses.list(group)))

    def view(self, group: str, inventory: tuple[list[Any], list[Any], list[Any]] | None = None) -> list[Vm]:
        """Every VM in the group that is not being deleted, with its addresses."""
        vms, nics, pips = inventory or self.inventory(group)
        nic_by_id = {n.id.lower(): n for n in nics}
        pip_by_id = {p.id.lower(): p for p in pips}
        return [self._as_vm(vm, nic_by_id, pip_by_id) for vm in vms
                if build.text(vm.provisioning_state).lower() != "deleting"]

    @staticmethod
    def _as_vm(vm: Any, nic_by_id: dict[str, Any], pip_by_id: dict[str, Any]) -> Vm:
        private = public = None
        refs = vm.network_profile.network_interfaces if vm.network_profile else []
        nic = nic_by_id.get(refs[0].id.lower()) if refs else None
        if nic is not None and nic.ip_configurations:
            conf = nic.ip_configurations[0]
            private = conf.private_ip_address
            pip = pip_by_id.get(conf.public_ip_address.id.lower()) if conf.public_ip_address else None
            public = pip.ip_address if pip is not None else None
        statuses = vm.instance_view.statuses if vm.instance_view and vm.instance_view.statuses else []
        power = next((s.code.split("/", 1)[1] for s in statuses if s.code and s.code.startswith("PowerState/")), None)
        return _vm(vm.name, vm.id, vm.tags, power or build.text(vm.provisioning_state).lower(), private, public,
                   vm_id=vm.vm_id, size=build.text(vm.hardware_profile.vm_size) if vm.hardware_profile else None,
                   zones=vm.zones, provisioning_state=vm.provisioning_state)

    # --- ensure ----------------------------------------------------------------------

    def ensure(self, target: CloudTarget, requests: Sequence[VmRequest], public_key: str) -> list[Vm]:
        """Cloud.ensure_vms, in levels for all the missing VMs at once (azure_level): their
        public IPs (unless the network step made them), then their NICs, then the VMs (each
        resource only if missing). A level's creates go out together and are not polled one
        by one: once the operations' own estimates say so, one look at the group shows them
        all done (again, with backoff, for stragglers). Then the VMs are watched in one list
        per round (with the NICs and public IPs the first time) until every one runs with
        its addresses."""
        if not requests:
            return []
        cluster = target.cluster
        group = self.p.require_group(cluster)
        # What runs, and what a missing VM would be made with, in one round of lookups (the
        # VNet and the security groups as this command's earlier steps left them, if they ran).
        fresh = cluster.uuid in self.p.fresh_groups
        if fresh:  # made by this command and no VM step yet: nothing to list
            self.p.fresh_groups.discard(cluster.uuid)
            lists: tuple[Any, ...] = (list, list, list)
        else:
            lists = self._inventory_calls(group)
        vms, nics, pips, vnet_id, nsg_ids = gather(*lists, lambda: self._vnet_id(group, cluster),
                                                   lambda: self._nsg_ids(group, cluster))
        made_pips = self.p.made_addresses.pop(cluster.uuid, set())
        have = _by_node(vms, cluster, "VM")
        missing = [r for r in requests if r.name not in have]
        if missing:
            if vnet_id is None:
                raise NotFoundError(CLOUD, f"no virtual network of cluster {cluster.name} in {group}")
            for req in missing:
                if nsg_ids.get(req.role) is None:
                    raise NotFoundError(CLOUD, f"no network security group for role {req.role}; "
                                               "ensure the firewall first")
            subnet_id = f"{vnet_id}/subnets/{build.subnet_name(cluster)}"
            nic_of, pip_of = _by_node(nics, cluster, "network interface"), _by_node(pips, cluster, "public IP")
            report(f"0/{len(missing)} created")
            addresses = Level(self.p, group, "public IPs")
            self.put_addresses(target, addresses, [r for r in missing if r.name not in nic_of
                                                   and r.name not in pip_of and r.name not in made_pips])
            addresses.wait()
            interfaces = Level(self.p, group, "network interfaces")
            interfaces.put_all([partial(self._put_nic, target, interfaces, r, subnet_id, nsg_ids[r.role])
                                for r in missing if r.name not in nic_of])
            nic_ids = {r.name: (nic_of[r.name].id if r.name in nic_of else
                                build.resource_id(self.p.session.subscription_id, group, NIC_KIND,
                                                  build.nic_name(r.name)))
                       for r in missing}
            # The VMs' models (and this thread's compute client: the SDK's first one is the
            # slowest) are made while the NICs' operations work, not after.
            models = {r.name: build.virtual_machine(self.p.region, target.zone, self._labels(target, r), r.name,
                                                    r.size, target.image, r.user_data, public_key, nic_ids[r.name])
                      for r in missing}
            _ = self.p.session.compute
            interfaces.wait()
            machines = Level(self.p, group, "VMs")
            machines.put_all([partial(self._put_vm, machines, r, models[r.name]) for r in missing])
            report(f"{len(missing)}/{len(missing)} created")
            machines.sleep_until_due()  # the VMs' operations' own estimate
        names = [r.name for r in requests]
        known: list[list[Any]] = [] if fresh or missing else [nics, pips]
        return wait_until(lambda: self._ready(group, cluster, names, known), what=f"{len(names)} Azure VMs running",
                          timeout_s=self.p.settings.vm_timeout_s, initial=self.p.settings.poll_initial_s)

    def put_addresses(self, target: CloudTarget, level: Level, requests: Sequence[VmRequest]) -> set[str]:
        """Send the public IPs of `requests` in `level` (not waited for); their node names."""
        level.put_all([partial(self._put_pip, target, level, r) for r in requests])
        return {r.name for r in requests}

    def _vnet_id(self, group: str, cluster: ClusterRef) -> str | None:
        known = self.p.vnet_ids.get(cluster.uuid)
        if known:
            return known
        vnet = self.p.vnet_of(group, cluster)
        return vnet.id if vnet is not None else None

    def _nsg_ids(self, group: str, cluster: ClusterRef) -> dict[str, str]:
        known = self.p.nsg_ids.get(cluster.uuid)
        if known:
            return known
        return {role: nsg.id for role, nsg in self.p.nsgs_of(group, cluster).items()}

    def _labels(self, target: CloudTarget, req: VmRequest) -> dict[str, str]:
        return tags.vm_tags(target.cluster.name, target.cluster.uuid, req.role, req.name)

    def _put_pip(self, target: CloudTarget, level: Level, req: VmRequest) -> str:
        net, name = self.p.session.network, build.pip_name(req.name)
        model = build.public_ip(self.p.region, self._labels(target, req), target.zone)
        return level.put(f"create public IP {name}", lambda polling: net.public_ip_addresses
                         .begin_create_or_update(level.group, name, model, polling=polling), PIP_KIND, name)

    def _put_nic(self, target: CloudTarget, level: Level, req: VmRequest, subnet_id: str, nsg_id: str) -> str:
        net, name = self.p.session.network, build.nic_name(req.name)
        pip_id = build.resource_id(self.p.session.subscription_id, level.group, PIP_KIND, build.pip_name(req.name))
        model = build.network_interface(self.p.region, self._labels(target, req), subnet_id, pip_id, nsg_id)
        return level.put(f"create network interface {name}", lambda polling: net.network_interfaces
                         .begin_create_or_update(level.group, name, model, polling=polling), NIC_KIND, name)

    def _put_vm(self, level: Level, req: VmRequest, model: Any) -> str:
        compute = self.p.session.compute
        return level.put(f"create VM {req.name} ({req.size})", lambda polling: compute.virtual_machines
                         .begin_create_or_update(level.group, req.name, model, polling=polling), VM_KIND, req.name,
                         size=req.size)

    def _ready(self, group: str, cluster: ClusterRef, names: list[str], known: list[list[Any]]) -> list[Vm] | None:
        """The VMs of `names` once every one runs with both addresses (None before). With
        `known` (the group's NICs and public IPs as last listed), one list of the VMs per
        round; the NICs and public IPs are listed with them when not known, or when a running
        VM's addresses are not among them (`known` then holds the new lists)."""
        if known:
            found = self._running(group, cluster, (self._list_vms(group, expand="instanceView"), known[0], known[1]))
            if all(v.public_ip and v.private_ip for v in found.values() if v.state == "running"):
                return self._all_ready(found, names)
        vms, nics, pips = self.inventory(group)
        known[:] = [nics, pips]
        return self._all_ready(self._running(group, cluster, (vms, nics, pips)), names)

    def _running(self, group: str, cluster: ClusterRef,
                 inventory: tuple[list[Any], list[Any], list[Any]] | None = None) -> dict[str, Vm]:
        return {v.name: v for v in self.view(group, inventory) if v.cluster_uuid == cluster.uuid}

    @staticmethod
    def _all_ready(found: dict[str, Vm], names: list[str]) -> list[Vm] | None:
        for name in names:
            vm = found.get(name)
            if vm is not None and vm.extra.get("provisioning_state") == "Failed":
                raise CloudError(CLOUD, f"VM {name} failed to provision")
        ready = sum(1 for n in names
                    if n in found and found[n].state == "running" and found[n].public_ip and found[n].private_ip)
        report(f"{ready}/{len(names)} running")
        return [found[n] for n in names] if ready == len(names) else None

    # --- delete ----------------------------------------------------------------------

    def delete(self, group: str, cluster: ClusterRef, names: Sequence[str]) -> None:
        """Delete the named nodes' VMs (their OS disks go with them), then NICs, then public IPs."""
        vms, nics, pips = self.inventory(group)
        net, compute = self.p.session.network, self.p.session.compute
        wanted = set(names)
        items: list[Deletable] = []
        by_node: dict[str, dict[str, list[str]]] = {}
        for kind, found in (("vm", vms), ("nic", nics), ("pip", pips)):
            for r in found:
                if has_uuid(r, cluster) and _node(r) in wanted:
                    by_node.setdefault(str(_node(r)), {}).setdefault(kind, []).append(r.name)
        for parts in by_node.values():
            vm_keys = frozenset(f"vm {n}" for n in parts.get("vm", []))
            nic_keys = frozenset(f"network-interface {n}" for n in parts.get("nic", []))
            for n in parts.get("vm", []):
                items.append(Deletable(f"vm {n}", self._deleter(f"delete VM {n}", compute.virtual_machines, group, n)))
            for n in parts.get("nic", []):
                items.append(Deletable(f"network-interface {n}", self._deleter(
                    f"delete network interface {n}", net.network_interfaces, group, n), vm_keys))
            for n in parts.get("pip", []):
                items.append(Deletable(f"public-ip {n}", self._deleter(
                    f"delete public IP {n}", net.public_ip_addresses, group, n), vm_keys | nic_keys))
        delete_in_passes(CLOUD, items)

    def _deleter(self, what: str, operations: Any, group: str, name: str) -> Any:
        return lambda: self.p.lro(what, lambda: operations.begin_delete(group, name))

    # --- safety ----------------------------------------------------------------------

    def foreign(self, group: str, cluster: ClusterRef,
                listed: tuple[list[Any], Any] | None = None) -> tuple[list[Vm], tuple[list[Any], Any]]:
        """VMs in the cluster's resource group, or attached to its VNet from elsewhere, that do
        not carry the cluster's UUID; and what was listed (the group's VMs and its VNet or
        None, GenericResource models; `listed`: those, listed already). Two lists (the group's
        VMs with their network profiles, its VNets with their subnets' IP configurations); a
        NIC on the subnets that none of the group's VMs holds is read, and its VM if that is
        not one of them (none when nobody else is there). Through azure-mgmt-resource alone
        (azure_arm): no compute or network SDK."""
        vms, vnet = listed or self.listing(group, cluster)
        out = [generic_vm(vm) for vm in vms if not has_uuid(vm, cluster)]
        if vnet is None:
            return out, (vms, None)
        known = {vm.id.lower() for vm in vms}
        held = {nic.lower() for vm in vms for nic in arm.nic_ids_of_vm(vm)}
        nic_ids = {c.lower().split("/ipconfigurations/")[0] for c in arm.ip_configuration_ids(vnet)}
        for nic_id in sorted(nic_ids - held):
            vm_id = arm.vm_of_nic(arm.read(self.p, nic_id))
            if not vm_id or vm_id.lower() in known:
                continue
            known.add(vm_id.lower())
            vm = arm.read(self.p, vm_id)
            if not has_uuid(vm, cluster):
                out.append(generic_vm(vm))
        return out, (vms, vnet)

    def listing(self, group: str, cluster: ClusterRef) -> tuple[list[Any], Any]:
        """The group's VMs and the cluster's VNet in it (or None), listed at once, as
        GenericResource models with their properties."""
        vms, vnet = gather(partial(arm.list_in_group, self.p, group, arm.VM_TYPE),
                           lambda: self.p.listed_vnet(group, cluster))
        return vms, vnet


def generic_vm(vm: Any) -> Vm:
    """A VM read through the generic resources API (azure_arm), as cast's Vm; the check
    names the VM, its addresses are not read."""
    props = arm.props(vm)
    state = str(props.get("provisioningState") or "")
    return _vm(vm.name, vm.id, vm.tags, state.lower(), None, None, vm_id=props.get("vmId"),
               size=(props.get("hardwareProfile") or {}).get("vmSize"), zones=vm.get("zones"), provisioning_state=state)


def _vm(name: str, rid: str, labels: dict[str, str] | None, state: str, private: str | None,
        public: str | None, *, vm_id: Any, size: Any, zones: Any, provisioning_state: Any) -> Vm:
    """cast's Vm of an Azure VM: its name, ARM id `rid`, tags `labels`, state and addresses; the rest in `extra`."""
    labels = labels or {}
    return Vm(
        name=labels.get(tags.NODE, name),
        cloud_id=rid,
        state=state,
        private_ip=private,
        public_ip=public,
        role=labels.get(tags.ROLE),
        cluster_uuid=labels.get(tags.CLUSTER_UUID),
        extra={"resource_group": _split_id(rid)[0], "vm_id": vm_id, "size": size,
               "zones": list(zones or []), "provisioning_state": provisioning_state},
    )
