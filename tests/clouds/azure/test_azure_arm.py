"""The reads of delete-cluster's safety check through azure-mgmt-resource alone (azure_arm)
send the API versions the compute and network SDKs send, and see what they see."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from provisioner.clouds import azure_arm as arm
from provisioner.clouds import azure_build as build

from .conftest import build_cluster, make_target


def _api_version(request) -> str:
    return parse_qs(urlparse(request.url).query)["api-version"][0]


def test_the_api_versions_are_the_sdks_own():
    from azure.mgmt.compute.operations._operations import build_virtual_machines_list_request
    from azure.mgmt.network.operations._operations import (
        build_network_interfaces_get_request,
        build_virtual_networks_list_request,
    )

    assert _api_version(build_virtual_machines_list_request("g", "s")) == arm.COMPUTE_API
    assert _api_version(build_virtual_networks_list_request("g", "s")) == arm.NETWORK_API
    assert _api_version(build_network_interfaces_get_request("g", "n", "s")) == arm.NETWORK_API


def test_the_generic_reads_show_what_the_sdks_show(provider, emulator):
    target = make_target("generic")
    build_cluster(provider, target, masters=1, workers=3)
    group = build.group_name(target.cluster)
    emulator.calls.clear()

    vms = arm.list_in_group(provider, group, arm.VM_TYPE)  # two pages: the emulator's are of three
    assert len(vms) == 4
    vnet = provider.listed_vnet(group, target.cluster)

    by_sdk = {vm.id.lower(): vm for vm in provider.session.compute.virtual_machines.list(group)}
    assert sorted(vm.id.lower() for vm in vms) == sorted(by_sdk)
    for vm in vms:
        sdk_vm = by_sdk[vm.id.lower()]
        assert vm.tags == sdk_vm.tags
        assert arm.nic_ids_of_vm(vm) == [ref.id for ref in sdk_vm.network_profile.network_interfaces]
    sdk_vnet = provider.vnet_of(group, target.cluster)
    assert vnet is not None and vnet.id == sdk_vnet.id
    assert sorted(arm.ip_configuration_ids(vnet)) == sorted(
        c.id for s in sdk_vnet.subnets for c in s.ip_configurations or [])
    nic = arm.read(provider, arm.nic_ids_of_vm(vms[0])[0])
    assert arm.vm_of_nic(nic) == vms[0].id
