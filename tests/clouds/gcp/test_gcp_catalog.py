"""The emulator's catalog through google-cloud-compute: the lookups every client makes first,
and the refusals of what Google does not have (machine type, zone, region, image, disk type),
with the API's status and message."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import compute_v1

from provisioner.sandbox.gcp_emulator import GcpEmulator

from .conftest import REGION, ZONE, http, sdk

PROJECT = "cast-test"
FAMILY = {"project": "ubuntu-os-cloud", "family": "ubuntu-2404-lts-amd64"}


def test_zones_and_regions_are_listed_and_got(emulator: GcpEmulator) -> None:
    zones = {z.name: z for z in sdk(emulator, "ZonesClient").list(project=PROJECT)}
    assert {"us-central1-a", "us-east4-a", "europe-west3-a", "asia-south1-a"} <= set(zones)
    assert zones["us-east4-a"].region.endswith(f"/projects/{PROJECT}/regions/us-east4")
    assert zones["us-east4-a"].status == "UP"
    region = sdk(emulator, "RegionsClient").get(project=PROJECT, region=REGION)
    assert region.name == REGION and any(z.endswith(f"/zones/{ZONE}") for z in region.zones)
    assert "CPUS" in {q.metric for q in region.quotas}
    with pytest.raises(gexc.NotFound):
        sdk(emulator, "ZonesClient").get(project=PROJECT, zone="atlantis-central1-a")
    with pytest.raises(gexc.NotFound):
        sdk(emulator, "RegionsClient").get(project=PROJECT, region="atlantis-central1")


def test_machine_types_and_disk_types_per_zone(emulator: GcpEmulator) -> None:
    client = sdk(emulator, "MachineTypesClient")
    medium = client.get(project=PROJECT, zone=ZONE, machine_type="e2-medium")
    assert (medium.guest_cpus, medium.memory_mb, medium.is_shared_cpu, medium.zone) == (2, 4096, True, ZONE)
    standard = client.get(project=PROJECT, zone=ZONE, machine_type="e2-standard-2")
    assert (standard.guest_cpus, standard.memory_mb, standard.is_shared_cpu) == (2, 8192, False)
    assert {"e2-medium", "e2-standard-2", "n2-standard-2"} <= {m.name for m in client.list(project=PROJECT, zone=ZONE)}
    with pytest.raises(gexc.NotFound, match="e2-doesnotexist"):
        client.get(project=PROJECT, zone=ZONE, machine_type="e2-doesnotexist")
    disk_types = {d.name: d for d in sdk(emulator, "DiskTypesClient").list(project=PROJECT, zone=ZONE)}
    assert {"pd-standard", "pd-balanced", "pd-ssd"} <= set(disk_types)
    assert disk_types["pd-standard"].default_disk_size_gb == 500


def test_the_region_maps_image_family_resolves_to_its_newest_image(emulator: GcpEmulator) -> None:
    images = sdk(emulator, "ImagesClient")
    current = images.get_from_family(**FAMILY)
    assert current.family == FAMILY["family"] and current.status == "READY" and current.architecture == "X86_64"
    assert current.name.startswith("ubuntu-2404-noble-amd64-v") and not current.deprecated.state
    assert images.get(project="ubuntu-os-cloud", image=current.name).self_link == current.self_link
    older = [i for i in images.list(project="ubuntu-os-cloud") if i.family == FAMILY["family"] and i != current]
    assert older and all(i.deprecated.state == "DEPRECATED" for i in older)
    with pytest.raises(gexc.NotFound, match="ubuntu-2404-lts-amd65"):
        images.get_from_family(project="ubuntu-os-cloud", family="ubuntu-2404-lts-amd65")


def instance_body(name: str, zone: str = ZONE, machine: str = "e2-medium", image: str | None = None,
                  **params: Any) -> dict[str, Any]:
    image = image or "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"
    return {"name": name, "machineType": f"zones/{zone}/machineTypes/{machine}",
            "disks": [{"boot": True, "autoDelete": True, "initializeParams": {"sourceImage": image, **params}}],
            "networkInterfaces": [{"subnetwork": f"projects/{PROJECT}/regions/{REGION}/subnetworks/catalog-sub"}]}


@pytest.fixture(scope="module")
def subnet(emulator: GcpEmulator) -> Any:
    base = f"/compute/v1/projects/{PROJECT}"
    assert http(emulator, "POST", base + "/global/networks", {"name": "catalog-net"})[0] == 200
    assert http(emulator, "POST", base + f"/regions/{REGION}/subnetworks",
                {"name": "catalog-sub", "ipCidrRange": "10.77.0.0/24",
                 "network": f"projects/{PROJECT}/global/networks/catalog-net"})[0] == 200
    return f"projects/{PROJECT}/regions/{REGION}/subnetworks/catalog-sub"


@pytest.mark.parametrize(("body", "status", "reason", "message"), [
    (instance_body("bad-type", machine="e2-doesnotexist"), 400, "invalid",
     "Invalid value for field 'resource.machineType': 'zones/us-central1-a/machineTypes/e2-doesnotexist'. "
     "Machine type with name 'e2-doesnotexist' does not exist in zone 'us-central1-a'."),
    (instance_body("bad-image", image="projects/ubuntu-os-cloud/global/images/family/ubuntu-1004-lts"), 404,
     "notFound", "The resource 'projects/ubuntu-os-cloud/global/images/family/ubuntu-1004-lts' was not found"),
    (instance_body("bad-disk-type", diskType=f"zones/{ZONE}/diskTypes/pd-floppy"), 404, "notFound",
     f"The resource 'projects/{PROJECT}/zones/{ZONE}/diskTypes/pd-floppy' was not found"),
    (instance_body("small-disk", diskSizeGb="5"), 400, "invalid",
     "Requested disk size cannot be smaller than the image size (10 GB)"),
    (instance_body("other-zone", zone="us-east4-a"), 400, "invalid", "does not match the instance zone"),
])
def test_inserts_naming_what_google_lacks_are_refused(emulator: GcpEmulator, subnet: str, body: dict[str, Any],
                                                      status: int, reason: str, message: str) -> None:
    got, reply = http(emulator, "POST", f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances", body)
    assert (got, reply["error"]["errors"][0]["reason"]) == (status, reason)
    assert message in reply["error"]["message"]
    assert http(emulator, "GET", f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances/{body['name']}")[0] == 404
    assert http(emulator, "GET", f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/disks/{body['name']}")[0] == 404


def test_an_unknown_machine_type_is_a_bad_request_through_the_sdk(emulator: GcpEmulator, subnet: str) -> None:
    instance = compute_v1.Instance(
        name="sdk-bad-type", machine_type=f"zones/{ZONE}/machineTypes/e2-doesnotexist",
        disks=[compute_v1.AttachedDisk(boot=True, initialize_params=compute_v1.AttachedDiskInitializeParams(
            source_image="projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"))],
        network_interfaces=[compute_v1.NetworkInterface(subnetwork=subnet)])
    with pytest.raises(gexc.BadRequest, match="Machine type with name 'e2-doesnotexist' does not exist"):
        sdk(emulator, "InstancesClient").insert_unary(project=PROJECT, zone=ZONE, instance_resource=instance)


@pytest.mark.parametrize(("path", "message"), [
    (f"/compute/v1/projects/{PROJECT}/zones/atlantis-1a/instances", "Invalid value for field 'zone': "
                                                                     "'atlantis-1a'. Unknown zone."),
    (f"/compute/v1/projects/{PROJECT}/zones/us-central1-z/machineTypes", "Invalid value for field 'zone': "
                                                                          "'us-central1-z'. Unknown zone."),
    (f"/compute/v1/projects/{PROJECT}/regions/atlantis1/subnetworks", "Invalid value for field 'region': "
                                                                       "'atlantis1'. Unknown region."),
])
def test_an_unknown_zone_or_region_is_a_bad_request(emulator: GcpEmulator, path: str, message: str) -> None:
    status, reply = http(emulator, "GET", path)
    assert status == 400 and reply["error"]["message"] == message
    assert reply["error"]["errors"][0]["reason"] == "invalid"


def test_boot_disks_are_disks_of_their_own_until_the_instance_goes(emulator: GcpEmulator, subnet: str) -> None:
    instances = sdk(emulator, "InstancesClient")
    body = instance_body("disk-owner", diskType=f"zones/{ZONE}/diskTypes/pd-balanced", diskSizeGb="30")
    assert http(emulator, "POST", f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances", body)[0] == 200
    aggregated = dict(sdk(emulator, "DisksClient").aggregated_list(project=PROJECT))
    disk = next(d for d in aggregated[f"zones/{ZONE}"].disks if d.name == "disk-owner")
    assert disk.size_gb == 30 and disk.type_.endswith("/diskTypes/pd-balanced") and disk.status == "READY"
    assert aggregated["zones/us-east4-a"].warning.code == "NO_RESULTS_ON_PAGE"
    ops = list(sdk(emulator, "ZoneOperationsClient").list(project=PROJECT, zone=ZONE))
    assert any(o.operation_type == "insert" and o.target_link.endswith("/instances/disk-owner") for o in ops)
    op = instances.delete_unary(project=PROJECT, zone=ZONE, instance="disk-owner")
    sdk(emulator, "ZoneOperationsClient").wait(project=PROJECT, zone=ZONE, operation=op.name)
    with pytest.raises(gexc.NotFound):
        sdk(emulator, "DisksClient").get(project=PROJECT, zone=ZONE, disk="disk-owner")
