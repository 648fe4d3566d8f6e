"""One DigitalOcean emulator per test module, reached by the real pydo over HTTP on loopback.
Each test starts from a reset emulator (the account's pre-seeded VPC survives the reset)."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from provisioner import ipam
from provisioner.clouds.base import CloudTarget, VmRequest
from provisioner.clouds.digitalocean import Provider
from provisioner.sandbox.do_emulator import DigitalOceanEmulator

from ...conftest import PEERS as PEERS  # re-exported: the tests import it from here
from ...conftest import cloud_target
from ...conftest import vm_requests as node_requests

REGION = "nyc1"
TOKEN = "sandbox-token-not-a-secret"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc2YXN0LXRlc3Qta2V5LW1hdGVyaWFsLTAxMjM0NTY3 cast"


def public_key_for(target: CloudTarget) -> str:
    """A public key of the cluster's own (each cluster has its own key pair)."""
    blob = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + uuid.UUID(target.cluster.uuid).bytes * 2)
    return f"ssh-ed25519 {blob.decode()} cast-{target.cluster.name}"
# The account already has a VPC on the block the address plan would hand out first.
SEEDED_RANGE = str(ipam.digitalocean_vpc_range([]))


@pytest.fixture(scope="module")
def emulator() -> Iterator[DigitalOceanEmulator]:
    em = DigitalOceanEmulator(account_vpcs=[("default-nyc1", REGION, SEEDED_RANGE)], droplet_limit=1000)
    em.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAST_DIGITALOCEAN_ENDPOINT", em.url)
        mp.setenv("DIGITALOCEAN_TOKEN", TOKEN)
        yield em
    em.stop()


@pytest.fixture(autouse=True)
def fresh(emulator: DigitalOceanEmulator) -> Iterator[None]:
    """A reset emulator for each test; afterwards no request may have broken the OpenAPI
    description, nor sent a body property it does not know (which the API would ignore)."""
    emulator.reset()
    emulator.boot_delay_s = 0.05
    emulator.member_linger_s = 0.05
    emulator.droplet_limit = 1000
    emulator.retry_after_s = 0
    emulator.token = None
    yield
    assert emulator.errors == [], "requests broke DigitalOcean's OpenAPI description"
    assert emulator.unknown_properties == [], "requests sent properties DigitalOcean's description does not know"


@pytest.fixture
def provider(emulator: DigitalOceanEmulator) -> Provider:
    p = Provider(REGION)
    p.settings = replace(p.settings, poll_initial_s=0.02, poll_max_s=0.1, stall_budget_s=10.0)
    p.api.retry_initial_s = 0.02
    p.api.retry_max_s = 0.1
    p.api.transient_budget_s = 10.0
    return p


def make_target(name: str) -> CloudTarget:
    """A cluster's target on DigitalOcean with the plan's firewall rules; its network is what
    a plan made without the account's ranges would want."""
    return cloud_target(REGION, None, SEEDED_RANGE, SEEDED_RANGE, {"slug": "ubuntu-24-04-x64"}, name=name,
                        ssh_cidrs=["198.51.100.0/24"])


def vm_requests(name: str, masters: int = 1, workers: int = 2) -> list[VmRequest]:
    """Masters and workers; nodes of one role share their cloud-init text."""
    return node_requests("digitalocean", name, masters, workers, {"master": "s-2vcpu-8gb-amd", "worker": "s-2vcpu-4gb"})


def build(provider: Provider, target: CloudTarget, vms: list[VmRequest]) -> None:
    """Every ensure step, in the order the engine runs them."""
    provider.ensure_network(target)
    provider.ensure_subnet(target)
    provider.ensure_firewall(target)
    provider.ensure_ssh_key(target, public_key_for(target))
    provider.ensure_vms(target, vms, public_key_for(target))


def raw(emulator: DigitalOceanEmulator, method: str, path: str, body: Any = None,
        token: str = TOKEN) -> tuple[int, Any]:
    """A request to the emulator without pydo: what another tool (or a user) would send."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{emulator.url}{path}", data=data, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            payload = resp.read()
            return resp.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
