"""A client nobody here wrote the emulator for: plain `requests` calls as a third-party ARM
client makes them (libcloud's Azure ARM driver, Terraform, curl scripts), following ARM's
async-operation protocol: a PUT answers 200/201 with `Azure-AsyncOperation` (poll it until
its status is terminal), a DELETE or an action 202 with `Location` (poll it until it stops
answering 202), both with `Retry-After`.

Why not libcloud itself: its AzureNodeDriver gets its token in
AzureResourceManagementConnection.get_token_from_credentials, which always connects to the
login host on port 443 over TLS (`conn_class(self.login_host, 443)`); the management endpoint
can be moved (`cloud_environment={"resourceManagerEndpointUrl": ...}`), the login endpoint's
port and scheme cannot, so it cannot be pointed at a plain-http loopback emulator without
patching it. This scenario makes the same calls libcloud's create_node / list_nodes /
stop_node / destroy_node make, in the same order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from provisioner.sandbox.azure_emulator import AzureEmulator

from .conftest import IMAGE, PUBLIC_KEY

SUB = "/subscriptions/11111111-2222-3333-4444-555555555555"
NET_API = {"api-version": "2024-10-01"}
COMPUTE_API = {"api-version": "2025-04-01"}
RG_API = {"api-version": "2025-04-01"}


class ArmClient:
    """The smallest ARM client: a session with a bearer token and the async-operation protocol."""

    def __init__(self, base: str, token: str = "third-party"):
        self.base = base
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def call(self, method: str, path: str, params: dict[str, str], body: Any = None) -> requests.Response:
        return self.http.request(method, self.base + path, params=params, json=body, timeout=10)

    def wait(self, response: requests.Response, deadline_s: float = 10.0) -> requests.Response:
        """Follow a long-running operation to its end; the last response (the operation's)."""
        end = time.monotonic() + deadline_s
        if "Azure-AsyncOperation" in response.headers and response.request.method == "PUT":
            url = response.headers["Azure-AsyncOperation"]
            while time.monotonic() < end:
                polled = self.http.get(url, timeout=10)
                assert polled.status_code == 200
                if polled.json()["status"] in ("Succeeded", "Failed", "Canceled"):
                    return polled
                time.sleep(float(polled.headers.get("Retry-After", "0")))
            raise AssertionError("operation did not finish")
        if response.status_code == 202 and "Location" in response.headers:
            url = response.headers["Location"]
            while time.monotonic() < end:
                polled = self.http.get(url, timeout=10)
                if polled.status_code != 202:
                    return polled
                time.sleep(float(polled.headers.get("Retry-After", "0")))
            raise AssertionError("operation did not finish")
        return response

    def put(self, path: str, params: dict[str, str], body: Any) -> dict[str, Any]:
        first = self.call("PUT", path, params, body)
        assert first.status_code in (200, 201), first.text
        done = self.wait(first)
        if done is not first:
            assert done.json()["status"] == "Succeeded"
        got = self.call("GET", path, params)
        assert got.status_code == 200
        return got.json()


@pytest.fixture
def arm() -> Iterator[tuple[AzureEmulator, ArmClient]]:
    with AzureEmulator(lro_polls=1, token="third-party") as emu:
        assert isinstance(emu, AzureEmulator)
        yield emu, ArmClient(emu.url)
        assert emu.errors == []  # nothing this client sent broke the specifications


def test_a_third_party_client_creates_lists_stops_and_deletes_a_vm(arm):
    emu, client = arm
    locations = client.call("GET", f"{SUB}/locations", {"api-version": "2022-12-01"}).json()["value"]
    assert "eastus" in {loc["name"] for loc in locations}
    sizes = client.call("GET", f"{SUB}/providers/Microsoft.Compute/locations/eastus/vmSizes", COMPUTE_API).json()
    assert "Standard_B2s" in {s["name"] for s in sizes["value"]}

    assert client.call("PUT", f"{SUB}/resourcegroups/tp", RG_API, {"location": "eastus"}).status_code == 201
    rg = f"{SUB}/resourceGroups/tp/providers"
    vnet = client.put(f"{rg}/Microsoft.Network/virtualNetworks/tp-vnet", NET_API, {
        "location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}, "subnets": [
            {"name": "default", "properties": {"addressPrefix": "10.1.0.0/24"}}]}})
    assert vnet["properties"]["provisioningState"] == "Succeeded"
    pip = client.put(f"{rg}/Microsoft.Network/publicIPAddresses/tp-ip", NET_API, {
        "location": "eastus", "properties": {"publicIPAllocationMethod": "Static"}})
    nic = client.put(f"{rg}/Microsoft.Network/networkInterfaces/tp-nic", NET_API, {
        "location": "eastus", "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
            "subnet": {"id": vnet["properties"]["subnets"][0]["id"]}, "publicIPAddress": {"id": pip["id"]},
            "privateIPAllocationMethod": "Dynamic"}}]}})
    vm_body = {"location": "eastus", "properties": {
        "hardwareProfile": {"vmSize": "Standard_B2s"},
        "storageProfile": {"imageReference": IMAGE, "osDisk": {"name": "tp-disk", "createOption": "FromImage",
                                                               "managedDisk": {"storageAccountType": "Standard_LRS"}}},
        "osProfile": {"computerName": "tp-vm", "adminUsername": "azureuser", "linuxConfiguration": {
            "disablePasswordAuthentication": True,
            "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": PUBLIC_KEY}]}}},
        "networkProfile": {"networkInterfaces": [{"id": nic["id"]}]}}}
    vm_path = f"{rg}/Microsoft.Compute/virtualMachines/tp-vm"
    vm = client.put(vm_path, COMPUTE_API, vm_body)
    assert vm["properties"]["provisioningState"] == "Succeeded" and vm["properties"]["vmId"]
    assert "tp-vm" in {v.name for v in emu.running_vms()}

    listed = client.call("GET", f"{rg}/Microsoft.Compute/virtualMachines", COMPUTE_API).json()["value"]
    assert [v["name"] for v in listed] == ["tp-vm"]
    every = client.call("GET", f"{SUB}/providers/Microsoft.Compute/virtualMachines", COMPUTE_API).json()["value"]
    assert "tp-vm" in {v["name"] for v in every}
    view = client.call("GET", f"{vm_path}/instanceView", COMPUTE_API).json()
    assert [s["code"] for s in view["statuses"]] == ["ProvisioningState/succeeded", "PowerState/running"]

    # errors, with ARM's bodies
    bad = client.call("PUT", f"{rg}/Microsoft.Compute/virtualMachines/tp-bad", COMPUTE_API,
                      {**vm_body, "properties": {**vm_body["properties"], "hardwareProfile": {"vmSize": "Standard_Nope"}}})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "InvalidParameter")
    missing = client.call("GET", f"{rg}/Microsoft.Compute/virtualMachines/nowhere", COMPUTE_API)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ResourceNotFound")
    anonymous = requests.get(emu.url + f"{SUB}/resourcegroups", params=RG_API, timeout=10)
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "AuthenticationFailed")

    stopped = client.wait(client.call("POST", f"{vm_path}/deallocate", COMPUTE_API))
    assert stopped.status_code in (200, 204)
    view = client.call("GET", f"{vm_path}/instanceView", COMPUTE_API).json()
    assert "PowerState/deallocated" in [s["code"] for s in view["statuses"]]

    gone = client.wait(client.call("DELETE", vm_path, COMPUTE_API))
    assert gone.status_code in (200, 204)
    assert client.call("GET", vm_path, COMPUTE_API).status_code == 404
    disk = f"{rg}/Microsoft.Compute/disks/tp-disk"
    disk_api = {"api-version": "2025-01-02"}
    assert client.call("GET", disk, disk_api).json()["properties"]["diskState"] == "Unattached"
    assert client.wait(client.call("DELETE", disk, disk_api)).status_code in (200, 204)
    assert client.call("GET", disk, disk_api).status_code == 404
    deleted = client.wait(client.call("DELETE", f"{SUB}/resourcegroups/tp", RG_API), deadline_s=20)
    assert deleted.status_code in (200, 204)
    assert client.call("GET", f"{SUB}/resourcegroups/tp", RG_API).status_code == 404
