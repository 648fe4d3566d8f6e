"""What the Azure emulator answers, compared with what ARM sends: provisioning states from the
specifications' enum, etag and resourceGuid, a VM's instance view and power state, the managed
OS disk under Microsoft.Compute/disks."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from provisioner.clouds.azure_session import AzureSession
from provisioner.sandbox.azure_emulator import AzureEmulator

from .conftest import COMPUTE, NET, SUB, arm_call, raw_network, vm_body

NETWORK_STATES = {"Succeeded", "Updating", "Deleting", "Failed"}  # network 2024-10-01 ProvisioningState enum


def test_network_resources_show_states_from_the_enum_with_etag_and_resource_guid(emulator: AzureEmulator):
    nic_id = raw_network(emulator, "shapes")
    vnet_url = f"{SUB}/resourceGroups/shapes/providers/Microsoft.Network/virtualNetworks/v?{NET}"
    status, first = arm_call(emulator, "GET", vnet_url)
    assert status == 200
    assert first["properties"]["provisioningState"] in NETWORK_STATES
    assert first["etag"].startswith('W/"') and first["properties"]["resourceGuid"]
    assert first["properties"]["subnets"][0]["etag"]
    status, nic = arm_call(emulator, "GET", f"{nic_id}?{NET}")
    assert nic["properties"]["provisioningState"] in NETWORK_STATES and nic["properties"]["resourceGuid"]
    body = {"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
                                                 "subnets": [{"name": "s", "properties": {"addressPrefix": "10.9.1.0/24"}}]}}
    status, updating = arm_call(emulator, "PUT", vnet_url, body)
    assert status == 200 and updating["properties"]["provisioningState"] == "Updating"
    assert updating["etag"] != first["etag"]  # a new etag per change
    assert updating["properties"]["resourceGuid"] == first["properties"]["resourceGuid"]  # the guid stays
    status, nsg = arm_call(emulator, "PUT", f"{SUB}/resourceGroups/shapes/providers/Microsoft.Network/"
                           f"networkSecurityGroups/g?{NET}", {"location": "eastus"})
    assert status == 201 and nsg["properties"]["provisioningState"] == "Updating"
    assert len(nsg["properties"]["defaultSecurityRules"]) == 6


def _vm(emulator: AzureEmulator, group: str, delete_option: str = "Detach") -> str:
    """A VM made through the SDK (a wire-format body; the SDK follows the long-running operation)."""
    nic = raw_network(emulator, group)
    body = vm_body(nic)
    body["properties"]["storageProfile"]["osDisk"]["deleteOption"] = delete_option
    vm = f"{SUB}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/vm"
    status, made = arm_call(emulator, "PUT", f"{vm}?{COMPUTE}", body)
    assert status == 201 and made["properties"]["provisioningState"] == "Creating"
    assert made["etag"] == '"1"'
    done = AzureSession.from_env().compute.virtual_machines.begin_create_or_update(group, "vm", body).result()
    assert done.provisioning_state == "Succeeded" and done.etag == '"2"'
    return vm


def test_instance_view_and_power_actions_through_the_sdk(emulator: AzureEmulator):
    _vm(emulator, "power")
    compute = AzureSession.from_env().compute
    view = compute.virtual_machines.instance_view("power", "vm")
    assert [s.code for s in view.statuses] == ["ProvisioningState/succeeded", "PowerState/running"]
    assert view.disks and view.disks[0].name
    assert "vm" in {v.name for v in emulator.running_vms()}

    compute.virtual_machines.begin_deallocate("power", "vm").result()
    assert "PowerState/deallocated" in [s.code for s in compute.virtual_machines.instance_view("power", "vm").statuses]
    assert "vm" not in {v.name for v in emulator.running_vms()}  # the sandbox stops booting it
    compute.virtual_machines.begin_start("power", "vm").result()
    assert "vm" in {v.name for v in emulator.running_vms()}
    compute.virtual_machines.begin_power_off("power", "vm").result()
    expanded = compute.virtual_machines.get("power", "vm", expand="instanceView")
    assert "PowerState/stopped" in [s.code for s in expanded.instance_view.statuses]


def test_the_os_disk_is_a_disk_resource_deletable_once_detached(emulator: AzureEmulator):
    vm = _vm(emulator, "disks")
    compute = AzureSession.from_env().compute
    disk_name = compute.virtual_machines.get("disks", "vm").storage_profile.os_disk.name
    disk = compute.disks.get("disks", disk_name)
    assert disk.managed_by and disk.managed_by.lower() == vm.lower()
    assert disk.disk_state == "Attached" and disk.disk_size_gb and disk.creation_data.create_option == "FromImage"
    with pytest.raises(HttpResponseError) as refused:
        compute.disks.begin_delete("disks", disk_name).result()
    assert (refused.value.status_code, refused.value.error.code) == (409, "OperationNotAllowed")

    compute.virtual_machines.begin_delete("disks", "vm").result()
    assert compute.disks.get("disks", disk_name).disk_state == "Unattached"  # deleteOption Detach kept it
    compute.disks.begin_delete("disks", disk_name).result()
    assert disk_name not in {d.name for d in compute.disks.list_by_resource_group("disks")}
