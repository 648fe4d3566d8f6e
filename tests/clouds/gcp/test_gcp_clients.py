"""Clients nobody on this project wrote, against the GCP emulator: google-api-python-client's
discovery client and apache-libcloud's GCE driver each create, list, get and delete an
instance (on a network and subnetwork of their own, from the region map's Ubuntu image
family) and meet one error, as they would on Compute Engine."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.sandbox.gcp_emulator import GcpEmulator

PROJECT = "cast-clients"
REGION, ZONE = "us-central1", "us-central1-a"
FAMILY = ("ubuntu-os-cloud", "ubuntu-2404-lts-amd64")
TOKEN = "third-party-token"


@pytest.fixture(scope="module")
def emulator() -> Iterator[GcpEmulator]:
    """An emulator that accepts only TOKEN (the clients must send it)."""
    emu = GcpEmulator(op_delay=(0.02, 0.05), boot_delay=0.02, token=TOKEN).start()
    yield emu
    emu.stop()


# --- google-api-python-client ------------------------------------------------------------


@pytest.fixture
def compute(emulator: GcpEmulator) -> Any:
    """The discovery client from the bundled (static) compute v1 document; its base URL
    (rootUrl + servicePath) replaced through client_options.api_endpoint."""
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    return build("compute", "v1", credentials=Credentials(token=TOKEN), static_discovery=True,
                 client_options={"api_endpoint": f"{emulator.url}/compute/v1/"}, cache_discovery=False)


def _done(compute: Any, op: dict[str, Any]) -> dict[str, Any]:
    """Wait for an operation the way the client's users do: the scope's operations.wait."""
    while op["status"] != "DONE":
        if "zone" in op:
            op = compute.zoneOperations().wait(project=PROJECT, zone=op["zone"].rsplit("/", 1)[1],
                                               operation=op["name"]).execute()
        elif "region" in op:
            op = compute.regionOperations().wait(project=PROJECT, region=op["region"].rsplit("/", 1)[1],
                                                 operation=op["name"]).execute()
        else:
            op = compute.globalOperations().wait(project=PROJECT, operation=op["name"]).execute()
    assert "error" not in op, op
    return op


def test_discovery_client_scenario(compute: Any, emulator: GcpEmulator) -> None:
    from googleapiclient.errors import HttpError

    image = compute.images().getFromFamily(project=FAMILY[0], family=FAMILY[1]).execute()
    machine = compute.machineTypes().get(project=PROJECT, zone=ZONE, machineType="e2-medium").execute()
    _done(compute, compute.networks().insert(project=PROJECT, body={"name": "gapi-net",
                                                                     "autoCreateSubnetworks": False}).execute())
    _done(compute, compute.subnetworks().insert(project=PROJECT, region=REGION, body={
        "name": "gapi-sub", "ipCidrRange": "10.31.0.0/24", "network": f"projects/{PROJECT}/global/networks/gapi-net"
    }).execute())
    names = [f"gapi-vm-{i}" for i in range(3)]
    for name in names:
        op = compute.instances().insert(project=PROJECT, zone=ZONE, body={
            "name": name, "machineType": machine["selfLink"], "labels": {"scenario": "gapi"},
            "disks": [{"boot": True, "autoDelete": True, "initializeParams": {"sourceImage": image["selfLink"]}}],
            "networkInterfaces": [{"subnetwork": f"regions/{REGION}/subnetworks/gapi-sub",
                                   "accessConfigs": [{"type": "ONE_TO_ONE_NAT"}]}],
        }).execute()
        done = _done(compute, op)
        assert done["targetId"] and done["startTime"] and done["endTime"]

    listed, request = [], compute.instances().list(project=PROJECT, zone=ZONE, maxResults=2,
                                                   filter='labels.scenario = "gapi"')
    while request is not None:
        page = request.execute()
        listed += page.get("items", [])
        request = compute.instances().list_next(request, page)
    assert sorted(i["name"] for i in listed) == names

    got = compute.instances().get(project=PROJECT, zone=ZONE, instance=names[0]).execute()
    assert got["machineType"] == machine["selfLink"] and got["status"] in ("STAGING", "RUNNING")
    assert got["disks"][0]["source"].endswith(f"/zones/{ZONE}/disks/{names[0]}")
    assert got["networkInterfaces"][0]["accessConfigs"][0]["natIP"]

    with pytest.raises(HttpError) as refused:
        compute.instances().insert(project=PROJECT, zone=ZONE, body={
            "name": "gapi-bad", "machineType": f"zones/{ZONE}/machineTypes/e2-doesnotexist",
            "disks": [{"boot": True, "initializeParams": {"sourceImage": image["selfLink"]}}],
            "networkInterfaces": [{"subnetwork": f"regions/{REGION}/subnetworks/gapi-sub"}]}).execute()
    assert refused.value.status_code == 400 and refused.value.error_details[0]["reason"] == "invalid"
    assert "e2-doesnotexist' does not exist in zone" in refused.value.reason

    for name in names:
        _done(compute, compute.instances().delete(project=PROJECT, zone=ZONE, instance=name).execute())
    with pytest.raises(HttpError) as gone:
        compute.instances().get(project=PROJECT, zone=ZONE, instance=names[0]).execute()
    assert gone.value.status_code == 404
    _done(compute, compute.subnetworks().delete(project=PROJECT, region=REGION, subnetwork="gapi-sub").execute())
    _done(compute, compute.networks().delete(project=PROJECT, network="gapi-net").execute())
    assert emulator.violations == []


def test_discovery_client_without_the_token_is_unauthenticated(emulator: GcpEmulator) -> None:
    import httplib2
    from google.auth.exceptions import RefreshError
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build
    from googleapiclient.errors import HttpError

    endpoint = {"api_endpoint": f"{emulator.url}/compute/v1/"}
    bare = build("compute", "v1", http=httplib2.Http(), static_discovery=True, client_options=endpoint,
                 cache_discovery=False)  # no credentials at all: no Authorization header
    with pytest.raises(HttpError) as refused:
        bare.zones().list(project=PROJECT).execute()
    assert refused.value.status_code == 401
    assert refused.value.reason.startswith("Request is missing required authentication credential")
    assert refused.value.error_details[0]["reason"] == "CREDENTIALS_MISSING"  # the ErrorInfo detail

    wrong = build("compute", "v1", credentials=Credentials(token="not-the-token"), static_discovery=True,
                  client_options=endpoint, cache_discovery=False)
    with pytest.raises(RefreshError):  # google-auth answers the 401 by refreshing; a bare token cannot
        wrong.zones().list(project=PROJECT).execute()
    assert emulator.log[-1]["status"] == 401


# --- apache-libcloud -------------------------------------------------------------------------


@pytest.fixture
def gce(emulator: GcpEmulator, tmp_path: Path) -> Any:
    """libcloud's GCE driver on the emulator. What it takes (no patching):
    - credentials: an installed-app client id (auth_type "IA", no key file to parse) and
      `credential_file`, its documented token cache, holding an unexpired access token: the
      driver then never asks Google's OAuth endpoint and sends `Authorization: Bearer <token>`;
    - endpoint: the driver passes `host`/`port` to its connection positionally into the wrong
      parameters (GCEConnection(user_id, key, secure, auth_type, ...) gets host as auth_type),
      so only `secure=False` goes in the constructor; `host`/`port`, the documented public
      attributes of libcloud's Connection, are set afterwards and `connect()` is called again;
    - `datacenter` is left out of the constructor (it would look the zone up before the
      endpoint is set) and `driver.zone` is set after."""
    from libcloud.compute.providers import get_driver
    from libcloud.compute.types import Provider

    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    token_file = tmp_path / "libcloud-token.json"
    token_file.write_text(json.dumps({"access_token": TOKEN, "token_type": "Bearer",
                                      "expire_time": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    driver = get_driver(Provider.GCE)("cast-sandbox.apps.googleusercontent.com", "unused-client-secret",
                                      project=PROJECT, auth_type="IA", credential_file=str(token_file),
                                      secure=False)
    driver.connection.host, driver.connection.port, driver.connection.secure = "127.0.0.1", emulator.port, False
    driver.connection.connect()
    driver.connection.poll_interval = 0.05  # PollingConnection's pause between operation polls (2 s)
    driver.zone = driver.ex_get_zone(ZONE)
    return driver


def test_libcloud_gce_scenario(gce: Any, emulator: GcpEmulator) -> None:
    from libcloud.common.google import InvalidRequestError, ResourceNotFoundError

    assert gce.zone.name == ZONE and gce.ex_get_region(REGION).name == REGION
    image = gce.ex_get_image_from_family(FAMILY[1], ex_project_list=[FAMILY[0]], ex_standard_projects=False)
    assert image.name.startswith("ubuntu-2404-noble-amd64-v")
    network = gce.ex_create_network("lc-net", None, mode="custom")
    subnet = gce.ex_create_subnetwork("lc-sub", cidr="10.32.0.0/24", network=network, region=REGION)
    firewall = gce.ex_create_firewall("lc-fw", [{"IPProtocol": "tcp", "ports": ["22"]}], network=network,
                                      source_ranges=["0.0.0.0/0"], target_tags=["lc"])
    assert firewall.extra["creationTimestamp"]

    nodes = [gce.create_node(f"lc-node-{i}", "e2-medium", image, ex_network=network, ex_subnetwork=subnet,
                             ex_tags=["lc"], ex_metadata={"purpose": "scenario"}) for i in range(2)]
    assert {n.state for n in nodes} <= {"pending", "running"}  # create_node sends diskSizeGb: null
    running = gce.wait_until_running(nodes, wait_period=0.05, timeout=10)
    assert [n.name for n, _ in running] == ["lc-node-0", "lc-node-1"]
    for node in nodes:
        assert node.public_ips and node.private_ips[0].startswith("10.32.0.")
        assert node.size == "e2-medium" and node.extra["tags"] == ["lc"]
        assert node.extra["disks"][0]["boot"] and node.extra["boot_disk"].name == node.name

    assert sorted(n.name for n in gce.list_nodes()) == ["lc-node-0", "lc-node-1"]
    assert gce.ex_get_node("lc-node-0").extra["status"] == "RUNNING"
    assert [v.name for v in gce.list_volumes()] == ["lc-node-0", "lc-node-1"]

    with pytest.raises(ResourceNotFoundError):
        gce.ex_get_size("e2-doesnotexist")
    with pytest.raises(InvalidRequestError, match="cannot be smaller than the image size"):
        gce.create_node("lc-small", "e2-medium", image, ex_network=network, ex_subnetwork=subnet, ex_disk_size=5)

    for node in nodes:
        assert gce.destroy_node(node)
    assert gce.list_nodes() == [] and gce.list_volumes() == []
    assert firewall.destroy() and subnet.destroy() and network.destroy()
    assert emulator.violations == []
