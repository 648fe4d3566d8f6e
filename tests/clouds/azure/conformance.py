"""The Azure emulator checked by schemathesis against the Azure REST API specifications
(Swagger 2.0), limited to the operations the emulator serves (`AzureEmulator.serves`).

Two passes, both asserting with schemathesis' own checks that every response has a status
code and a body the specification declares (`status_code_conformance`,
`content_type_conformance`, `response_schema_conformance`) and is no server error:
- `check_world`: every served GET, on a small world of real resources (a group, a VNet and
  subnet, an NSG, public IPs, a Standard load balancer, a NIC in its pool, a VM and its disk),
  so that the 200 bodies are checked, not only the errors;
- `fuzz`: cases schemathesis generates from the specifications (bodies included), with the
  subscription and resource group pinned to the world so that they reach the resource logic.
Used by tests/clouds/azure/test_azure_schemathesis.py (bounded) and scripts/schemathesis_azure.py.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from provisioner.sandbox.azure_emulator import AzureEmulator
from provisioner.sandbox.azure_specs import OPTIONAL_FILES, ROOT_FILES

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
GROUP = "world"
TOKEN = "schemathesis"
# Path parameters of the world's resources, by the names the specifications give them.
WORLD = {
    "subscriptionId": SUBSCRIPTION, "resourceGroupName": GROUP, "virtualNetworkName": "world-vnet",
    "subnetName": "default", "networkSecurityGroupName": "world-nsg", "publicIpAddressName": "world-ip",
    "networkInterfaceName": "world-nic", "vmName": "world-vm", "location": "eastus",
    "resourceProviderNamespace": "Microsoft.Compute", "diskName": "world-disk", "loadBalancerName": "world-lb",
}


@dataclass
class Report:
    """What a pass did: calls made per operation, and the failures (operation: message)."""

    calls: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)  # status code -> how many answers
    failures: list[str] = field(default_factory=list)

    def merge(self, other: Report) -> None:
        for k, v in other.calls.items():
            self.calls[k] = self.calls.get(k, 0) + v
        for code, n in other.statuses.items():
            self.statuses[code] = self.statuses.get(code, 0) + n
        self.failures.extend(other.failures)


@functools.lru_cache(maxsize=4)
def served_operations(specs_root: Path) -> list[tuple[str, Any]]:
    """(api-version, schemathesis operation) for every operation of the specification files the
    emulator serves."""
    import schemathesis

    out = []
    for name in ROOT_FILES + tuple(f for f in OPTIONAL_FILES if (specs_root / f).is_file()):
        schema = schemathesis.openapi.from_path(specs_root / name)
        version = str(schema.raw_schema["info"]["version"])
        for result in schema.get_all_operations():
            try:
                op = result.ok()
            except Exception:  # an operation schemathesis cannot read: not ours to judge
                continue
            sample = re.sub(r"\{([^}]+)\}", lambda m: WORLD.get(m.group(1), "x"), op.path)
            if AzureEmulator.serves(op.method, sample):
                out.append((version, op))
    return out


def build_world(emulator: AzureEmulator) -> None:
    """The resources `WORLD` names, made as a client would (each PUT's operation followed)."""
    http = _session()
    base = f"{emulator.url}/subscriptions/{SUBSCRIPTION}"
    rg = f"{base}/resourceGroups/{GROUP}/providers"
    net, compute = {"api-version": "2024-10-01"}, {"api-version": "2025-04-01"}
    _put(http, f"{base}/resourcegroups/{GROUP}", {"api-version": "2025-04-01"}, {"location": "eastus"})
    vnet = _put(http, f"{rg}/Microsoft.Network/virtualNetworks/world-vnet", net, {
        "location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.7.0.0/16"]}, "subnets": [
            {"name": "default", "properties": {"addressPrefix": "10.7.0.0/24"}}]}})
    nsg = _put(http, f"{rg}/Microsoft.Network/networkSecurityGroups/world-nsg", net, {
        "location": "eastus", "properties": {"securityRules": [{"name": "ssh", "properties": {
            "protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "22", "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "*", "access": "Allow", "priority": 100, "direction": "Inbound"}}]}})
    pip = _put(http, f"{rg}/Microsoft.Network/publicIPAddresses/world-ip", net, {
        "location": "eastus", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}})
    lb_ip = _put(http, f"{rg}/Microsoft.Network/publicIPAddresses/world-lb-ip", net, {
        "location": "eastus", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}})
    lb_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Network/loadBalancers/world-lb"
    _put(http, f"{rg}/Microsoft.Network/loadBalancers/world-lb", net, {
        "location": "eastus", "sku": {"name": "Standard"}, "properties": {
            "frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": lb_ip["id"]}}}],
            "backendAddressPools": [{"name": "workers"}],
            "probes": [{"name": "healthz", "properties": {"protocol": "Http", "port": 30080,
                                                          "requestPath": "/healthz"}}],
            "loadBalancingRules": [{"name": "tcp-80", "properties": {
                "protocol": "Tcp", "frontendPort": 80, "backendPort": 30080,
                "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/fe"},
                "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/workers"},
                "probe": {"id": f"{lb_id}/probes/healthz"}}}]}})
    nic = _put(http, f"{rg}/Microsoft.Network/networkInterfaces/world-nic", net, {
        "location": "eastus", "properties": {"networkSecurityGroup": {"id": nsg["id"]}, "ipConfigurations": [
            {"name": "ipconfig1", "properties": {"subnet": {"id": vnet["properties"]["subnets"][0]["id"]},
                                                 "publicIPAddress": {"id": pip["id"]},
                                                 "loadBalancerBackendAddressPools": [
                                                     {"id": f"{lb_id}/backendAddressPools/workers"}]}}]}})
    _put(http, f"{rg}/Microsoft.Compute/virtualMachines/world-vm", compute, {
        "location": "eastus", "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                  "sku": "server", "version": "latest"},
                               "osDisk": {"name": "world-disk", "createOption": "FromImage"}},
            "osProfile": {"computerName": "world-vm", "adminUsername": "azureuser",
                          "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [
                              {"path": "/home/azureuser/.ssh/authorized_keys",
                               "keyData": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly world"}]}}},
            "networkProfile": {"networkInterfaces": [{"id": nic["id"]}]}}})


