"""The Azure resources cast asks for, as SDK model objects (plain dicts would go over the wire
as they are), and the names it gives them. Pure: no calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..cloudinit import encode_user_data
from ..plan import FirewallRule
from .base import ClusterRef

ADMIN_USER = "azureuser"  # Azure refuses "root"; the cluster's cloud-init authorizes root itself
FIRST_PRIORITY = 100


def resource_id(subscription: str, group: str, kind: str, name: str) -> str:
    """The ARM id of resource `name` of `kind` (e.g. "Microsoft.Network/publicIPAddresses")."""
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{kind}/{name}"


def group_name(cluster: ClusterRef) -> str:
    """`cast-<cluster>-<short id>`: the cluster's one resource group."""
    return f"cast-{cluster.name}-{cluster.short_id}"


def vnet_name(cluster: ClusterRef) -> str:
    """The VNet's name (unique within the cluster's group)."""
    return f"{cluster.name}-vnet"


def subnet_name(cluster: ClusterRef) -> str:
    """The /24 subnet's name."""
    return f"{cluster.name}-subnet"


def nsg_name(cluster: ClusterRef, role: str) -> str:
    """The network security group of a role."""
    return f"{cluster.name}-{role}-nsg"


def pip_name(node: str) -> str:
    """A node's public IP."""
    return f"{node}-ip"


def nic_name(node: str) -> str:
    """A node's network interface."""
    return f"{node}-nic"


def resource_group(location: str, tags: Mapping[str, str]) -> Any:
    """A resource group in `location`."""
    from azure.mgmt.resource.resources.models import ResourceGroup

    return ResourceGroup(location=location, tags=dict(tags))


def virtual_network(location: str, tags: Mapping[str, str], cidr: str,
                    first_subnet: tuple[str, str] | None = None) -> Any:
    """A VNet with one address space and, when given, its first subnet (name, cidr). Only for
    a VNet's creation: a PUT replaces the whole VNet, so later subnets are PUT on their own."""
    from azure.mgmt.network.models import AddressSpace, VirtualNetwork, VirtualNetworkPropertiesFormat

    subnets = [subnet(first_subnet[1], first_subnet[0])] if first_subnet else None
    props = VirtualNetworkPropertiesFormat(address_space=AddressSpace(address_prefixes=[cidr]), subnets=subnets)
    return VirtualNetwork(location=location, tags=dict(tags), properties=props)


def subnet(cidr: str, name: str | None = None) -> Any:
    """A subnet (named when it goes inside a VNet's body); its NSG is attached per NIC, not here."""
    from azure.mgmt.network.models import Subnet, SubnetPropertiesFormat

    return Subnet(name=name, properties=SubnetPropertiesFormat(address_prefix=cidr))


