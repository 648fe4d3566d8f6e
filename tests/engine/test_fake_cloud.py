"""The fake keeps what clouds/base.py promises (the same checks the contract suite makes of
the real providers), so engine tests on it mean something."""

from __future__ import annotations

import pytest

from provisioner.clouds.base import CloudTarget, ClusterRef, VmRequest
from provisioner.errors import DependencyError, ExcessResourcesError, ForeignVmError
from provisioner.plan import FirewallRule
from tests.fakes.cloud import FakeWorld

REF = ClusterRef("c", "00000000-0000-4000-8000-000000000002")
RULE = FirewallRule("tcp", "22", ("192.0.2.1/32",), "ssh")
TARGET = CloudTarget(REF, "r", None, "10.1.0.0/16", "10.1.1.0/24", {"worker": (RULE,)}, {})


@pytest.fixture
def cloud():
    return FakeWorld().open("fake", "r")


def build(cloud) -> None:
    cloud.ensure_network(TARGET)
    cloud.ensure_subnet(TARGET)
    cloud.ensure_firewall(TARGET)
    cloud.ensure_ssh_key(TARGET, "ssh-ed25519 AAAA key")


def test_ensures_are_idempotent_and_a_dry_run_changes_nothing(cloud):
    assert cloud.ensure_network(TARGET, dry_run=True).actions and cloud.list_resources(REF) == []
    build(cloud)
    made = cloud.list_resources(REF)
    for ensure in (cloud.ensure_network, cloud.ensure_subnet, cloud.ensure_firewall):
        assert ensure(TARGET).actions == ()
    assert cloud.ensure_ssh_key(TARGET, "ssh-ed25519 AAAA key").actions == ()
    assert cloud.list_resources(REF) == made


def test_order_is_enforced_and_two_vms_of_one_node_are_a_leak(cloud):
    with pytest.raises(DependencyError):
        cloud.ensure_subnet(TARGET)
    build(cloud)
    first = cloud.ensure_vms(TARGET, [VmRequest("c-w1", "worker", "s", "")], "ssh-ed25519 AAAA key")
    again = cloud.ensure_vms(TARGET, [VmRequest("c-w1", "worker", "s", "")], "ssh-ed25519 AAAA key")
    assert first == again
    cloud.world.run_vm("fake", name="c-w1", cluster_uuid=REF.uuid, network=REF.uuid)
    with pytest.raises(ExcessResourcesError):
        cloud.ensure_vms(TARGET, [VmRequest("c-w1", "worker", "s", "")], "ssh-ed25519 AAAA key")


def test_teardown_refuses_foreign_vms_and_is_harmless_when_empty(cloud):
    cloud.teardown(TARGET)
    build(cloud)
    cloud.world.run_vm("fake", name="theirs", cluster_uuid=None, network=REF.uuid)
    with pytest.raises(ForeignVmError):
        cloud.teardown(TARGET)
    assert cloud.list_resources(REF)  # nothing deleted
