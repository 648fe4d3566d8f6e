"""reconcile on fake clouds and nodes: the creation graph run with repair and report, and the
clean-up of what carries the cluster's UUID but is not in the spec. A dry run reports the
same findings and writes nothing, on the clouds or in the state."""

from __future__ import annotations

import pytest

from provisioner.errors import HostKeyMismatchFound
from provisioner.plan import FirewallRule

from .conftest import make_spec

STEPS = [(c, s) for c in ("aws", "gcp", "azure", "digitalocean")
         for s in ("strays", "network", "subnet", "firewall", "ssh-key", "vms", "firewall-peers", "user-data")]
STEPS += [("mesh", "drift"), ("mesh", "wireguard"), ("kubernetes", "bootstrap")]


def snapshot(store, world, uuid: str):
    """Everything a reconcile could change: the state (through its own methods) and the clouds."""
    clouds = {c: (dict(a.networks), dict(a.subnets), {k: {r: set(v) for r, v in f.items()}
                                                     for k, f in a.firewalls.items()},
                  dict(a.keys), sorted((vm.name, vm.cloud_id) for vm in a.vms)) for c, a in world.accounts.items()}
    state = (store.clusters(), store.nodes(uuid), store.resources(uuid), store.allocations(uuid, "mesh"),
             [store.last_journal(uuid, c, s) for c, s in STEPS],
             sorted(p.name for p in store.secrets_dir(uuid, create=False).iterdir()))
    return clouds, state


@pytest.fixture
def cluster(engine, store):
    row = engine.create_cluster(make_spec("heal"))
    store.rows.clear()
    return row


def test_nothing_to_do_reports_nothing_and_is_journaled(engine, store, cluster):
    assert engine.reconcile("heal") == []
    ends = {(c, s) for c, s, p in store.phases() if p == "end"}
    assert {("aws", "strays"), ("aws", "network"), ("aws", "vms"), ("mesh", "drift")} <= ends
    assert ("mesh", "wireguard") not in ends  # nothing drifted: the mesh is left alone


def test_each_clouds_vms_are_listed_once_by_a_reconcile_that_recreates_one(engine, store, world, cluster):
    gone = next(vm for vm in world.account("gcp").vms if vm.name == "heal-gcp-w1")
    world.account("gcp").vms.remove(gone)
    world.calls.clear()
    assert "gcp: recreated missing VMs: heal-gcp-w1" in engine.reconcile("heal")
    listed = [cloud for cloud, method in world.calls if method == "list_vms"]
    assert sorted(listed) == sorted(world.accounts)  # the strays step's listing serves the vms step too


def test_a_deleted_vm_is_found_by_a_dry_run_that_writes_nothing_then_recreated(engine, store, world, nodes,
                                                                                cluster):
    gone = next(vm for vm in world.account("azure").vms if vm.name == "heal-az-w1")
    world.account("azure").vms.remove(gone)
    before = snapshot(store, world, cluster.uuid)
    found = engine.reconcile("heal", dry_run=True)
    assert "azure: would recreate missing VMs: heal-az-w1" in found
    assert snapshot(store, world, cluster.uuid) == before and store.rows == []  # nothing written anywhere
    done = engine.reconcile("heal")
    assert "azure: recreated missing VMs: heal-az-w1" in done
    assert [vm.name for vm in world.account("azure").vms] == ["heal-az-w1"]
    assert {s for c, s, p in store.phases() if p == "end"} >= {"firewall-peers", "wireguard"}
    new = next(n for n in store.nodes(cluster.uuid) if n.name == "heal-az-w1")
    assert all(new.wg_public_key in nodes.host(n.name).peers for n in store.nodes(cluster.uuid) if n != new)
    assert engine.reconcile("heal", dry_run=True) == []