def rule_key(protocol: str, ports: str, sources: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
    """What makes two inbound rules the same, whatever their names and priorities."""
    return protocol.lower(), ports, tuple(sorted(sources))


def wanted_rule_keys(rules: Sequence[FirewallRule]) -> set[tuple[str, str, tuple[str, ...]]]:
    """The plan's rules as `rule_key`s."""
    return {rule_key(r.protocol, r.ports, r.sources) for r in rules}


def text(value: Any) -> str:
    """An SDK enum member or a plain string, as its wire text."""
    return str(getattr(value, "value", value) or "")


def existing_rule_keys(nsg: Any) -> set[tuple[str, str, tuple[str, ...]]]:
    """The inbound allow rules of an NSG as `rule_key`s; any other rule yields a key that
    matches nothing wanted, so it counts as drift."""
    keys = set()
    for r in nsg.security_rules or []:
        sources = list(r.source_address_prefixes or []) or [r.source_address_prefix or ""]
        ports = r.destination_port_range or ",".join(r.destination_port_ranges or [])
        key = rule_key(text(r.protocol), ports, sources)
        if text(r.access).lower() != "allow" or text(r.direction).lower() != "inbound":
            key = (f"{text(r.access)}-{text(r.direction)}-{key[0]}", key[1], key[2])
        keys.add(key)
    return keys


def security_group(location: str, tags: Mapping[str, str], rules: Sequence[FirewallRule]) -> Any:
    """An NSG allowing exactly `rules` inbound, priorities from 100 in steps of 10."""
    from azure.mgmt.network.models import (
        NetworkSecurityGroup,
        NetworkSecurityGroupPropertiesFormat,
        SecurityRule,
        SecurityRulePropertiesFormat,
    )

    out = []
    for i, rule in enumerate(rules):
        many = len(rule.sources) > 1
        props = SecurityRulePropertiesFormat(
            protocol=rule.protocol.capitalize(),
            source_port_range="*",
            destination_port_range=rule.ports,
            source_address_prefix=None if many else rule.sources[0],
            source_address_prefixes=list(rule.sources) if many else None,
            destination_address_prefix="*",
            access="Allow",
            direction="Inbound",
            priority=FIRST_PRIORITY + 10 * i,
        )
        out.append(SecurityRule(name=f"{rule.purpose}-{rule.protocol}-{rule.ports}", properties=props))
    return NetworkSecurityGroup(location=location, tags=dict(tags),
                                properties=NetworkSecurityGroupPropertiesFormat(security_rules=out))


def public_ip(location: str, tags: Mapping[str, str], zone: str | None) -> Any:
    """A Standard static IPv4 public IP (in `zone` when given)."""
    from azure.mgmt.network.models import PublicIPAddress, PublicIPAddressPropertiesFormat, PublicIPAddressSku

    props = PublicIPAddressPropertiesFormat(public_ip_allocation_method="Static", public_ip_address_version="IPv4")
    return PublicIPAddress(location=location, tags=dict(tags), zones=[zone] if zone else None,
                           sku=PublicIPAddressSku(name="Standard"), properties=props)


def network_interface(location: str, tags: Mapping[str, str], subnet_id: str, pip_id: str, nsg_id: str) -> Any:
    """A NIC in the subnet with the public IP (which goes when the NIC goes) and the role's NSG."""
    from azure.mgmt.network.models import (
        NetworkInterface,
        NetworkInterfaceIPConfiguration,
        NetworkInterfaceIPConfigurationPropertiesFormat,
        NetworkInterfacePropertiesFormat,
        NetworkSecurityGroup,
        PublicIPAddress,
        PublicIPAddressPropertiesFormat,
        Subnet,
    )

    pip = PublicIPAddress(id=pip_id, properties=PublicIPAddressPropertiesFormat(delete_option="Delete"))
    config = NetworkInterfaceIPConfiguration(name="primary", properties=NetworkInterfaceIPConfigurationPropertiesFormat(
        primary=True, private_ip_allocation_method="Dynamic", subnet=Subnet(id=subnet_id), public_ip_address=pip))
    props = NetworkInterfacePropertiesFormat(ip_configurations=[config],
                                             network_security_group=NetworkSecurityGroup(id=nsg_id))
    return NetworkInterface(location=location, tags=dict(tags), properties=props)


def virtual_machine(location: str, zone: str | None, tags: Mapping[str, str], node: str, size: str,
                    image: Mapping[str, str], user_data: str, public_key: str, nic_id: str) -> Any:
    """A Linux VM from the image reference, key-only SSH for ADMIN_USER, cloud-init as customData;
    its OS disk and NIC go when it goes."""
    from azure.mgmt.compute.models import (
        HardwareProfile,
        ImageReference,
        LinuxConfiguration,
        ManagedDiskParameters,
        NetworkInterfaceReference,
        NetworkInterfaceReferenceProperties,
        NetworkProfile,
        OSDisk,
        OSProfile,
        SshConfiguration,
        SshPublicKey,
        StorageProfile,
        VirtualMachine,
        VirtualMachineProperties,
    )

    image_ref = ImageReference(publisher=image["publisher"], offer=image["offer"], sku=image["sku"],
                               version=image.get("version", "latest"))
    os_disk = OSDisk(name=f"{node}-osdisk", create_option="FromImage", delete_option="Delete",
                     managed_disk=ManagedDiskParameters(storage_account_type="StandardSSD_LRS"))
    ssh_key = SshPublicKey(path=f"/home/{ADMIN_USER}/.ssh/authorized_keys", key_data=public_key)
    os_profile = OSProfile(
        computer_name=node,
        admin_username=ADMIN_USER,
        custom_data=encode_user_data("azure", user_data),
        linux_configuration=LinuxConfiguration(disable_password_authentication=True,
                                               ssh=SshConfiguration(public_keys=[ssh_key])),
    )
    nic = NetworkInterfaceReference(
        id=nic_id, properties=NetworkInterfaceReferenceProperties(primary=True, delete_option="Delete"))
    properties = VirtualMachineProperties(
        hardware_profile=HardwareProfile(vm_size=size),
        storage_profile=StorageProfile(image_reference=image_ref, os_disk=os_disk),
        os_profile=os_profile,
        network_profile=NetworkProfile(network_interfaces=[nic]),
    )
    return VirtualMachine(location=location, tags=dict(tags), zones=[zone] if zone else None, properties=properties)
