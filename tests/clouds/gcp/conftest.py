"""One GCP emulator per test module, reached over HTTP through google-cloud-compute.

Tests isolate by cluster UUID (a fresh one per target). After every test the emulator must
have seen no request that breaks the compute v1 discovery document.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from provisioner.clouds import gcp_sdk, gcp_types
from provisioner.clouds.base import CloudTarget, VmRequest
from provisioner.clouds.gcp import Provider
from provisioner.sandbox.gcp_emulator import GcpEmulator

from ...conftest import PEERS as PEERS  # re-exported: the tests import it from here
from ...conftest import cloud_target
from ...conftest import vm_requests as node_requests

# google-cloud-compute as cast imports it (no package root, only the messages of the services
# called: gcp_sdk, gcp_types), before any test module's `from google.cloud import compute_v1`;
# with the services the catalog tests call besides cast's (test_gcp_catalog).
CATALOG_SERVICES = ("zones", "regions", "machine_types", "images", "disk_types", "disks")
gcp_sdk.install((*gcp_types.SERVICES, *CATALOG_SERVICES))

REGION, ZONE = "us-central1", "us-central1-a"
IMAGE = {"project": "ubuntu-os-cloud", "family": "ubuntu-2404-lts-amd64"}
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNhc3QtdGVzdC1rZXktbm90LXJlYWwtYXQtYWxs cast@test"



@pytest.fixture(scope="module")

def emulator() -> Iterator[GcpEmulator]:
    emu = GcpEmulator(op_delay=(0.03, 0.1), boot_delay=0.05).start()
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def _discovery_clean(emulator: GcpEmulator) -> Iterator[None]:
    """Every request a test makes must be one the real API would accept."""
    yield
    violations = list(emulator.violations)
    emulator.violations.clear()
    emulator.faults.clear()
    emulator.quota_style = "operation"
    assert violations == [], f"requests broke the compute v1 discovery document: {violations}"


@pytest.fixture
def provider(emulator: GcpEmulator, monkeypatch: pytest.MonkeyPatch) -> Provider:
    monkeypatch.setenv("CAST_GCP_ENDPOINT", emulator.url)
    monkeypatch.setenv("CAST_GCP_PROJECT", "cast-test")
    p = Provider(region=REGION, zone=ZONE)
    p.settings = replace(p.settings, stall_budget_s=10, vm_timeout_s=20, poll_initial_s=0.02, poll_max_s=0.2)
    p.transient_budget_s = 10
    return p


def sdk(emulator: GcpEmulator, kind: str) -> Any:
    """A google-cloud-compute client of `kind` on the emulator, with a static bearer token."""
    from google.cloud import compute_v1
    from google.oauth2.credentials import Credentials

    return getattr(compute_v1, kind)(credentials=Credentials(token="test-token"), transport="rest",
                                     client_options={"api_endpoint": emulator.url})


def make_target(name: str = "demo", ssh_cidrs: tuple[str, ...] = ("0.0.0.0/0",)) -> CloudTarget:
    return cloud_target(REGION, ZONE, "10.0.0.0/16", "10.0.0.0/24", IMAGE, name=name, ssh_cidrs=ssh_cidrs)


def vm_requests(cluster: str, masters: int, workers: int) -> list[VmRequest]:
    return node_requests("gcp", cluster, masters, workers, {"master": "e2-standard-2", "worker": "e2-medium"},
                         lambda role, i: f"#cloud-config\nhostname: {cluster}-{role}-{i}\n")


def build(p: Provider, target: CloudTarget, vms: list[VmRequest]) -> list[Any]:
    """The create flow of one cloud: network, subnet, firewall, key, VMs."""
    p.ensure_network(target)
    p.ensure_subnet(target)
    p.ensure_firewall(target)
    p.ensure_ssh_key(target, PUBLIC_KEY)
    return p.ensure_vms(target, vms, PUBLIC_KEY)


def http(emulator: GcpEmulator, method: str, path: str, body: Any = None, *,
         auth: str | None = "Bearer test-token") -> tuple[int, Any]:
    """A raw HTTP call to the emulator (for control routes and deliberately bad requests);
    `auth` is the Authorization header sent (None: none)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    req = urllib.request.Request(emulator.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@pytest.fixture
def calls(emulator: GcpEmulator) -> Callable[[], dict[str, int]]:
    """Reset the call counters now; the returned function reads them and starts afresh."""
    emulator.calls.clear()

    def read_and_reset() -> dict[str, int]:
        with emulator.lock:
            counts = dict(emulator.calls)
            emulator.calls.clear()
        return counts

    return read_and_reset
