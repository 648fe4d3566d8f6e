"""What a GET of an emulated Azure resource shows: the stored body plus what ARM computes and
always sends (provisioningState, etag, resourceGuid, back-references, defaults the services
fill in, a VM's instance view, the managed OS disk as Microsoft.Compute/disks shows it).

Shapes follow the Swagger definitions (network 2024-10-01, ComputeRP 2025-04-01, DiskRP)
and the examples beside them. Callers hold the emulator's lock.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

from . import azure_balancing

if TYPE_CHECKING:
    from .azure_state import AzureState, Resource

VNET = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
NSG = "Microsoft.Network/networkSecurityGroups"
PIP = "Microsoft.Network/publicIPAddresses"
NIC = "Microsoft.Network/networkInterfaces"
VM = "Microsoft.Compute/virtualMachines"
DISK = "Microsoft.Compute/disks"
NETWORK_TYPES = (VNET, SUBNET, NSG, PIP, NIC)

OS_DISK_GB = 30  # the size of the marketplace Ubuntu images' OS disk
# The six rules every NSG has (Azure docs, "Network security groups: default security rules").
_DEFAULT_RULES = (
    ("AllowVnetInBound", "Inbound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
    ("AllowAzureLoadBalancerInBound", "Inbound", 65001, "AzureLoadBalancer", "*", "Allow"),
    ("DenyAllInBound", "Inbound", 65500, "*", "*", "Deny"),
    ("AllowVnetOutBound", "Outbound", 65000, "VirtualNetwork", "VirtualNetwork", "Allow"),
    ("AllowInternetOutBound", "Outbound", 65001, "*", "Internet", "Allow"),
    ("DenyAllOutBound", "Outbound", 65500, "*", "*", "Deny"),
)


def iso(ts: float) -> str:
    """A unix time as ARM writes timestamps (UTC, seven fractional digits, +00:00)."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    return f"{whole}.{int((ts % 1) * 10_000_000):07d}+00:00"


def _ref(obj: Any) -> str:
    return str((obj or {}).get("id") or "").lower()


def render(state: AzureState, res: Resource, *, instance_view: bool = False) -> dict[str, Any]:
    """A resource as a GET shows it."""
    out = copy.deepcopy(res.body)
    out.update(id=res.id, name=res.name, type=res.type)
    if res.etag:
        out["etag"] = res.etag
    props = out.setdefault("properties", {})
    props["provisioningState"] = res.state
    if res.guid and res.type in (VNET, NSG, PIP, NIC):
        props["resourceGuid"] = res.guid
    if res.type == VNET:
        props.setdefault("enableDdosProtection", False)
        props.setdefault("virtualNetworkPeerings", [])
        props["subnets"] = [render(state, s) for s in state.children(res.key)]
    elif res.type == SUBNET:
        out.pop("location", None)
        confs = [c["id"] for n in state.of_type(NIC) for c in n.props.get("ipConfigurations", [])
                 if _ref(c.get("properties", {}).get("subnet")) == res.key]
        if confs:
            props["ipConfigurations"] = [{"id": c} for c in confs]
    elif res.type == NSG:
        props.setdefault("securityRules", [])
        props["defaultSecurityRules"] = [_default_rule(res, *rule) for rule in _DEFAULT_RULES]
        users = [r for r in state.resources.values()
                 if r.type in (NIC, SUBNET) and _ref(r.props.get("networkSecurityGroup")) == res.key]
        if [u for u in users if u.type == NIC]:
            props["networkInterfaces"] = [{"id": u.id} for u in users if u.type == NIC]
        if [u for u in users if u.type == SUBNET]:
            props["subnets"] = [{"id": u.id} for u in users if u.type == SUBNET]
    elif res.type == PIP:
        props.setdefault("publicIPAddressVersion", "IPv4")
        props.setdefault("publicIPAllocationMethod", "Dynamic")
        props.setdefault("idleTimeoutInMinutes", 4)
        out.setdefault("sku", {"name": "Basic", "tier": "Regional"})
        for nic in state.of_type(NIC):
            for conf in nic.props.get("ipConfigurations", []):
                if _ref(conf.get("properties", {}).get("publicIPAddress")) == res.key:
                    props["ipConfiguration"] = {"id": conf["id"]}
        front = azure_balancing.pip_user(state, res)
        if front:
            props["ipConfiguration"] = {"id": front}
    elif res.type == NIC:
        _nic_defaults(props, res)
        user = state.vm_of_nic(res)
        if user:
            props["virtualMachine"] = {"id": user.id}
            props["primary"] = True
            props["macAddress"] = "00-0D-3A-" + "-".join(res.guid.replace("-", "")[i:i + 2].upper() for i in (0, 2, 4))
    elif res.type == VM:
        _vm_defaults(props, res)
        if instance_view:
            props["instanceView"] = vm_instance_view(state, res)
    elif res.type == DISK:
        _disk_view(state, res, out, props)
    elif res.type == azure_balancing.LB:
        azure_balancing.render_lb(state, res, props)
    return out