def test_a_vm_with_the_clusters_uuid_but_no_node_is_deleted_and_one_without_it_never(engine, store, world,
                                                                                     cluster):
    # as a crash between a VM's create and the state write would leave it
    extra = world.run_vm("gcp", name="heal-gcp-w7", cluster_uuid=cluster.uuid, network=cluster.uuid)
    foreign = world.run_vm("gcp", name="not-ours", cluster_uuid=None, network=cluster.uuid)
    other = world.run_vm("gcp", name="heal-gcp-w8", cluster_uuid="another-cluster", network="another-cluster")
    before = snapshot(store, world, cluster.uuid)
    found = engine.reconcile("heal", dry_run=True)
    assert found == [f"gcp: would delete VMs of nodes not in the spec: heal-gcp-w7 ({extra.cloud_id})"]
    assert snapshot(store, world, cluster.uuid) == before
    assert engine.reconcile("heal") == [f"gcp: deleted VMs of nodes not in the spec: heal-gcp-w7 ({extra.cloud_id})"]
    names = sorted(vm.name for vm in world.account("gcp").vms)
    assert names == sorted(["heal-gcp-w1", foreign.name, other.name])
    assert engine.reconcile("heal") == []


def test_a_node_removed_from_the_state_by_hand_loses_its_vm_and_its_peers(engine, store, world, nodes, cluster):
    row = next(n for n in store.nodes(cluster.uuid) if n.name == "heal-do-w1")
    store.delete_node(cluster.uuid, row.name)
    found = engine.reconcile("heal", dry_run=True)
    assert any(line.startswith("digitalocean: would delete VMs of nodes not in the spec: heal-do-w1") for line in found)
    assert any("stale peer(s)" in line and row.wg_public_key in line for line in found), found
    done = engine.reconcile("heal")
    assert any(line.startswith("digitalocean: deleted VMs of nodes not in the spec: heal-do-w1") for line in done)
    assert any("stale peer(s)" in line and line.endswith(": repaired") for line in done), done
    remaining = [n.name for n in store.nodes(cluster.uuid)]
    assert all(row.wg_public_key not in nodes.host(n).peers for n in remaining)
    # the spec still wants a DigitalOcean worker: a new one, under a new name
    assert sorted(vm.name for vm in world.account("digitalocean").vms) == ["heal-do-w2"]
    new = next(n for n in store.nodes(cluster.uuid) if n.name == "heal-do-w2")
    assert new.status == "meshed" and all(new.wg_public_key in nodes.host(n).peers for n in remaining if n != new.name)
    assert engine.reconcile("heal", dry_run=True) == []


def test_a_firewall_rule_not_in_the_plan_is_reported_and_removed(engine, store, world, cluster):
    rules = world.account("aws").firewalls[cluster.uuid]["worker"]
    hand = FirewallRule("tcp", "9999", ("198.51.100.7/32",), "added by hand")
    rules.add(hand)
    found = engine.reconcile("heal", dry_run=True)
    assert any(line.startswith("aws: firewall worker: remove") for line in found), found
    assert hand in world.account("aws").firewalls[cluster.uuid]["worker"]
    engine.reconcile("heal")
    assert hand not in world.account("aws").firewalls[cluster.uuid]["worker"]


def test_a_peer_added_by_hand_is_removed(engine, store, nodes, cluster):
    nodes.host("heal-aws-m1").peers.add("x" * 43 + "=")
    found = engine.reconcile("heal")
    assert found == [f"mesh: heal-aws-m1: has 1 stale peer(s) {'x' * 43}=: repaired"]
    assert "x" * 43 + "=" not in nodes.host("heal-aws-m1").peers


def test_another_host_key_is_refused_and_nothing_is_done_on_any_node(engine, store, nodes, cluster):
    nodes.host("heal-gcp-w1").host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOtherK"
    nodes.host("heal-aws-m1").peers.clear()
    with pytest.raises(HostKeyMismatchFound) as refused:
        engine.reconcile("heal")
    assert refused.value.nodes == ["heal-gcp-w1"]
    assert nodes.host("heal-aws-m1").peers == set()  # not repaired: nothing done on any node
    assert not store.phases(("mesh", "wireguard"))
