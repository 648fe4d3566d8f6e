"""regions.yaml against the GCP emulator's catalog: every GCP region of the region map
creates one VM of each default machine type from its image family, in its zone, through
cast's provider (the emulator refuses unknown zones, machine types and images as the API
does, so a wrong value in the map fails here)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from provisioner.clouds.base import CloudTarget, ClusterRef, VmRequest
from provisioner.clouds.gcp import Provider
from provisioner.plan import firewall_rules
from provisioner.regions import ROLES, load_region_map
from provisioner.sandbox.gcp_emulator import GcpEmulator

from .conftest import PEERS, build, http

GCP_REGIONS = [(key, r.clouds["gcp"]) for key, r in load_region_map().regions.items() if "gcp" in r.clouds]


@pytest.mark.parametrize(("key", "cloud"), GCP_REGIONS, ids=[k for k, _ in GCP_REGIONS])
def test_every_default_machine_type_and_image_is_created(emulator: GcpEmulator, monkeypatch: pytest.MonkeyPatch,
                                                         key: str, cloud: Any) -> None:
    monkeypatch.setenv("CAST_GCP_ENDPOINT", emulator.url)
    monkeypatch.setenv("CAST_GCP_PROJECT", "cast-map")
    provider = Provider(region=cloud.region, zone=cloud.zone)
    provider.settings = dataclasses.replace(provider.settings, poll_initial_s=0.02, poll_max_s=0.2)
    target = CloudTarget(
        cluster=ClusterRef(f"map-{key}", str(uuid.uuid4())), region=cloud.region, zone=cloud.zone,
        network_cidr="10.0.0.0/16", subnet_cidr="10.0.0.0/24",
        firewall={role: firewall_rules(role, ("0.0.0.0/0",), node_ips=PEERS) for role in ROLES}, image=dict(cloud.image))
    wanted = [VmRequest(f"map-{key}-gcp-{role[0]}1", role, cloud.sizes[role], "#cloud-config\n") for role in ROLES]

    vms = build(provider, target, wanted)

    assert [v.state for v in vms] == ["RUNNING", "RUNNING"]
    for vm, want in zip(vms, wanted, strict=True):
        _, inst = http(emulator, "GET", f"/compute/v1/projects/cast-map/zones/{cloud.zone}/instances/{vm.cloud_id}")
        assert inst["machineType"].endswith(f"/zones/{cloud.zone}/machineTypes/{want.size}")
        _, disk = http(emulator, "GET", inst["disks"][0]["source"].removeprefix("https://www.googleapis.com"))
        assert f"/projects/{cloud.image['project']}/global/images/" in disk["sourceImage"]
    provider.teardown(target)
    assert provider.list_resources(target.cluster) == []
