"""The emulator's answers compared with responses recorded from the real ARM API: the test
fixtures apache-libcloud ships (libcloud/test/compute/fixtures/azure_arm/, read from the
installed package, never copied). Every key a recorded response has must be in the emulator's
answer to the same request, except keys that only echo what that recording's request asked for
(tags, zones, data disks) and fields of retired api-versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provisioner.sandbox.azure_emulator import AzureEmulator

from . import conformance

libcloud = pytest.importorskip("libcloud", reason="apache-libcloud is a test dependency")
FIXTURES = Path(libcloud.__file__).parent / "test" / "compute" / "fixtures" / "azure_arm"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"libcloud's Azure fixtures not found at {FIXTURES}")

ECHOED = ("tags", "zones", "properties.storageProfile.dataDisks.", "properties.networkProfile.networkInterfaces.[].properties")
RETIRED = {"properties.accountType", "properties.ownerId"}  # disks before api-version 2017-03-30
CASES = [  # (fixture, emulator path under the world's group or subscription)
    ("_subscriptions_99999999_resourceGroups_000000_providers_Microsoft_Compute_virtualMachines_test_node_1.json",
     "/providers/Microsoft.Compute/virtualMachines/world-vm?api-version=2025-04-01"),
    ("_subscriptions_99999999_resourceGroups_000000_providers_Microsoft_Compute_virtualMachines_test_node_1_"
     "InstanceView.json", "/providers/Microsoft.Compute/virtualMachines/world-vm/instanceView?api-version=2025-04-01"),
    ("_subscriptions_99999999_resourceGroups_000000_providers_Microsoft_Network_networkInterfaces_test_node_1_nic.json",
     "/providers/Microsoft.Network/networkInterfaces/world-nic?api-version=2024-10-01"),
    ("_subscriptions_99999999_resourceGroups_000000_providers_Microsoft_Compute_disks_test_disk_1.json",
     "/providers/Microsoft.Compute/disks/world-disk?api-version=2025-01-02"),
    ("_subscriptions_99999999_resourceGroups_REVIZOR_providers_Microsoft_Network_publicIPAddresses_test_public_ip.json",
     "/providers/Microsoft.Network/publicIPAddresses/world-ip?api-version=2024-10-01"),
    ("_subscriptions_99999999_providers_Microsoft_Compute_locations_eastus_vmSizes.json",
     "!/providers/Microsoft.Compute/locations/eastus/vmSizes?api-version=2025-04-01"),
]


def _paths(node: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            out.add(prefix + key)
            out |= _paths(value, f"{prefix}{key}.")
    elif isinstance(node, list) and node:
        for item in node:
            out |= _paths(item, f"{prefix}[].")
    return out


@pytest.fixture(scope="module")
def world() -> Any:
    with AzureEmulator(lro_polls=0, token=conformance.TOKEN) as emu:
        assert isinstance(emu, AzureEmulator)
        conformance.build_world(emu)
        yield emu


@pytest.mark.parametrize(("fixture", "path"), CASES, ids=[c[0].rsplit("_providers_", 1)[1] for c in CASES])
def test_the_emulator_sends_every_key_arm_sent(world, fixture, path):
    import json

    import requests

    recorded = json.loads((FIXTURES / fixture).read_text())
    base = f"{world.url}/subscriptions/{conformance.SUBSCRIPTION}"
    url = base + path[1:] if path.startswith("!") else f"{base}/resourceGroups/{conformance.GROUP}{path}"
    answer = requests.get(url, headers={"Authorization": f"Bearer {conformance.TOKEN}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    wanted = {p for p in _paths(recorded) if not p.startswith(ECHOED) and p not in RETIRED}
    assert sorted(wanted - _paths(answer.json())) == []
