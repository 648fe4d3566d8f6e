"""Responses as Compute Engine sends them: every field (and its JSON type) that the recorded
responses in apache-libcloud's test fixtures (libcloud/test/compute/fixtures/gce/, read
2026-12) show, with timestamps that do not move; and nothing the discovery document's
response schemas lack (the emulator checks each answer; this shows the check bites)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from provisioner.sandbox import gcp_discovery
from provisioner.sandbox.gcp_emulator import GcpEmulator

from .conftest import REGION, ZONE, http

PROJECT = "cast-shapes"
BASE = f"/compute/v1/projects/{PROJECT}"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[-+]\d\d:\d\d")

# field -> JSON type, as in the fixtures named
INSTANCE = {"canIpForward": bool, "creationTimestamp": str, "disks": list, "id": str, "kind": str,
            "machineType": str, "metadata": dict, "name": str, "networkInterfaces": list, "scheduling": dict,
            "selfLink": str, "status": str, "tags": dict, "zone": str, "cpuPlatform": str}  # ..._instances.json
ATTACHED_DISK = {"boot": bool, "deviceName": str, "index": int, "kind": str, "mode": str, "source": str,
                 "type": str}
NIC = {"name": str, "network": str, "networkIP": str, "accessConfigs": list}
ACCESS_CONFIG = {"kind": str, "name": str, "natIP": str, "type": str}
OPERATION = {"endTime": str, "id": str, "insertTime": str, "kind": str, "name": str, "operationType": str,
             "progress": int, "selfLink": str, "startTime": str, "status": str, "targetId": str,
             "targetLink": str, "user": str, "zone": str}  # operations_..._instances_post.json
LIST = {"id": str, "items": list, "kind": str, "selfLink": str}  # zones_us-central1-a_instances.json
FIREWALL = {"allowed": list, "creationTimestamp": str, "direction": str, "id": str, "kind": str, "name": str,
            "network": str, "priority": int, "selfLink": str, "targetTags": list}
SUBNETWORK = {"creationTimestamp": str, "gatewayAddress": str, "id": str, "ipCidrRange": str, "kind": str,
              "name": str, "network": str, "region": str, "selfLink": str}
ZONE_KEYS = {"creationTimestamp": str, "description": str, "id": str, "kind": str, "name": str, "region": str,
             "selfLink": str, "status": str}
REGION_KEYS = {"creationTimestamp": str, "description": str, "id": str, "kind": str, "name": str,
               "quotas": list, "selfLink": str, "status": str, "zones": list}
MACHINE_TYPE = {"creationTimestamp": str, "description": str, "guestCpus": int, "id": str, "imageSpaceGb": int,
                "kind": str, "maximumPersistentDisks": int, "maximumPersistentDisksSizeGb": str, "memoryMb": int,
                "name": str, "selfLink": str, "zone": str}
DISK_TYPE = {"creationTimestamp": str, "defaultDiskSizeGb": str, "description": str, "kind": str, "name": str,
             "selfLink": str, "validDiskSize": str, "zone": str}
IMAGE = {"archiveSizeBytes": str, "creationTimestamp": str, "description": str, "diskSizeGb": str, "family": str,
         "guestOsFeatures": list, "id": str, "kind": str, "labelFingerprint": str, "licenses": list, "name": str,
         "rawDisk": dict, "selfLink": str, "sourceType": str, "status": str}
DISK = {"creationTimestamp": str, "id": str, "kind": str, "name": str, "selfLink": str, "sizeGb": str,
        "sourceImage": str, "sourceImageId": str, "status": str, "zone": str}  # aggregated_disks.json


def has_shape(body: dict[str, Any], shape: dict[str, type]) -> list[str]:
    """What `body` lacks or types otherwise, compared with a recorded shape."""
    return [f"{k}: {type(body.get(k)).__name__}" for k, t in shape.items() if not isinstance(body.get(k), t)]


def ok(status_body: tuple[int, Any]) -> Any:
    status, body = status_body
    assert status == 200, body
    return body


def wait(emulator: GcpEmulator, op: dict[str, Any]) -> dict[str, Any]:
    return ok(http(emulator, "POST", op["selfLink"].removeprefix("https://www.googleapis.com") + "/wait"))


@pytest.fixture(scope="module")
def built(emulator: GcpEmulator) -> dict[str, Any]:
    net = wait(emulator, ok(http(emulator, "POST", BASE + "/global/networks", {"name": "shape-net"})))
    sub = wait(emulator, ok(http(emulator, "POST", BASE + f"/regions/{REGION}/subnetworks", {
        "name": "shape-sub", "ipCidrRange": "10.55.0.0/24", "network": net["targetLink"]})))
    fw = wait(emulator, ok(http(emulator, "POST", BASE + "/global/firewalls", {
        "name": "shape-fw", "network": net["targetLink"], "targetTags": ["shape"],
        "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]})))
    insert = ok(http(emulator, "POST", BASE + f"/zones/{ZONE}/instances", {
        "name": "shape-vm", "machineType": f"zones/{ZONE}/machineTypes/e2-small", "tags": {"items": ["shape"]},
        "metadata": {"items": [{"key": "k", "value": "v"}]},
        "disks": [{"boot": True, "autoDelete": True, "initializeParams": {
            "sourceImage": "projects/debian-cloud/global/images/family/debian-12"}}],
        "networkInterfaces": [{"subnetwork": sub["targetLink"], "accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}]}))
    return {"insert": insert, "done": wait(emulator, insert), "subnet": sub, "firewall": fw}


def test_instances_carry_what_the_api_sends(emulator: GcpEmulator, built: dict[str, Any]) -> None:
    time.sleep(emulator.boot_delay)
    inst = ok(http(emulator, "GET", BASE + f"/zones/{ZONE}/instances/shape-vm"))
    assert has_shape(inst, INSTANCE) == [] and inst["status"] == "RUNNING"
    assert inst["machineType"] == (f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{ZONE}/"
                                   "machineTypes/e2-small")
    assert inst["zone"].endswith(f"/compute/v1/projects/{PROJECT}/zones/{ZONE}")
    assert has_shape(inst["disks"][0], ATTACHED_DISK) == [] and "initializeParams" not in inst["disks"][0]
    assert inst["disks"][0]["source"].endswith(f"/zones/{ZONE}/disks/shape-vm")
    assert has_shape(inst["networkInterfaces"][0], NIC) == []
    assert has_shape(inst["networkInterfaces"][0]["accessConfigs"][0], ACCESS_CONFIG) == []
    assert set(inst["metadata"]) == {"kind", "fingerprint", "items"} and inst["metadata"]["kind"] == "compute#metadata"
    assert inst["tags"]["items"] == ["shape"] and inst["tags"]["fingerprint"]
    assert RFC3339.fullmatch(inst["creationTimestamp"])
    time.sleep(0.01)
    assert ok(http(emulator, "GET", BASE + f"/zones/{ZONE}/instances/shape-vm"))["creationTimestamp"] == \
        inst["creationTimestamp"]
    disk = ok(http(emulator, "GET", BASE + f"/zones/{ZONE}/disks/shape-vm"))
    assert has_shape(disk, DISK) == []


def test_operations_and_lists_carry_what_the_api_sends(emulator: GcpEmulator, built: dict[str, Any]) -> None:
    done = built["done"]
    assert has_shape(done, OPERATION) == [] and done["status"] == "DONE"
    inst = ok(http(emulator, "GET", BASE + f"/zones/{ZONE}/instances/shape-vm"))
    assert built["insert"]["targetId"] == done["targetId"] == inst["id"]  # known from the first reply
    assert RFC3339.fullmatch(done["startTime"]) and RFC3339.fullmatch(done["endTime"])
    assert done["startTime"] <= done["endTime"]
    listing = ok(http(emulator, "GET", BASE + f"/zones/{ZONE}/instances"))
    assert has_shape(listing, LIST) == [] and listing["id"] == f"projects/{PROJECT}/zones/{ZONE}/instances"
    aggregated = ok(http(emulator, "GET", BASE + "/aggregated/instances"))
    assert aggregated["id"] == f"projects/{PROJECT}/aggregated/instances"


def test_firewalls_subnetworks_and_the_catalog_carry_what_the_api_sends(
        emulator: GcpEmulator, built: dict[str, Any]) -> None:
    fw = ok(http(emulator, "GET", BASE + "/global/firewalls/shape-fw"))
    sub = ok(http(emulator, "GET", BASE + f"/regions/{REGION}/subnetworks/shape-sub"))
    assert has_shape(fw, FIREWALL) == [] and has_shape(sub, SUBNETWORK) == []
    assert RFC3339.fullmatch(fw["creationTimestamp"]) and RFC3339.fullmatch(sub["creationTimestamp"])
    assert has_shape(ok(http(emulator, "GET", BASE + f"/zones/{ZONE}")), ZONE_KEYS) == []
    assert has_shape(ok(http(emulator, "GET", BASE + f"/regions/{REGION}")), REGION_KEYS) == []
    assert has_shape(ok(http(emulator, "GET", BASE + f"/zones/{ZONE}/machineTypes/e2-standard-2")), MACHINE_TYPE) == []
    assert has_shape(ok(http(emulator, "GET", BASE + f"/zones/{ZONE}/diskTypes/pd-ssd")), DISK_TYPE) == []
    image = ok(http(emulator, "GET", "/compute/v1/projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"))
    assert has_shape(image, IMAGE) == []


def test_the_response_check_catches_a_field_the_api_lacks() -> None:
    doc = gcp_discovery.load()
    method = doc.match("GET", "/compute/v1/projects/p/zones/z/instances/i")
    assert method is not None
    assert doc.check_response(method.method, {"kind": "compute#instance", "name": "i"}) == []
    problems = doc.check_response(method.method, {"name": "i", "diskz": [], "canIpForward": "no"})
    assert any("unknown field 'diskz'" in p for p in problems)
    assert any("canIpForward" in p and "boolean" in p for p in problems)
