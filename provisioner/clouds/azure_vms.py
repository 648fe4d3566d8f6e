"""Azure VMs for the provider: the per-VM chains (public IP -> NIC -> VM) run in parallel,
the view of a resource group's VMs with their addresses (three list calls, whatever the node
count), deleting VMs with their NICs and public IPs, and finding VMs without the cluster's UUID.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import tags
from ..errors import CloudError, NotFoundError
from ..parallel import gather
from ..progress import report
from ..retry import wait_until
from ..teardown import Deletable, delete_in_passes
from . import azure_build as build
from . import leaks
from .azure_session import CLOUD
from .base import CloudTarget, ClusterRef, Vm, VmRequest

if TYPE_CHECKING:
    from .azure import Provider

CHAIN_WORKERS = 16


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
        labels = vm.tags or {}
        return Vm(
            name=labels.get(tags.NODE, vm.name),
            cloud_id=vm.id,
            state=power or build.text(vm.provisioning_state).lower(),
            private_ip=private,
            public_ip=public,
            role=labels.get(tags.ROLE),
            cluster_uuid=labels.get(tags.CLUSTER_UUID),
            extra={"resource_group": _split_id(vm.id)[0], "vm_id": vm.vm_id,
                   "size": build.text(vm.hardware_profile.vm_size) if vm.hardware_profile else None,
                   "zones": list(vm.zones or []), "provisioning_state": vm.provisioning_state},
        )

    # --- ensure ----------------------------------------------------------------------

    def ensure(self, target: CloudTarget, requests: Sequence[VmRequest], public_key: str) -> list[Vm]:
        """Cloud.ensure_vms: per missing VM, public IP -> NIC -> VM (each only if missing) in a bounded pool."""
        if not requests:
            return []
        cluster = target.cluster
        group = self.p.require_group(cluster)
        # What runs, and what a missing VM would be made with, in one round of lookups.
        vms, nics, pips, vnet, nsgs = gather(*self._inventory_calls(group), lambda: self.p.vnet_of(group, cluster),
                                             lambda: self.p.nsgs_of(group, cluster))
        have = _by_node(vms, cluster, "VM")
        missing = [r for r in requests if r.name not in have]
        if missing:
            if vnet is None:
                raise NotFoundError(CLOUD, f"no virtual network of cluster {cluster.name} in {group}")
            subnet_id = f"{vnet.id}/subnets/{build.subnet_name(cluster)}"
            nic_of, pip_of = _by_node(nics, cluster, "network interface"), _by_node(pips, cluster, "public IP")

            def chain(req: VmRequest) -> None:
                self._create_chain(target, group, req, public_key, subnet_id, nsgs, nic_of.get(req.name),
                                   pip_of.get(req.name))

            workers = min(CHAIN_WORKERS, len(missing))
            report(f"0/{len(missing)} created")
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="azure-vm") as pool:
                for done, future in enumerate(as_completed([pool.submit(chain, r) for r in missing]), 1):
                    future.result()
                    report(f"{done}/{len(missing)} created")
        names = [r.name for r in requests]
        return wait_until(lambda: self._ready(group, cluster, names), what=f"{len(names)} Azure VMs running",
                          timeout_s=self.p.settings.vm_timeout_s, **self.p.settings.polling())

    def _create_chain(self, target: CloudTarget, group: str, req: VmRequest, public_key: str, subnet_id: str,
                      nsgs: dict[str, Any], nic: Any, pip: Any) -> None:
        cluster, net, compute = target.cluster, self.p.session.network, self.p.session.compute
        labels = tags.vm_tags(cluster.name, cluster.uuid, req.role, req.name)
        nsg = nsgs.get(req.role)
        if nsg is None:
            raise NotFoundError(CLOUD, f"no network security group for role {req.role}; ensure the firewall first")
        nic_id = nic.id if nic is not None else None
        if nic_id is None:
            pip_id = pip.id if pip is not None else None
            if pip_id is None:
                name = build.pip_name(req.name)
                model = build.public_ip(self.p.region, labels, target.zone)
                pip_id = self.p.put(f"create public IP {name}", lambda polling: net.public_ip_addresses
                                    .begin_create_or_update(group, name, model, polling=polling),
                                    group, "Microsoft.Network/publicIPAddresses", name)
            name = build.nic_name(req.name)
            model = build.network_interface(self.p.region, labels, subnet_id, pip_id, nsg.id)
            nic_id = self.p.put(f"create network interface {name}", lambda polling: net.network_interfaces
                                .begin_create_or_update(group, name, model, polling=polling),
                                group, "Microsoft.Network/networkInterfaces", name)
        model = build.virtual_machine(self.p.region, target.zone, labels, req.name, req.size, target.image,
                                      req.user_data, public_key, nic_id)
        self.p.put(f"create VM {req.name} ({req.size})", lambda polling: compute.virtual_machines
                   .begin_create_or_update(group, req.name, model, polling=polling),
                   group, "Microsoft.Compute/virtualMachines", req.name, size=req.size)

    def _ready(self, group: str, cluster: ClusterRef, names: list[str]) -> list[Vm] | None:
        found = {v.name: v for v in self.view(group) if v.cluster_uuid == cluster.uuid}
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

    def foreign(self, group: str, cluster: ClusterRef) -> list[Vm]:
        """VMs in the cluster's resource group, or attached to its VNet from elsewhere, that do
        not carry the cluster's UUID."""
        compute, net = self.p.session.compute, self.p.session.network

        vms, vnet, nics = gather(partial(self._list_vms, group), lambda: self.p.vnet_of(group, cluster),
                                 partial(self._list_nics, group))
        out = [self._as_vm(vm, {}, {}) for vm in vms if not has_uuid(vm, cluster)]
        if vnet is None:
            return out
        known = {vm.id.lower() for vm in vms}
        ours = {n.id.lower(): n for n in nics}
        nic_ids = {c.id.lower().split("/ipconfigurations/")[0]
                   for s in vnet.subnets or [] for c in s.ip_configurations or [] if c.id}
        for nic_id in sorted(nic_ids):
            nic = ours.get(nic_id)
            if nic is None:
                nic = self._get(f"read network interface {nic_id}", net.network_interfaces, nic_id)
            vm_id = nic.virtual_machine.id if nic.virtual_machine else None
            if not vm_id or vm_id.lower() in known:
                continue
            known.add(vm_id.lower())
            vm = self._get(f"read VM {vm_id}", compute.virtual_machines, vm_id)
            if not has_uuid(vm, cluster):
                out.append(self._as_vm(vm, {}, {}))
        return out

    def _get(self, what: str, operations: Any, rid: str) -> Any:
        group, name = _split_id(rid)
        return self.p.call(what, lambda: operations.get(group, name))