def check_world(emulator: AzureEmulator, specs_root: Path) -> Report:
    """Every served GET on the world's resources, then a PUT of each resource with the body its
    GET showed (an update, as clients do), then the VM actions; each response checked against
    the specifications."""
    report = Report()
    ops = served_operations(specs_root)
    order = {"GET": 0, "HEAD": 0, "PUT": 1, "POST": 2}
    for version, op in sorted(ops, key=lambda vo: order.get(vo[1].method.upper(), 3)):
        method = op.method.upper()
        if method not in order:
            continue  # deletes would take the world apart: the fuzz pass has them
        params = {p: WORLD.get(p, "x") for p in re.findall(r"\{([^}]+)\}", op.path)}
        kwargs: dict[str, Any] = {}
        if method == "PUT":
            url = emulator.url + op.path.format(**params)
            shown = _session().get(url, params={"api-version": version}, timeout=10)
            if shown.status_code != 200:
                report.failures.append(f"{op.label}: the world has no resource here ({shown.status_code})")
                continue
            kwargs["body"] = shown.json()
            kwargs["media_type"] = "application/json"
        case = op.Case(path_parameters=params, query={"api-version": version}, **kwargs)
        _call_and_check(case, emulator, report)
    return report


def fuzz(emulator: AzureEmulator, specs_root: Path, examples: int, deadline_s: float | None = None) -> Report:
    """`examples` generated cases per served operation (until `deadline_s` has passed)."""
    report = Report()
    end = time.monotonic() + deadline_s if deadline_s else None
    # Deletes last, so that the reads and writes before them find the world in place.
    for version, op in sorted(served_operations(specs_root), key=lambda vo: vo[1].method.upper() == "DELETE"):
        if end is not None and time.monotonic() > end:
            break

        run = _fuzz_one(op, version, examples, emulator, report)
        try:
            run()
        except Exception as exc:  # hypothesis could not generate for this operation
            report.failures.append(f"{op.label}: generation failed: {type(exc).__name__}: {str(exc)[:200]}")
    return report


def _fuzz_one(op: Any, version: str, examples: int, emulator: AzureEmulator, report: Report) -> Any:
    """A hypothesis test over one operation's generated cases."""
    from hypothesis import HealthCheck, Phase, given, settings

    @given(case=op.as_strategy())
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        pinned = {"subscriptionId": SUBSCRIPTION, "resourceGroupName": GROUP}
        if op.method.upper() == "DELETE" and op.path.lower().endswith("/resourcegroups/{resourcegroupname}"):
            pinned.pop("resourceGroupName")  # the world's group stays
        if op.method.upper() in ("GET", "HEAD", "POST"):  # reads and actions: on the world's resources
            pinned.update({k: WORLD[k] for k in case.path_parameters or {} if k in WORLD})
        elif op.method.upper() == "PUT" and isinstance(case.body, dict) and "location" in case.body:
            case.body["location"] = "eastus"  # a real location, so that the rest of the body is judged
        case.path_parameters = {**(case.path_parameters or {}), **pinned}
        case.query = {**(case.query or {}), "api-version": version}
        _call_and_check(case, emulator, report)

    return run


def _call_and_check(case: Any, emulator: AzureEmulator, report: Report) -> None:
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    label = case.operation.label
    report.calls[label] = report.calls.get(label, 0) + 1
    response = case.call(base_url=emulator.url, headers={"Authorization": f"Bearer {TOKEN}"})
    report.statuses[response.status_code] = report.statuses.get(response.status_code, 0) + 1
    if response.status_code >= 500:
        report.failures.append(f"{label}: server error {response.status_code}: {response.text[:300]}")
        return
    try:
        case.validate_response(response, checks=[status_code_conformance, content_type_conformance,
                                                 response_schema_conformance])
    except BaseExceptionGroup as group:  # schemathesis' FailureGroup: one entry per failed check
        for failure in group.exceptions:
            lines = [ln.strip() for ln in str(failure).strip().splitlines() if ln.strip()]
            report.failures.append(f"{label} -> {response.status_code}: {' '.join(lines[:2])[:400]}")


def _session() -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {TOKEN}"
    return http


def _put(http: requests.Session, url: str, params: dict[str, str], body: Any) -> dict[str, Any]:
    first = http.put(url, params=params, json=body, timeout=10)
    assert first.status_code in (200, 201), first.text
    operation = first.headers.get("Azure-AsyncOperation")
    for _ in range(50):
        if operation is None or http.get(operation, timeout=10).json()["status"] == "Succeeded":
            break
    got = http.get(url, params=params, timeout=10)
    assert got.status_code == 200, got.text
    return dict(got.json())
