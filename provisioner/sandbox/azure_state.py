"""The Azure emulator's resources and the ARM rules cast depends on: what a PUT stores, what a
GET shows (computed back-references, addresses, provisioning state), which deletes are
refused because something still uses the resource, and what a delete takes with it.

Keys are lowercase resource ids, so lookups are case-insensitive like ARM's; the ids shown
keep the casing they were created with. Callers hold the emulator's lock.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import azure_balancing, azure_views
from .azure_catalog import ArmError, check_location, check_vm
from .azure_views import DISK, NIC, NSG, PIP, SUBNET, VM, VNET
from .emulator import AddressPool

TOP_LEVEL = {t.lower(): t for t in (VNET, NSG, PIP, NIC, VM, DISK, azure_balancing.LB)}


@dataclass
class Resource:
    """One emulated ARM resource."""

    id: str
    type: str
    group: str  # lowercase resource group name
    name: str
    body: dict[str, Any]  # location, tags, sku, zones, properties as last PUT (normalised)
    state: str = "Succeeded"  # provisioningState
    etag: str = ""  # changes on every PUT
    guid: str = field(default_factory=lambda: str(uuid.uuid4()))  # resourceGuid / uniqueId: stable
    power: str = "running"  # VMs: running, stopped, deallocated (PowerState/...)
    state_since: float = field(default_factory=time.time)  # when provisioningState last changed
    user_data: str = ""  # VMs: decoded customData
    ssh_keys: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)  # unix time of the first PUT

    @property
    def key(self) -> str:
        return self.id.lower()

    @property
    def props(self) -> dict[str, Any]:
        return self.body.setdefault("properties", {})


def _ref(obj: Any) -> str:
    """The lowercase id a `{"id": ...}` reference points at ('' when none)."""
    return str((obj or {}).get("id") or "").lower()


class AzureState:
    """Resource groups and resources of one emulated subscription."""

    def __init__(self, public_pool: str):
        self.groups: dict[str, dict[str, Any]] = {}  # lowercase name -> RG JSON
        self.resources: dict[str, Resource] = {}
        self._public_pool = public_pool
        self.public_ips = AddressPool(public_pool)
        self._private_next: dict[str, int] = {}  # subnet key -> next host index

    def reset(self) -> None:
        """Forget everything."""
        self.__init__(self._public_pool)  # type: ignore[misc]

    # --- resource groups -------------------------------------------------------------

    def group(self, sub: str, name: str) -> dict[str, Any]:
        """A resource group's JSON; ResourceGroupNotFound otherwise."""
        rg = self.groups.get(name.lower())
        if rg is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")
        return rg

    def put_group(self, sub: str, name: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or update a resource group; return it and whether it is new."""
        existing = self.groups.get(name.lower())
        location = check_location(body.get("location"), None)
        if existing and existing["properties"]["provisioningState"] == "Deleting":
            raise ArmError(409, "ResourceGroupBeingDeleted", f"The resource group '{name}' is in deprovisioning state.")
        if existing:
            if location != existing["location"]:
                raise ArmError(409, "InvalidResourceGroupLocation",
                               f"Invalid resource group location '{body.get('location')}'. The Resource group "
                               f"already exists in location '{existing['location']}'.")
            existing["tags"] = body.get("tags", {})
            return existing, False
        rg = {
            "id": f"/subscriptions/{sub}/resourceGroups/{name}",
            "name": name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "tags": body.get("tags", {}),
            "properties": {"provisioningState": "Succeeded"},
        }
        self.groups[name.lower()] = rg
        return rg, True

    def live_group(self, sub: str, name: str) -> dict[str, Any]:
        """A resource group that is not being deleted (409 ResourceGroupBeingDeleted otherwise)."""
        rg = self.group(sub, name)
        if rg["properties"]["provisioningState"] == "Deleting":
            raise ArmError(409, "ResourceGroupBeingDeleted", f"The resource group '{name}' is in deprovisioning state.")
        return rg

    def drop_group(self, name: str) -> None:
        """Forget a resource group and everything in it."""
        self.groups.pop(name.lower(), None)
        for key in [k for k, r in self.resources.items() if r.group == name.lower()]:
            del self.resources[key]

    def in_group(self, name: str) -> list[Resource]:
        """The resources of a resource group (subnets included)."""
        return [r for r in self.resources.values() if r.group == name.lower()]

    # --- generic resources -----------------------------------------------------------

    def get(self, rid: str, kind: str = "ResourceNotFound") -> Resource:
        """The resource with this id; a 404 with error code `kind` otherwise."""
        res = self.resources.get(rid.lower())
        if res is None:
            tail = rid.split("/providers/", 1)[-1]
            raise ArmError(404, kind, f"The Resource '{tail}' under resource group was not found.")
        return res

    def put(self, sub: str, rg_name: str, rtype: str, rid: str, name: str,
            body: dict[str, Any]) -> tuple[Resource, bool]:
        """Create or update a resource from a PUT body; return it and whether it is new."""
        rg = self.live_group(sub, rg_name)
        existing = self.resources.get(rid.lower())
        if existing is not None and existing.state == "Deleting":
            raise ArmError(409, "Conflict", f"The resource '{name}' is being deleted; try again when it is gone.")
        stored = copy.deepcopy(body)
        stored.pop("id", None)
        stored.pop("name", None)
        if rtype != SUBNET:
            stored["location"] = check_location(stored.get("location") or rg["location"], rtype)
        if rtype == VM:
            check_vm(stored.get("properties") or {})
        res = Resource(rid, rtype, rg_name.lower(), name, stored)
        if existing:
            res.user_data, res.ssh_keys = existing.user_data, existing.ssh_keys
            res.created_at, res.guid, res.power = existing.created_at, existing.guid, existing.power
        {VNET: self._put_vnet, SUBNET: self._put_subnet, NSG: self._put_nsg, PIP: self._put_pip,
         NIC: self._put_nic, VM: self._put_vm, DISK: self._put_disk,
         azure_balancing.LB: lambda r, e: azure_balancing.put_lb(self, r, e)}[rtype](res, existing)
        # The network spec's ProvisioningState enum has no Creating (a create shows Updating);
        # the compute one is a free string, and VMs show Creating while they are made.
        res.state = "Creating" if rtype == VM and not existing else "Updating"
        res.etag = _etag(res, existing)
        self.resources[res.key] = res
        return res, existing is None

    def _put_vnet(self, res: Resource, existing: Resource | None) -> None:
        wanted = res.props.pop("subnets", None) or []
        wanted_keys = {f"{res.key}/subnets/{s['name'].lower()}" for s in wanted}
        for sub in self.children(res.key):
            if sub.key not in wanted_keys:
                self._check_subnet_unused(sub)
                del self.resources[sub.key]
        for s in wanted:
            sid = f"{res.id}/subnets/{s['name']}"
            child = Resource(sid, SUBNET, res.group, s["name"], {"properties": copy.deepcopy(s.get("properties", {}))})
            self._put_subnet(child, self.resources.get(sid.lower()), vnet=res)  # res is not stored yet
            child.state = "Succeeded"
            child.etag = res.etag or f'W/"{uuid.uuid4()}"'
            self.resources[child.key] = child

    def _put_subnet(self, res: Resource, existing: Resource | None, vnet: Resource | None = None) -> None:
        if vnet is None:
            vnet = self.get(res.key.rsplit("/subnets/", 1)[0])
        prefix = res.props.get("addressPrefix")
        if not prefix:
            raise ArmError(400, "InvalidRequestFormat", "Subnet addressPrefix is required.")
        net = ipaddress.ip_network(prefix, strict=False)
        spaces = [ipaddress.ip_network(p) for p in vnet.props.get("addressSpace", {}).get("addressPrefixes", [])]
        if not any(net.subnet_of(s) for s in spaces if s.version == net.version):  # type: ignore[arg-type]
            raise ArmError(400, "NetcfgInvalidSubnet",
                           f"Subnet '{res.name}' is not valid in virtual network '{vnet.name}'.")
        nsg = _ref(res.props.get("networkSecurityGroup"))
        if nsg:
            self.get(nsg, "InvalidResourceReference")

    def _put_nsg(self, res: Resource, existing: Resource | None) -> None:
        for rule in res.props.get("securityRules", []):
            rule["id"] = f"{res.id}/securityRules/{rule['name']}"
            rule.setdefault("properties", {})["provisioningState"] = "Succeeded"
            rule.setdefault("type", "Microsoft.Network/networkSecurityGroups/securityRules")

    def _put_pip(self, res: Resource, existing: Resource | None) -> None:
        if existing and existing.props.get("ipAddress"):
            res.props["ipAddress"] = existing.props["ipAddress"]
        elif str(res.props.get("publicIPAllocationMethod", "")).lower() == "static" or \
                str((res.body.get("sku") or {}).get("name", "")).lower() == "standard":
            res.props["ipAddress"] = self.public_ips.next()

    def _put_nic(self, res: Resource, existing: Resource | None) -> None:
        old = {c["name"].lower(): c for c in (existing.props.get("ipConfigurations", []) if existing else [])}
        for i, conf in enumerate(res.props.get("ipConfigurations", [])):
            props = conf.setdefault("properties", {})
            conf["id"] = f"{res.id}/ipConfigurations/{conf['name']}"
            subnet = self.get(_ref(props.get("subnet")), "InvalidResourceReference")
            pip = _ref(props.get("publicIPAddress"))
            if pip:
                self.get(pip, "InvalidResourceReference")
                for other in self.of_type(NIC):
                    if other.key != res.key and pip in self._nic_pips(other):
                        raise ArmError(400, "PublicIPAddressInUse",
                                       f"Public IP address {pip} is already used by {other.id}.")
            before = old.get(conf["name"].lower(), {}).get("properties", {})
            props["privateIPAddress"] = before.get("privateIPAddress") or self._next_private(subnet)
            props.setdefault("privateIPAllocationMethod", "Dynamic")
            props["primary"] = props.get("primary", i == 0)
            props["provisioningState"] = "Succeeded"
        nsg = _ref(res.props.get("networkSecurityGroup"))
        if nsg:
            self.get(nsg, "InvalidResourceReference")
        azure_balancing.check_nic_pools(self, res)

    def _put_vm(self, res: Resource, existing: Resource | None) -> None:
        props = res.props
        for ref in props.get("networkProfile", {}).get("networkInterfaces", []):
            nic = self.get(_ref(ref), "InvalidResourceReference")
            user = self.vm_of_nic(nic)
            if user and user.key != res.key:
                raise ArmError(400, "NicInUse", f"Network interface {nic.id} is used by {user.id}.")
        osp = props.get("osProfile", {})
        if "customData" in osp:
            res.user_data = base64.b64decode(osp.pop("customData")).decode()
        keys = osp.get("linuxConfiguration", {}).get("ssh", {}).get("publicKeys", [])
        if keys:
            res.ssh_keys = [k["keyData"] for k in keys]
        props["vmId"] = (existing.props.get("vmId") if existing else None) or str(uuid.uuid4())
        disk = props.setdefault("storageProfile", {}).setdefault("osDisk", {})
        disk_name = (existing and existing.props["storageProfile"]["osDisk"]["name"]) or disk.get("name") or \
            f"{res.name}_OsDisk_1_{uuid.uuid4().hex}"
        disk["name"] = disk_name
        disk_id = res.id.split("/providers/")[0] + f"/providers/{DISK}/{disk_name}"
        disk.setdefault("managedDisk", {})["id"] = disk_id
        if disk_id.lower() not in self.resources:
            self.resources[disk_id.lower()] = self._os_disk(res, disk_id, disk_name, disk)

    def _os_disk(self, vm: Resource, disk_id: str, name: str, os_disk: dict[str, Any]) -> Resource:
        """The managed OS disk a VM create makes, as Microsoft.Compute/disks shows it."""
        image = vm.props.get("storageProfile", {}).get("imageReference") or {}
        location = vm.body["location"]
        creation: dict[str, Any] = {"createOption": "FromImage"}
        if image.get("publisher"):
            creation["imageReference"] = {"id": (
                f"/Subscriptions/{vm.id.split('/')[2]}/Providers/Microsoft.Compute/Locations/{location}/Publishers/"
                f"{image['publisher']}/ArtifactTypes/VMImage/Offers/{image.get('offer')}/Skus/{image.get('sku')}"
                f"/Versions/{image.get('version') or 'latest'}")}
        account = (os_disk.get("managedDisk") or {}).get("storageAccountType") or "Premium_LRS"
        body: dict[str, Any] = {"location": location,  # ARM does not copy the VM's tags to it
                                "sku": {"name": account, "tier": "Premium" if account.startswith("Premium") else
                                        "Standard"},
                                "properties": {"creationData": creation,
                                               "diskSizeGB": os_disk.get("diskSizeGB") or azure_views.OS_DISK_GB}}
        if vm.body.get("zones"):
            body["zones"] = list(vm.body["zones"])
        disk = Resource(disk_id, DISK, vm.group, name, body)
        disk.etag = ""
        return disk

    def _put_disk(self, res: Resource, existing: Resource | None) -> None:
        props = res.props
        if not (props.get("creationData") or {}).get("createOption"):
            raise ArmError(400, "InvalidParameter", "Required parameter 'creationData.createOption' is missing "
                           "(null).", "creationData.createOption")
        if str(props["creationData"]["createOption"]).lower() == "empty" and not props.get("diskSizeGB"):
            raise ArmError(400, "InvalidParameter", "Required parameter 'diskSizeGB' is missing (null).",
                           "diskSizeGB")

    # --- deletes ---------------------------------------------------------------------

    def check_delete(self, res: Resource) -> None:
        """Raise the ARM error that refuses deleting `res` while something still uses it."""
        if res.type == SUBNET:
            self._check_subnet_unused(res)
        elif res.type == VNET:
            for sub in self.children(res.key):
                self._check_subnet_unused(sub)
        elif res.type == NSG:
            users = [r.id for r in self.resources.values()
                     if r.type in (NIC, SUBNET) and _ref(r.props.get("networkSecurityGroup")) == res.key]
            if users:
                raise ArmError(400, "InUseNetworkSecurityGroupCannotBeDeleted",
                               f"Network security group {res.id} cannot be deleted because it is in use by {users[0]}.")
        elif res.type == PIP:
            users = [n.id for n in self.of_type(NIC) if res.key in self._nic_pips(n)]
            front = azure_balancing.pip_user(self, res)
            users += [front.rsplit("/frontendIPConfigurations/", 1)[0]] if front else []
            if users:
                raise ArmError(400, "PublicIPAddressCannotBeDeleted",
                               f"Public IP address {res.id} can not be deleted since it is still allocated to "
                               f"resource {users[0]}/ipConfigurations.")
        elif res.type == DISK:
            owner = self.vm_of_disk(res)
            if owner:
                raise ArmError(409, "OperationNotAllowed", f"Disk {res.name} is attached to VM {owner.id}.")
        elif res.type == NIC:
            user = self.vm_of_nic(res)
            if user:
                raise ArmError(400, "NicInUse", f"Network Interface {res.id} is used by existing resource "
                               f"{user.id}. In order to delete the network interface, it must be dissociated "
                               "from the resource.")

    def remove(self, res: Resource) -> None:
        """Forget `res` and what goes with it (a VNet's subnets; a VM's disk, and its NICs and
        their public IPs when their deleteOption says Delete)."""
        self.resources.pop(res.key, None)
        for sub in self.children(res.key):
            self.resources.pop(sub.key, None)
        if res.type == azure_balancing.LB:
            azure_balancing.forget(self, res)
        if res.type != VM:
            return
        disk = res.props.get("storageProfile", {}).get("osDisk", {})
        if str(disk.get("deleteOption", "Detach")).lower() == "delete":
            self.resources.pop(_ref(disk.get("managedDisk")), None)
        for ref in res.props.get("networkProfile", {}).get("networkInterfaces", []):
            if str(ref.get("properties", {}).get("deleteOption", "Detach")).lower() != "delete":
                continue
            nic = self.resources.pop(_ref(ref), None)
            for conf in (nic.props.get("ipConfigurations", []) if nic else []):
                pip = conf.get("properties", {}).get("publicIPAddress") or {}
                if str(pip.get("properties", {}).get("deleteOption", "Detach")).lower() == "delete":
                    self.resources.pop(_ref(pip), None)

    # --- what a GET shows ------------------------------------------------------------

    def render(self, res: Resource, *, instance_view: bool = False) -> dict[str, Any]:
        """A resource as a GET shows it, with what ARM computes (azure_views)."""
        return azure_views.render(self, res, instance_view=instance_view)

    def vm_instance_view(self, vm: Resource) -> dict[str, Any]:
        """A VM's instance view (azure_views)."""
        return azure_views.vm_instance_view(self, vm)

    def summary(self, res: Resource, expand: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
        """A resource as the generic resources list shows it (resources.json's
        GenericResourceExpanded: no properties, no zones): its id, name, type and location,
        what it has of tags, sku and managedBy (an attached disk's VM); with `expand` (the
        $expand list, lowercase) its createdTime, changedTime and provisioningState."""
        out: dict[str, Any] = {"id": res.id, "name": res.name, "type": res.type, "location": res.body.get("location")}
        for key in ("tags", "sku"):
            if res.body.get(key):
                out[key] = res.body[key]
        if res.type == DISK and (vm := self.vm_of_disk(res)) is not None:
            out["managedBy"] = vm.id
        if "createdtime" in expand:
            out["createdTime"] = _timestamp(res.created_at)
        if "changedtime" in expand:
            out["changedTime"] = _timestamp(max(res.created_at, res.state_since))
        if "provisioningstate" in expand:
            out["provisioningState"] = res.state
        return out

    def addresses_of_vm(self, vm: Resource) -> tuple[str | None, str | None]:
        """(public, private) address of a VM's primary NIC."""
        for ref in vm.props.get("networkProfile", {}).get("networkInterfaces", []):
            nic = self.resources.get(_ref(ref))
            for conf in (nic.props.get("ipConfigurations", []) if nic else []):
                pip = self.resources.get(_ref(conf.get("properties", {}).get("publicIPAddress")))
                return (pip.props.get("ipAddress") if pip else None), conf["properties"].get("privateIPAddress")
        return None, None

    # --- helpers ---------------------------------------------------------------------

    def of_type(self, rtype: str) -> list[Resource]:
        """The resources of one type."""
        return [r for r in self.resources.values() if r.type == rtype]

    def children(self, vnet_key: str) -> list[Resource]:
        """A virtual network's subnets."""
        return [r for r in self.resources.values() if r.type == SUBNET and r.key.startswith(vnet_key + "/subnets/")]

    @staticmethod
    def _nic_pips(nic: Resource) -> set[str]:
        return {_ref(c.get("properties", {}).get("publicIPAddress")) for c in nic.props.get("ipConfigurations", [])}

    def vm_of_disk(self, disk: Resource) -> Resource | None:
        """The VM whose OS disk this is, if any."""
        for vm in self.of_type(VM):
            if _ref(vm.props.get("storageProfile", {}).get("osDisk", {}).get("managedDisk")) == disk.key:
                return vm
        return None

    def vm_of_nic(self, nic: Resource) -> Resource | None:
        """The VM this network interface is attached to, if any."""
        for vm in self.of_type(VM):
            if any(_ref(r) == nic.key for r in vm.props.get("networkProfile", {}).get("networkInterfaces", [])):
                return vm
        return None

    def _check_subnet_unused(self, subnet: Resource) -> None:
        for nic in self.of_type(NIC):
            for conf in nic.props.get("ipConfigurations", []):
                if _ref(conf.get("properties", {}).get("subnet")) == subnet.key:
                    raise ArmError(400, "InUseSubnetCannotBeDeleted",
                                   f"Subnet {subnet.name} is in use by {conf['id']} and cannot be deleted. "
                                   "In order to delete the subnet, delete all the resources within the subnet.")

    def _next_private(self, subnet: Resource) -> str:
        net = ipaddress.ip_network(subnet.props["addressPrefix"], strict=False)
        index = self._private_next.get(subnet.key, 4)  # Azure keeps .0-.3 for itself
        self._private_next[subnet.key] = index + 1
        return str(net.network_address + index)


def _etag(res: Resource, existing: Resource | None) -> str:
    """A fresh etag: network resources use W/"<guid>", compute ones a counter ("1", "2", ...)."""
    if res.type == VM:
        before = existing.etag.strip('"') if existing else "0"
        return f'"{int(before) + 1 if before.isdigit() else 1}"'
    return f'W/"{uuid.uuid4()}"'


def _timestamp(unix: float) -> str:
    """A unix time as ARM writes date-times (ISO 8601, UTC)."""
    return datetime.fromtimestamp(unix, tz=UTC).isoformat().replace("+00:00", "Z")
