"""DigitalOcean under the contract: pydo against the DigitalOcean emulator."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from provisioner import ipam
from provisioner.clouds.base import CloudTarget
from provisioner.clouds.digitalocean import Provider
from provisioner.sandbox.do_emulator import DigitalOceanEmulator

from ...conftest import cloud_target
from .backend import FAST, Backend

REGION, TOKEN = "nyc1", "contract-token-not-a-secret"
SEEDED_RANGE = str(ipam.digitalocean_vpc_range([]))  # the account's VPC holds the first block


class DigitalOcean(Backend):
    name = "digitalocean"
    sizes = {"master": "s-2vcpu-8gb-amd", "worker": "s-2vcpu-4gb"}
    running = "active"

    @contextmanager
    def start(self) -> Iterator[None]:
        emulator = DigitalOceanEmulator(account_vpcs=[("default-nyc1", REGION, SEEDED_RANGE)], droplet_limit=1000)
        emulator.start()
        self.emulator = emulator
        self.env = {"CAST_DIGITALOCEAN_ENDPOINT": emulator.url, "DIGITALOCEAN_TOKEN": TOKEN}
        self.watch(emulator)
        try:
            yield
        finally:
            emulator.stop()

    def reset(self) -> None:
        self.emulator.reset()
        self.emulator.boot_delay_s = 0.05
        self.emulator.member_linger_s = 0.05
        self.emulator.retry_after_s = 0
        super().reset()

    def check(self) -> None:
        assert self.emulator.errors == [], "requests broke DigitalOcean's OpenAPI description"
        assert self.emulator.unknown_properties == [], "requests sent properties the description does not know"

    def provider(self) -> Provider:
        p = Provider(REGION)
        p.settings = replace(FAST, poll_max_s=0.1)
        p.api.retry_initial_s, p.api.retry_max_s, p.api.transient_budget_s = 0.02, 0.1, 10.0
        return p

    def target(self, name: str) -> CloudTarget:
        return cloud_target(REGION, None, SEEDED_RANGE, SEEDED_RANGE, {"slug": "ubuntu-24-04-x64"}, name=name)

    def add_foreign_vm(self, provider: Any, target: CloudTarget) -> Callable[[], None]:
        vpc = next(v for v in self.emulator.vpcs.values() if target.cluster.uuid in v.description)
        made = self._raw("POST", "/v2/droplets", {"name": "someone-elses-db", "region": REGION,
                                                 "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64",
                                                 "vpc_uuid": vpc.id})
        return lambda: self._raw("DELETE", f"/v2/droplets/{made['droplet']['id']}") and None

    def _raw(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.emulator.url}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
            return json.loads(payload) if payload else None