def _default_rule(nsg: Resource, name: str, direction: str, priority: int, source: str, dest: str,
                  access: str) -> dict[str, Any]:
    return {"name": name, "id": f"{nsg.id}/defaultSecurityRules/{name}", "etag": nsg.etag,
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "properties": {"provisioningState": "Succeeded", "description": name, "protocol": "*",
                           "sourcePortRange": "*", "destinationPortRange": "*", "sourceAddressPrefix": source,
                           "destinationAddressPrefix": dest, "access": access, "priority": priority,
                           "direction": direction, "sourcePortRanges": [], "destinationPortRanges": [],
                           "sourceAddressPrefixes": [], "destinationAddressPrefixes": []}}


def _nic_defaults(props: dict[str, Any], res: Resource) -> None:
    props.setdefault("enableAcceleratedNetworking", False)
    props.setdefault("enableIPForwarding", False)
    props.setdefault("nicType", "Standard")
    props.setdefault("dnsSettings", {"dnsServers": [], "appliedDnsServers": [],
                                     "internalDomainNameSuffix": f"{res.guid[:8]}.bx.internal.cloudapp.net"})
    for conf in props.get("ipConfigurations", []):
        conf.setdefault("etag", res.etag)
        conf.setdefault("type", "Microsoft.Network/networkInterfaces/ipConfigurations")
        conf.setdefault("properties", {}).setdefault("privateIPAddressVersion", "IPv4")


def _vm_defaults(props: dict[str, Any], res: Resource) -> None:
    props["timeCreated"] = iso(res.created_at)
    storage = props.setdefault("storageProfile", {})
    disk = storage.setdefault("osDisk", {})
    disk.setdefault("osType", "Linux")
    disk.setdefault("createOption", "FromImage")
    disk.setdefault("caching", "ReadWrite")
    disk.setdefault("deleteOption", "Detach")
    disk.setdefault("diskSizeGB", OS_DISK_GB)
    disk.setdefault("managedDisk", {}).setdefault("storageAccountType", "Premium_LRS")
    storage.setdefault("dataDisks", [])
    os_profile = props.get("osProfile")
    if isinstance(os_profile, dict):
        os_profile.setdefault("secrets", [])
        os_profile.setdefault("allowExtensionOperations", True)
        os_profile.setdefault("requireGuestProvisionSignal", True)


def vm_instance_view(state: AzureState, res: Resource) -> dict[str, Any]:
    """GET .../virtualMachines/{vm}/instanceView: provisioning and power state, the OS disk."""
    when = iso(res.state_since)
    provisioning = {"code": f"ProvisioningState/{res.state.lower()}", "level": "Info",
                    "displayStatus": f"Provisioning {res.state.lower()}", "time": when}
    power = res.power if res.state == "Succeeded" else "starting"
    statuses = [provisioning, {"code": f"PowerState/{power}", "level": "Info",
                               "displayStatus": f"VM {power}"}]
    view: dict[str, Any] = {"computerName": (res.props.get("osProfile") or {}).get("computerName", res.name),
                            "osName": "ubuntu", "osVersion": "24.04", "hyperVGeneration": "V2",
                            "statuses": statuses}
    if res.state == "Succeeded" and power == "running":  # the guest agent reports once the VM runs
        view["vmAgent"] = {"vmAgentVersion": "2.12.0.2", "extensionHandlers": [], "statuses": [
            {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready",
             "message": "Guest Agent is running", "time": iso(res.state_since)}]}
    disk = (res.props.get("storageProfile") or {}).get("osDisk") or {}
    if disk.get("name"):
        view["disks"] = [{"name": disk["name"], "statuses": [dict(provisioning)]}]
    return view


def _disk_view(state: AzureState, res: Resource, out: dict[str, Any], props: dict[str, Any]) -> None:
    owner = state.vm_of_disk(res)
    if owner is not None:
        out["managedBy"] = owner.id
    size = int(props.get("diskSizeGB") or OS_DISK_GB)
    out.setdefault("sku", {"name": "Premium_LRS", "tier": "Premium"})
    props.setdefault("osType", "Linux")
    props.setdefault("hyperVGeneration", "V2")
    props.setdefault("creationData", {"createOption": "Empty"})
    props["diskSizeGB"] = size
    props["diskSizeBytes"] = size * 1024 ** 3
    props["uniqueId"] = res.guid
    props["timeCreated"] = iso(res.created_at)
    props["diskState"] = "Attached" if owner is not None else "Unattached"
    props.setdefault("encryption", {"type": "EncryptionAtRestWithPlatformKey"})
    props.setdefault("networkAccessPolicy", "AllowAll")
    props.setdefault("publicNetworkAccess", "Enabled")
