"""Every command's flow through the engine, on fake clouds and fake nodes, as an ordinary user:
create, add-node, remove-node, delete, resume after a failed step, dry runs."""

from __future__ import annotations

import pytest

from provisioner.engine import Engine, StepError, kubeconfig_path, kubernetes_state
from provisioner.errors import ForeignVmError, TransientError
from provisioner.nodes.ssh import NodeError
from provisioner.plan import make_plan

from .conftest import REGIONS, make_spec

CLOUD_STEPS = ("network", "subnet", "firewall", "ssh-key", "vms")


def vms(world, cloud: str) -> list[str]:
    return sorted(vm.name for vm in world.account(cloud).vms)


def test_create_runs_every_declared_step_once_in_dependency_order(engine, store, world, nodes):
    row = engine.create_cluster(make_spec("demo"))
    assert row.status == "ready"
    assert all(n.status == "meshed" and n.wg_public_key for n in store.nodes(row.uuid))
    assert vms(world, "aws") == ["demo-aws-m1", "demo-aws-w1"] and vms(world, "digitalocean") == ["demo-do-w1"]
    ends = [(c, s) for c, s, p in store.phases() if p == "end"]
    for cloud in ("aws", "gcp", "azure", "digitalocean"):
        assert [s for c, s in ends if c == cloud and s in CLOUD_STEPS + ("firewall-peers",)] == sorted(
            [*CLOUD_STEPS, "firewall-peers"], key=[s for c, s in ends if c == cloud].index)
        position = {s: ends.index((cloud, s)) for s in (*CLOUD_STEPS, "firewall-peers")}
        assert position["network"] < position["subnet"] < position["vms"]
        assert position["network"] < position["firewall"] < position["vms"]
        assert position["ssh-key"] < position["vms"] < position["firewall-peers"]
        assert position["firewall-peers"] < ends.index(("mesh", "wireguard"))  # every cloud's, before the mesh
        assert position["vms"] < ends.index(("mesh", "nodes")) < ends.index(("mesh", "wireguard"))
    assert ("gcp", "user-data") in ends and ("aws", "user-data") not in ends  # only where the cloud can
    assert ends.index(("mesh", "wireguard")) < ends.index(("mesh", "latency"))
    assert store.phases(("kubernetes", "bootstrap")) == [("kubernetes", "bootstrap", "skip")]
    assert kubernetes_state(store, row.uuid) == "skipped: fake host: no kubelet"
    # every peer knows every other: 5 nodes, 4 peers each
    assert all(len(nodes.host(n.name).peers) == 4 for n in store.nodes(row.uuid))


def test_a_cloud_that_chooses_its_network_block_gets_it_used_by_its_later_steps(engine, store, world):
    row = engine.create_cluster(make_spec("demo"))
    chosen = world.account("digitalocean").networks[row.uuid]
    plan = make_plan(make_spec("demo"), REGIONS)
    assert chosen != plan.cloud("digitalocean").network_cidr  # the cloud chose another block than planned
    assert world.account("digitalocean").subnets[row.uuid] == chosen  # and the later steps used it
    assert world.account("aws").subnets[row.uuid] == plan.cloud("aws").subnet_cidr  # the others, the plan's


def test_running_create_again_changes_nothing(engine, store, world):
    spec = make_spec("demo")
    engine.create_cluster(spec)
    before = {c: list(world.account(c).vms) for c in world.accounts}
    store.rows.clear()
    engine.create_cluster(spec)
    assert {c: list(world.account(c).vms) for c in world.accounts} == before
    details = {(c, s): d for c, s, p, d in store.rows if p == "end" and s in ("network", "subnet", "firewall",
                                                                              "ssh-key")}
    assert details and all(d == "" for d in details.values()), details  # all in place


def test_missing_credentials_stop_create_before_anything_is_made(engine, store, world):
    world.missing_credentials.add("digitalocean")
    with pytest.raises(StepError) as failed:
        engine.create_cluster(make_spec("demo"))
    assert "digitalocean: step credentials failed" in str(failed.value)
    assert "nothing has been changed on any cloud yet" in str(failed.value)
    assert store.cluster("demo") is None
    assert all(not a.networks and not a.vms for a in world.accounts.values())


