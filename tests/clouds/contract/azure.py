"""Azure under the contract: the Azure SDKs against the Azure emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from provisioner.clouds import azure_build as build
from provisioner.clouds.azure import Provider
from provisioner.clouds.base import CloudTarget
from provisioner.sandbox.azure_emulator import AzureEmulator

from ...conftest import cloud_target
from .backend import FAST, Backend

IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}


class Azure(Backend):
    name = "azure"
    sizes = {"master": "Standard_D2s_v5", "worker": "Standard_B2s"}
    unset = ("AZURE_SUBSCRIPTION_ID",)

    @contextmanager
    def start(self) -> Iterator[None]:
        emulator = AzureEmulator(lro_polls=2, retry_after=0, throttle_retry_after=1, page_size=3).start()
        self.emulator = emulator
        self.env = {"CAST_AZURE_ENDPOINT": emulator.url}
        self.watch(emulator)
        try:
            yield
        finally:
            emulator.stop()

    def reset(self) -> None:
        self.emulator.faults.clear()
        self.emulator.errors.clear()
        super().reset()

    def check(self) -> None:
        assert list(self.emulator.errors) == [], "requests violated the Azure REST specifications"

    def provider(self) -> Provider:
        p = Provider("eastus", "1")
        p.settings = FAST
        return p

    def target(self, name: str) -> CloudTarget:
        return cloud_target("eastus", "1", "10.20.0.0/16", "10.20.1.0/24", IMAGE, name=name)

    def add_foreign_vm(self, provider: Any, target: CloudTarget) -> Callable[[], None]:
        net, compute = provider.session.network, provider.session.compute
        group = build.group_name(target.cluster)
        subnet_id = provider.subnet_id(group, target.cluster)
        other, name = {"owner": "someone-else"}, "stranger"
        pip = net.public_ip_addresses.begin_create_or_update(group, f"{name}-ip",
                                                             build.public_ip("eastus", other, None)).result()
        nsg = provider.nsgs_of(group, target.cluster)["worker"]
        nic = net.network_interfaces.begin_create_or_update(
            group, f"{name}-nic", build.network_interface("eastus", other, subnet_id, pip.id, nsg.id)).result()
        model = build.virtual_machine("eastus", None, other, name, "Standard_B2s", target.image, "#cloud-config\n",
                                      self.public_key(target), nic.id)
        compute.virtual_machines.begin_create_or_update(group, name, model).result()
        return lambda: compute.virtual_machines.begin_delete(group, name).result()
