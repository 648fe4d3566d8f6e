"""schemathesis, a tool nobody here wrote, checks the Azure emulator's answers against the Azure
REST API specifications (Swagger 2.0) for every operation the emulator serves (tests/clouds/azure/
conformance.py): status codes, content types and bodies as declared. A bounded run; the longer
one is scripts/schemathesis_azure.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provisioner.sandbox.azure_emulator import AzureEmulator
from provisioner.sandbox.azure_specs import default_specs_dir, specs_missing_reason

from . import conformance

pytest.importorskip("schemathesis", reason="schemathesis is a test dependency (pip install schemathesis)")
pytestmark = pytest.mark.skipif(specs_missing_reason() is not None, reason=specs_missing_reason() or "")


@pytest.fixture
def world() -> Iterator[AzureEmulator]:
    with AzureEmulator(lro_polls=0, token=conformance.TOKEN) as emu:
        assert isinstance(emu, AzureEmulator)
        conformance.build_world(emu)
        yield emu


def test_the_served_operations_are_found_in_the_specifications():
    labels = {op.label for _, op in conformance.served_operations(default_specs_dir())}
    assert "PUT /subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/" \
           "virtualMachines/{vmName}" in labels
    assert "GET /subscriptions/{subscriptionId}/providers/Microsoft.Compute/locations/{location}/vmSizes" in labels
    assert len(labels) >= 40


def test_every_served_read_update_and_action_on_real_resources_conforms(world):
    report = conformance.check_world(world, default_specs_dir())
    assert report.failures == []
    assert report.statuses.get(200, 0) >= 25 and report.statuses.get(202, 0) >= 4  # real bodies were checked
    assert world.errors == []  # and schemathesis' requests fit the specifications


def test_generated_requests_get_conforming_answers(world):
    report = conformance.fuzz(world, default_specs_dir(), examples=3)
    assert report.failures == []
    assert sum(report.calls.values()) >= 100


def test_the_check_catches_a_state_outside_the_enum(world):
    """The check can fail: a network provisioningState the spec does not have is reported."""
    with world.lock:
        for res in world.state.resources.values():
            if res.type == "Microsoft.Network/virtualNetworks":
                res.state = "Creating"
    report = conformance.check_world(world, default_specs_dir())
    assert report.failures and all("Creating" in f for f in report.failures)
