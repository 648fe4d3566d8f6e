"""The Azure emulator's catalog: what it serves (locations, providers, VM sizes) and what it
refuses as ARM does (an unknown location, VM size or image, a VM without a network interface);
every default of regions.yaml accepted through cast's provider."""

from __future__ import annotations

import uuid

import pytest

from provisioner.clouds.azure_session import AzureSession
from provisioner.clouds.base import CloudTarget, ClusterRef, VmRequest
from provisioner.errors import CloudError
from provisioner.plan import firewall_rules
from provisioner.regions import load_region_map

from .conftest import (
    COMPUTE,
    IMAGE,
    NET,
    PEERS,
    PUBLIC_KEY,
    SUB,
    arm_call,
    build_cluster,
    make_target,
    raw_network,
    vm_body,
)


def test_an_unknown_location_is_refused_for_groups_and_resources(emulator):
    status, body = arm_call(emulator, "PUT", f"{SUB}/resourcegroups/at?api-version=2025-04-01", {"location": "atlantis"})
    assert status == 400 and body["error"]["code"] == "LocationNotAvailableForResourceGroup"
    assert "'atlantis'" in body["error"]["message"] and "eastus" in body["error"]["message"]
    assert "at" not in emulator.state.groups
    arm_call(emulator, "PUT", f"{SUB}/resourcegroups/at?api-version=2025-04-01", {"location": "East US"})
    assert emulator.state.groups["at"]["location"] == "eastus"  # ARM's normalized form
    vnet = {"location": "atlantis", "properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}}}
    status, body = arm_call(emulator, "PUT", f"{SUB}/resourceGroups/at/providers/Microsoft.Network/virtualNetworks/v?{NET}",
                         vnet)
    assert (status, body["error"]["code"]) == (400, "LocationNotAvailableForResourceType")
    assert "'Microsoft.Network/virtualNetworks'" in body["error"]["message"]


def test_vm_refusals_match_arm(emulator):
    nic = raw_network(emulator, "refusals")
    vm = f"{SUB}/resourceGroups/refusals/providers/Microsoft.Compute/virtualMachines/vm?{COMPUTE}"
    cases = [
        (vm_body(nic, size="Standard_Nope"), 400, "InvalidParameter", "vmSize"),
        (vm_body(None), 400, "InvalidParameter", "networkProfile"),
        (vm_body(nic, image={**IMAGE, "sku": "nope"}), 404, "PlatformImageNotFound", "imageReference"),
        (vm_body(nic, location="atlantis"), 400, "LocationNotAvailableForResourceType", None),
    ]
    for body, status, code, target in cases:
        got, answer = arm_call(emulator, "PUT", vm, body)
        assert (got, answer["error"]["code"], answer["error"].get("target")) == (status, code, target)
    assert "Standard_Nope provided for the VM size is not valid" in arm_call(emulator, "PUT", vm, cases[0][0])[1][
        "error"]["message"]
    with emulator.lock:
        assert not [r for r in emulator.state.in_group("refusals") if r.type.endswith("virtualMachines")]
    assert arm_call(emulator, "PUT", vm, vm_body(nic))[0] == 201


def test_a_wrong_size_fails_in_cast_with_the_cloud_message(provider, emulator):
    target = make_target("nosize")
    provider.ensure_network(target)
    provider.ensure_subnet(target)
    provider.ensure_firewall(target)
    with pytest.raises(CloudError, match="Standard_Nope"):
        provider.ensure_vms(target, [VmRequest("nosize-az-w1", "worker", "Standard_Nope", "#cloud-config\n")],
                            PUBLIC_KEY)


def test_lookups_serve_the_catalog_to_the_sdks(emulator):
    session = AzureSession.from_env()
    wanted = {c.region for r in load_region_map().regions.values() if (c := r.clouds.get("azure"))}
    sizes = set(load_region_map().sizes["azure"])
    from azure.mgmt.resource.resources import ResourceManagementClient

    provider = session.resources.providers.get("Microsoft.Compute")
    assert isinstance(session.resources, ResourceManagementClient)
    vm_type = next(t for t in provider.resource_types if t.resource_type == "virtualMachines")
    assert {loc.replace(" ", "").lower() for loc in vm_type.locations} >= wanted
    for region in sorted(wanted):
        names = {s.name for s in session.compute.virtual_machine_sizes.list(region)}
        assert names >= sizes, region
    status, body = arm_call(emulator, "GET", f"{SUB}/locations?api-version=2022-12-01")
    assert status == 200 and {loc["name"] for loc in body["value"]} >= wanted
    status, body = arm_call(emulator, "GET", f"{SUB}/providers/Microsoft.Compute/locations/atlantis/vmSizes?{COMPUTE}")
    assert (status, body["error"]["code"]) == (400, "NoRegisteredProviderFound")


def _region_target(region: str, zone: str | None, image: dict[str, str]) -> CloudTarget:
    cluster = ClusterRef(f"cat-{region}"[:20], str(uuid.uuid4()))
    rules = {role: firewall_rules(role, ["0.0.0.0/0"], node_ips=PEERS) for role in ("master", "worker")}
    return CloudTarget(cluster, region, zone, "10.20.0.0/16", "10.20.1.0/24", rules, image)


def test_every_region_map_default_is_accepted(emulator):
    """One VM of every default size with the region map's image in every Azure region of
    regions.yaml, through cast's provider: all accepted, all running."""
    from provisioner.clouds.azure import Provider

    regions = [c for r in load_region_map().regions.values() if (c := r.clouds.get("azure"))]
    assert regions
    for cr in regions:
        target = _region_target(cr.region, cr.zone, dict(cr.image))
        provider = Provider(cr.region, cr.zone)
        provider.ensure_network(target)
        provider.ensure_subnet(target)
        provider.ensure_firewall(target)
        requests = [VmRequest(f"{target.cluster.name}-{role}", role, size, "#cloud-config\n")
                    for role, size in sorted(cr.sizes.items())]
        vms = provider.ensure_vms(target, requests, PUBLIC_KEY)
        assert sorted((v.name, v.state) for v in vms) == sorted((r.name, "running") for r in requests), cr.region
        names = {r.name for r in requests}
        with emulator.lock:
            made = {r.body["location"] for r in emulator.state.resources.values()
                    if r.type.endswith("virtualMachines") and r.name in names}
        assert made == {cr.region}


def test_build_cluster_still_works_in_the_default_region(provider):
    assert len(build_cluster(provider, make_target("catdef"))) == 2