def test_a_failed_step_stops_what_needs_it_and_a_rerun_continues(engine, store, world):
    world.fail("gcp", "ensure_subnet", TransientError("gcp", "backend error 503"), times=1)
    with pytest.raises(StepError) as failed:
        engine.create_cluster(make_spec("demo"))
    assert str(failed.value).startswith("gcp: step subnet failed: gcp: backend error 503")
    assert "Run the same command again" in str(failed.value)
    assert ("gcp", "subnet", "fail") in store.phases()
    assert vms(world, "gcp") == []  # its VMs need the subnet: not started
    assert vms(world, "aws") == ["demo-aws-m1", "demo-aws-w1"]  # the other clouds went on
    assert not store.phases(("mesh", "wireguard"))  # the mesh needs every cloud's VMs
    assert store.cluster("demo").status != "ready"

    row = engine.create_cluster(make_spec("demo"))
    assert row.status == "ready"
    assert vms(world, "gcp") == ["demo-gcp-w1"] and vms(world, "aws") == ["demo-aws-m1", "demo-aws-w1"]


def test_add_node_makes_the_worker_and_every_peer_knows_it(engine, store, world, nodes):
    row = engine.create_cluster(make_spec("demo"))
    store.rows.clear()
    assert engine.add_node("demo", "gcp", "worker", 1) == ["demo-gcp-w2"]
    assert vms(world, "gcp") == ["demo-gcp-w1", "demo-gcp-w2"]
    built = {c for c, s, p in store.phases() if s == "network"}
    assert built == {"gcp"}  # only the cloud that grows runs its creation steps
    assert {c for c, s, p in store.phases() if s == "firewall-peers" and p == "end"} == {
        "aws", "gcp", "azure", "digitalocean"}  # every cloud lets the new node in
    assert all(len(nodes.host(n.name).peers) == 5 for n in store.nodes(row.uuid))
    assert store.cluster("demo").spec["clouds"]["gcp"]["workers"] == 2


def test_add_node_waits_only_for_the_new_node_and_the_first_master(engine, store, world, nodes):
    row = engine.create_cluster(make_spec("demo"))
    first = min(n.name for n in store.nodes(row.uuid) if n.role == "master")
    nodes.booted.clear()

    engine.add_node("demo", "gcp", "worker", 1)

    assert sorted(nodes.booted) == sorted([first, "demo-gcp-w2"])  # the meshed others are not probed
    keys = {n.name: n.wg_public_key for n in store.nodes(row.uuid)}
    assert all(n.status == "meshed" and keys[n.name] for n in store.nodes(row.uuid))
    for name in keys:
        assert nodes.host(name).peers == {k for other, k in keys.items() if other != name}


def test_remove_node_deletes_its_vm_and_its_peer_everywhere(engine, store, world, nodes):
    row = engine.create_cluster(make_spec("demo"))
    key = next(n.wg_public_key for n in store.nodes(row.uuid) if n.name == "demo-gcp-w1")
    engine.remove_node("demo", "demo-gcp-w1")
    assert vms(world, "gcp") == []
    names = {n.name for n in store.nodes(row.uuid)}
    assert "demo-gcp-w1" not in names
    assert all(key not in nodes.host(n).peers for n in names)
    assert store.cluster("demo").spec["clouds"]["gcp"]["workers"] == 0
    # the name is retired: the next gcp worker is w2
    assert engine.add_node("demo", "gcp", "worker", 1) == ["demo-gcp-w2"]


def test_kubernetes_is_set_up_and_a_removed_node_is_deleted_from_it(engine, store, world, nodes):
    nodes.kubernetes = "v1.31.1"
    row = engine.create_cluster(make_spec("kube", ["aws:1:2"]))
    assert kubernetes_state(store, row.uuid).startswith("ready: v1.31.1 on 3 nodes")
    assert kubeconfig_path(store, row.uuid) is not None
    engine.remove_node("kube", "kube-aws-w2")
    assert nodes.deleted_nodes == ["kube-aws-w2"]


