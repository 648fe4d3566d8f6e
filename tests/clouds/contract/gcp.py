"""GCP under the contract: google-cloud-compute over REST against the GCP emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from provisioner.clouds.base import CloudTarget
from provisioner.clouds.gcp import Provider
from provisioner.sandbox.gcp_emulator import GcpEmulator

from ...conftest import cloud_target
from .backend import FAST, Backend

REGION, ZONE, PROJECT = "us-central1", "us-central1-a", "cast-contract"
IMAGE = {"project": "ubuntu-os-cloud", "family": "ubuntu-2404-lts-amd64"}


class Gcp(Backend):
    name = "gcp"
    sizes = {"master": "e2-standard-2", "worker": "e2-medium"}
    running = "RUNNING"

    @contextmanager
    def start(self) -> Iterator[None]:
        emulator = GcpEmulator(op_delay=(0.01, 0.03), boot_delay=0.05).start()
        self.emulator = emulator
        self.env = {"CAST_GCP_ENDPOINT": emulator.url, "CAST_GCP_PROJECT": PROJECT}
        self.watch(emulator)
        try:
            yield
        finally:
            emulator.stop()

    def reset(self) -> None:
        self.emulator.faults.clear()
        self.emulator.violations.clear()
        super().reset()

    def check(self) -> None:
        assert list(self.emulator.violations) == [], "requests broke the compute v1 discovery document"

    def provider(self) -> Provider:
        p = Provider(region=REGION, zone=ZONE)
        p.settings = FAST
        p.transient_budget_s = 10
        return p

    def target(self, name: str) -> CloudTarget:
        return cloud_target(REGION, ZONE, "10.0.0.0/16", "10.0.0.0/24", IMAGE, name=name)

    def add_foreign_vm(self, provider: Any, target: CloudTarget) -> Callable[[], None]:
        from google.cloud import compute_v1
        from google.oauth2.credentials import Credentials

        client = compute_v1.InstancesClient(credentials=Credentials(token="test-token"), transport="rest",
                                            client_options={"api_endpoint": self.emulator.url})
        subnet = f"projects/{PROJECT}/regions/{REGION}/subnetworks/cast-{target.cluster.short_id}-subnet"
        name = f"stranger-{target.cluster.short_id}"
        client.insert_unary(project=PROJECT, zone=ZONE, instance_resource=compute_v1.Instance(
            name=name, machine_type=f"zones/{ZONE}/machineTypes/e2-small",
            disks=[compute_v1.AttachedDisk(boot=True, initialize_params=compute_v1.AttachedDiskInitializeParams(
                source_image="projects/debian-cloud/global/images/family/debian-12"))],
            network_interfaces=[compute_v1.NetworkInterface(subnetwork=subnet)]))

        def remove() -> None:
            op = client.delete_unary(project=PROJECT, zone=ZONE, instance=name)
            operations = compute_v1.ZoneOperationsClient(credentials=Credentials(token="test-token"), transport="rest",
                                                         client_options={"api_endpoint": self.emulator.url})
            operations.wait(project=PROJECT, zone=ZONE, operation=op.name)

        return remove
