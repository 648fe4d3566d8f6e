"""What clouds/base.py promises, checked the same way on every implementation (see conftest:
IMPLEMENTATIONS): ensures idempotent, dry runs inert, calls blocking until done, errors
mapped, teardown harmless when empty, foreign VMs found and refused."""

from __future__ import annotations

from dataclasses import replace

import pytest

from provisioner.clouds.base import Cloud, CloudTarget, Vm, VmRequest
from provisioner.errors import CastError, CloudError, ForeignVmError
from provisioner.plan import firewall_rules

from ...conftest import PEERS
from .backend import Backend


def infra(backend: Backend, p: Cloud, target: CloudTarget) -> CloudTarget:
    """Network, subnet, firewall and key, as the engine runs them; the target with the network
    the cloud chose, where it chose one."""
    network = p.ensure_network(target)
    if network.network_cidr and network.network_cidr != target.network_cidr:
        target = replace(target, network_cidr=network.network_cidr, subnet_cidr=network.network_cidr)
    p.ensure_subnet(target)
    p.ensure_firewall(target)
    p.ensure_ssh_key(target, backend.public_key(target))
    return target


def build(backend: Backend, p: Cloud, target: CloudTarget, masters: int = 1,
          workers: int = 0) -> tuple[CloudTarget, list[VmRequest], list[Vm]]:
    target = infra(backend, p, target)
    wanted = backend.vm_requests(target, masters, workers)
    return target, wanted, p.ensure_vms(target, wanted, backend.public_key(target))


def test_a_second_run_finds_everything_in_place_and_changes_nothing(backend: Backend) -> None:
    target, wanted, first = build(backend, backend.provider(), backend.target("idem"))
    backend.changes()

    again = backend.provider()  # a new process: nothing remembered
    key = backend.public_key(target)
    assert again.ensure_network(target).actions == ()
    assert again.ensure_subnet(target).actions == ()
    assert again.ensure_firewall(target).actions == ()
    assert again.ensure_ssh_key(target, key).actions == ()
    assert [vm.cloud_id for vm in again.ensure_vms(target, wanted, key)] == [vm.cloud_id for vm in first]
    assert backend.changes() == []
    again.teardown(target)


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(backend: Backend) -> None:
    p, target = backend.provider(), backend.target("dry")
    key = backend.public_key(target)

    said = [*p.ensure_network(target, dry_run=True).actions, *p.ensure_subnet(target, dry_run=True).actions,
            *p.ensure_firewall(target, dry_run=True).actions, *p.ensure_ssh_key(target, key, dry_run=True).actions]

    assert said and any("network" in line.lower() or "vpc" in line.lower() or "group" in line.lower()
                        for line in said)
    assert backend.changes() == []
    assert p.list_resources(target.cluster) == []

    # On a cluster that exists: a firewall that drifted from the plan is reported, not repaired.
    target = infra(backend, p, target)
    drifted = replace(target, firewall={role: firewall_rules(role, ["203.0.113.0/24"], node_ips=PEERS)
                                        for role in target.firewall})
    backend.changes()
    assert p.ensure_firewall(drifted, dry_run=True).actions != ()
    assert backend.changes() == []
    assert p.ensure_firewall(target).actions == ()  # still as the plan had it
    assert p.ensure_firewall(drifted).actions != ()  # and the repair, for real, is the one reported
    assert p.ensure_firewall(drifted).actions == ()
    p.teardown(target)


def test_calls_return_only_once_the_cloud_has_done_the_work(backend: Backend) -> None:
    p = backend.provider()
    target, wanted, vms = build(backend, p, backend.target("block"), masters=1, workers=1)

    assert [vm.name for vm in vms] == [w.name for w in wanted]
    assert all(vm.state == backend.running and vm.public_ip and vm.private_ip for vm in vms), vms
    assert sorted(vm.name for vm in p.list_vms(target.cluster)) == sorted(w.name for w in wanted)

    p.delete_vms(target, [wanted[1].name, "no-such-node"])
    assert [vm.name for vm in p.list_vms(target.cluster)] == [wanted[0].name]

    p.teardown(target)
    assert p.list_resources(target.cluster) == []
    assert p.list_vms(target.cluster) == []


def test_an_unknown_size_is_a_mapped_error_naming_it(backend: Backend) -> None:
    p, target = backend.provider(), backend.target("size")
    target = infra(backend, p, target)
    bad = [replace(backend.vm_requests(target, 1, 0)[0], size=backend.unknown_size)]

    with pytest.raises(CastError) as refused:
        p.ensure_vms(target, bad, backend.public_key(target))

    assert isinstance(refused.value, CloudError), type(refused.value)
    assert type(refused.value).__module__.startswith("provisioner.")  # no SDK exception type escapes
    assert backend.unknown_size in str(refused.value)
    p.teardown(target)
    assert p.list_resources(target.cluster) == []


def test_teardown_and_deletes_are_harmless_when_nothing_exists(backend: Backend) -> None:
    p, target = backend.provider(), backend.target("empty")

    assert p.find_foreign_vms(target) == []
    assert p.list_resources(target.cluster) == []
    p.delete_vms(target, ["empty-nobody-w1"])
    p.teardown(target)
    p.teardown(target)
    assert backend.changes() == []


def test_a_foreign_vm_is_found_and_teardown_refused_until_it_is_gone(backend: Backend) -> None:
    p = backend.provider()
    target, _, _ = build(backend, p, backend.target("foreign"))
    assert p.find_foreign_vms(target) == []
    remove = backend.add_foreign_vm(p, target)

    found = p.find_foreign_vms(target)
    assert len(found) == 1 and found[0].cluster_uuid != target.cluster.uuid
    before = sorted(r.key for r in p.list_resources(target.cluster))
    backend.changes()
    with pytest.raises(ForeignVmError) as refused:
        p.teardown(target)

    assert refused.value.exit_code == 4 and found[0].name in str(refused.value)
    assert backend.changes() == []  # nothing deleted, nothing changed
    assert sorted(r.key for r in p.list_resources(target.cluster)) == before

    remove()
    p.teardown(target)
    assert p.list_resources(target.cluster) == []