def test_delete_leaves_nothing_and_a_foreign_vm_makes_it_delete_nothing(engine, store, world):
    row = engine.create_cluster(make_spec("demo"))
    stray = world.run_vm("azure", name="someone-elses", cluster_uuid=None, network=row.uuid)
    with pytest.raises(ForeignVmError) as refused:
        engine.delete_cluster("demo")
    assert stray.cloud_id in str(refused.value)
    assert vms(world, "aws") == ["demo-aws-m1", "demo-aws-w1"]  # nothing deleted anywhere
    world.account("azure").vms.remove(stray)
    assert engine.delete_cluster("demo") is True
    assert store.cluster("demo") is None
    for cloud in ("aws", "gcp", "azure", "digitalocean"):
        assert world.open(cloud, "r").list_resources(make_ref(row)) == []
    assert engine.delete_cluster("demo") is False  # twice is harmless


def test_delete_deletes_nothing_before_every_cloud_passed_its_safety_check(store, world, nodes):
    # One cloud slow to open (its SDK's import): the others check and list meanwhile, but no
    # deletion starts anywhere before the slow cloud's check is done; a foreign VM there stops all.
    import time

    def slow_open(name, region, zone=None):
        if name == "gcp":
            time.sleep(0.3)
        return world.open(name, region, zone)

    engine = Engine(store, REGIONS, cloud_factory=slow_open, node_side=nodes.open)
    row = engine.create_cluster(make_spec("demo"))
    world.calls.clear()
    stray = world.run_vm("gcp", name="someone-elses", cluster_uuid=None, network=row.uuid)
    with pytest.raises(ForeignVmError):
        engine.delete_cluster("demo")
    assert not [c for c in world.calls if c[1].startswith("delete")]
    world.account("gcp").vms.remove(stray)
    world.calls.clear()
    assert engine.delete_cluster("demo") is True
    checks = [i for i, (_, method) in enumerate(world.calls) if method == "find_foreign_vms"]
    deletes = [i for i, (_, method) in enumerate(world.calls) if method.startswith("delete")]
    assert len(checks) == 4 and deletes and max(checks) < min(deletes)


def make_ref(row):
    from provisioner.clouds.base import ClusterRef

    return ClusterRef(row.name, row.uuid)


def test_bad_input_to_add_node_writes_nothing(engine, store, world):
    engine.create_cluster(make_spec("demo", ["aws:1:0"]))
    store.rows.clear()
    calls = len(world.calls)
    with pytest.raises(Exception, match="masters are fixed"):
        engine.add_node("demo", "aws", "master", 1)
    with pytest.raises(Exception, match="not offered"):
        Engine(store, REGIONS, cloud_factory=world.open).add_node("demo", "nowhere", "worker", 1)
    assert store.rows == [] and len(world.calls) == calls


def test_the_first_host_keys_user_data_is_taken_back_even_when_the_mesh_fails(engine, store, world, nodes):
    nodes.fail("apply_mesh", "demo-aws-m1", NodeError("demo-aws-m1", "wireguard-go did not start"))
    with pytest.raises(StepError) as failed:
        engine.create_cluster(make_spec("demo"))
    assert str(failed.value).startswith("mesh: step wireguard failed")
    # Every node is booted and its injected host key rotated: the user-data holding that key
    # is no longer served, whatever happens to the mesh.
    assert store.phases(("gcp", "user-data"))[-1] == ("gcp", "user-data", "end")
    gcp = [vm for vm in world.account("gcp").vms if vm.name.startswith("demo-")]
    assert gcp and all(vm.user_data == "" for vm in gcp)


def test_a_node_that_fails_to_boot_fails_the_mesh_step_and_a_rerun_completes(engine, store, world, nodes):
    nodes.fail("wait_booted", "demo-az-w1", NodeError("demo-az-w1", "cloud-init failed while booting"))
    with pytest.raises(StepError) as failed:
        engine.create_cluster(make_spec("demo"))
    # The step that reaches and boots the nodes (while firewall-peers runs) names it; no mesh is tried.
    assert str(failed.value).startswith("mesh: step nodes failed: 1 node(s) failed: node demo-az-w1: cloud-init")
    assert store.phases(("mesh", "nodes"))[-1] == ("mesh", "nodes", "fail")
    assert not store.phases(("mesh", "wireguard"))
    assert not store.phases(("mesh", "latency"))
    made = {c: vms(world, c) for c in world.accounts}
    assert engine.create_cluster(make_spec("demo")).status == "ready"
    assert {c: vms(world, c) for c in world.accounts} == made  # nothing made twice
