"""One Azure emulator per test module, reached over HTTP by the real SDKs; tests isolate by
cluster UUID. After every test no request may have violated the Azure REST specifications."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from provisioner.clouds.azure import Provider
from provisioner.clouds.base import CloudTarget, VmRequest
from provisioner.sandbox.azure_emulator import AzureEmulator

from ...conftest import PEERS as PEERS  # re-exported: the tests import it from here
from ...conftest import cloud_target
from ...conftest import vm_requests as node_requests

IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"
NET = "api-version=2026-03-01"
COMPUTE = "api-version=2026-04-01"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly cast@test"



@pytest.fixture(scope="module")

def emulator() -> Iterator[AzureEmulator]:
    # page_size 3 makes every list above three items follow nextLink
    emu = AzureEmulator(lro_polls=2, retry_after=0, throttle_retry_after=1, page_size=3).start()
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def azure_env(emulator: AzureEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureEmulator]:
    monkeypatch.setenv("CAST_AZURE_ENDPOINT", emulator.url)
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    emulator.faults.clear()
    yield emulator
    emulator.faults.clear()
    violations = list(emulator.errors)
    emulator.errors.clear()
    assert violations == [], "requests violated the Azure REST specifications"


@pytest.fixture
def provider() -> Provider:
    return Provider("eastus", "1")


def make_target(name: str, zone: str | None = "1") -> CloudTarget:
    """A fresh cluster's Azure target, with the plan's firewall rules."""
    return cloud_target("eastus", zone, "10.20.0.0/16", "10.20.1.0/24", IMAGE, name=name)


def vm_requests(target: CloudTarget, masters: int, workers: int) -> list[VmRequest]:
    name = target.cluster.name
    return node_requests("azure", name, masters, workers, {"master": "Standard_D2s_v5", "worker": "Standard_B2s"},
                         lambda role, i: f"#cloud-config\nhostname: {name}-az-{role[0]}{i}\n")


def build_cluster(provider: Provider, target: CloudTarget, masters: int = 1, workers: int = 1) -> list:
    provider.ensure_network(target)
    provider.ensure_subnet(target)
    provider.ensure_firewall(target)
    return provider.ensure_vms(target, vm_requests(target, masters, workers), PUBLIC_KEY)


def arm_call(emulator: AzureEmulator, method: str, path: str, body: object = None,
             auth: str | None = "Bearer test") -> tuple[int, Any]:
    """One raw ARM request (JSON in and out), with `auth` as its Authorization header (None: none)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    req = urllib.request.Request(emulator.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else {}


def raw_network(emulator: AzureEmulator, group: str) -> str:
    """A resource group with a VNet, subnet and NIC in eastus; the NIC's id."""
    rg = f"{SUB}/resourceGroups/{group}"
    assert arm_call(emulator, "PUT", f"{SUB}/resourcegroups/{group}?api-version=2025-04-01", {"location": "eastus"})[0] == 201
    vnet = {"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]},
                                                 "subnets": [{"name": "s", "properties": {"addressPrefix": "10.9.1.0/24"}}]}}
    assert arm_call(emulator, "PUT", f"{rg}/providers/Microsoft.Network/virtualNetworks/v?{NET}", vnet)[0] == 201
    nic = {"location": "eastus", "properties": {"ipConfigurations": [{"name": "ip", "properties": {
        "subnet": {"id": f"{rg}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"}}}]}}
    assert arm_call(emulator, "PUT", f"{rg}/providers/Microsoft.Network/networkInterfaces/n?{NET}", nic)[0] == 201
    return f"{rg}/providers/Microsoft.Network/networkInterfaces/n"


def vm_body(nic_id: str | None, size: str = "Standard_B2s", image: dict[str, str] | None = None,
             location: str = "eastus") -> dict[str, Any]:
    props: dict[str, Any] = {
        "hardwareProfile": {"vmSize": size},
        "storageProfile": {"imageReference": image or IMAGE, "osDisk": {"createOption": "FromImage"}},
        "osProfile": {"computerName": "vm", "adminUsername": "cast", "linuxConfiguration": {
            "disablePasswordAuthentication": True,
            "ssh": {"publicKeys": [{"path": "/home/cast/.ssh/authorized_keys", "keyData": PUBLIC_KEY}]}}},
    }
    if nic_id:
        props["networkProfile"] = {"networkInterfaces": [{"id": nic_id}]}
    return {"location": location, "properties": props}
