"""Fixtures for the real-boot tests: the guest image (provisioner/sandbox/vm_image.py, built on
first use and cached in $CAST_VM_IMAGE_CACHE, default /var/tmp/cast-vm-images), the accelerator
(KVM only when a tiny guest really runs under it), and a private network of local hosts
(provisioner/sandbox/hosts.py) whose cloud bridges the VMs' taps join. Root only; they skip,
saying why, where QEMU or the image tools are missing.

Tests use 198.19.1.0/24 (a /26 per cloud), never the sandbox's pools nor tests/nodes' range."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provisioner.keys import KeyPair, new_ed25519

GROUPS = {"aws": "198.19.1.0/26", "gcp": "198.19.1.64/26"}
DELAY_MS = 6.0  # round trip between the two clouds' bridges, as the sandbox's delay lines add
CACHE = Path(os.environ.get("CAST_VM_IMAGE_CACHE", "/var/tmp/cast-vm-images"))


def _skip_reason() -> str | None:
    from provisioner.sandbox import vm_guest, vm_image
    from provisioner.sandbox.hosts import require_support

    if os.geteuid() != 0:
        return "real boots need root (network namespaces, tap devices, mmdebstrap)"
    missing = vm_image.missing_tools() + vm_guest.missing_tools()
    if missing:
        return f"real boots need {', '.join(sorted(set(missing)))} (scripts/setup.sh installs them)"
    return require_support()


@dataclass
class Timeline:
    """When each VM's qemu started, its pinned-key SSH first worked, and its marker appeared."""

    rows: dict[str, dict[str, float]] = field(default_factory=dict)

    def mark(self, name: str, what: str, at: float | None = None) -> None:
        self.rows.setdefault(name, {})[what] = at if at is not None else time.time()

    def report(self) -> str:
        lines = []
        for name, row in self.rows.items():
            start = row.get("qemu", 0.0)
            parts = [f"{what} +{at - start:.1f}s" for what, at in row.items() if what != "qemu"]
            lines.append(f"{name}: qemu start, " + ", ".join(parts))
        return "\n".join(lines)


@dataclass
class BootLab:
    """The image, the accelerator, the network and the VMs of a test module."""

    image: object
    accel: object
    hosts: object
    vms: object
    client: KeyPair
    key_path: Path
    timeline: Timeline


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BootLab]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from provisioner.sandbox.hosts import LocalHosts
    from provisioner.sandbox.vm_guest import VmHosts, probe_accel
    from provisioner.sandbox.vm_image import ensure_image

    work = tmp_path_factory.mktemp("boot")
    started = time.monotonic()
    image = ensure_image(CACHE)
    print(f"\nguest image {image.key}: ready after {time.monotonic() - started:.1f}s "
          f"(built in {image.build_seconds():.1f}s)")
    accel = probe_accel(image, work)
    print(f"accelerator: {accel.name} ({accel.why})")
    client = new_ed25519("cast-boot-test")
    key_path = work / "client_ed25519"
    key_path.write_bytes(client.private)
    key_path.chmod(0o600)
    with LocalHosts("cbt" + str(os.getpid() % 100000)) as hosts:
        for group, network in GROUPS.items():
            hosts.add_group(group, network)
        hosts.set_delay("aws", "gcp", DELAY_MS)
        vms = VmHosts(hosts, image, accel)
        timeline = Timeline()
        try:
            yield BootLab(image, accel, hosts, vms, client, key_path, timeline)
        finally:
            vms.close()
            print("\nboot timeline:\n" + timeline.report())
