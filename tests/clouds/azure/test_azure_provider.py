"""The Azure provider through the real SDKs against the emulator over HTTP."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import replace

import pytest

from provisioner import tags
from provisioner.clouds import azure_build as build
from provisioner.clouds.azure import Provider
from provisioner.errors import (
    AuthError,
    CapacityError,
    DependencyError,
    ExcessResourcesError,
    ForeignVmError,
    NotFoundError,
    TransientError,
)
from provisioner.plan import firewall_rules
from provisioner.sandbox.azure_emulator import AzureEmulator
from provisioner.sandbox.pools import DEFAULT_POOLS

from ...reports import reports
from .conftest import PEERS, PUBLIC_KEY, build_cluster, make_target, vm_requests

VM = "Microsoft.Compute/virtualMachines"


def _ops_polls(emulator: AzureEmulator, kind: str) -> int:
    return sum(n for route, n in emulator.calls.items() if f"/{kind}/" in route)


def test_create_builds_tagged_network_firewalls_and_running_vms(provider, emulator):
    target = make_target("alpha")
    with reports() as said:
        vms = build_cluster(provider, target, masters=1, workers=2)

    assert [v.name for v in vms] == ["alpha-az-m1", "alpha-az-w1", "alpha-az-w2"]
    assert said[0] == "0/3 created" and "3/3 created" in said and said[-1] == "3/3 running"
    for vm in vms:
        assert vm.state == "running"
        assert ipaddress.ip_address(vm.public_ip) in ipaddress.ip_network(DEFAULT_POOLS["azure"])
        assert ipaddress.ip_address(vm.private_ip) in ipaddress.ip_network(target.subnet_cidr)
        assert vm.cluster_uuid == target.cluster.uuid
        assert vm.extra["zones"] == ["1"]
    assert {v.role for v in vms} == {"master", "worker"}

    booted = {v.name: v for v in emulator.running_vms()}
    for req in vm_requests(target, 1, 2):
        assert booted[req.name].user_data == req.user_data  # cloud-init arrived as base64 customData
        assert booted[req.name].ssh_keys == [PUBLIC_KEY]

    group = build.group_name(target.cluster)
    with emulator.lock:
        owned = [r for r in emulator.state.in_group(group) if r.type not in ("Microsoft.Compute/disks",
                                                                               "Microsoft.Network/virtualNetworks/subnets")]
        assert emulator.state.groups[group.lower()]["tags"][tags.CLUSTER_UUID] == target.cluster.uuid
        assert owned and all(r.body["tags"][tags.CLUSTER_UUID] == target.cluster.uuid for r in owned)
        nsg_rules = {r.name: r.props["securityRules"] for r in owned if r.type.endswith("networkSecurityGroups")}
        nic_nsg = {r.name: r.props["networkSecurityGroup"]["id"].rsplit("/", 1)[1] for r in owned
                   if r.type.endswith("networkInterfaces")}
    master_ports = sorted(r["properties"]["destinationPortRange"] for r in nsg_rules["alpha-master-nsg"])
    assert master_ports == ["22", "51820", "6443"]
    assert nic_nsg == {"alpha-az-m1-nic": "alpha-master-nsg", "alpha-az-w1-nic": "alpha-worker-nsg",
                       "alpha-az-w2-nic": "alpha-worker-nsg"}
    kinds = sorted({r.kind for r in provider.list_resources(target.cluster)})
    assert kinds == ["network-interface", "network-security-group", "public-ip", "resource-group", "subnet", "vm",
                     "vnet"]


def test_second_run_changes_nothing(provider, emulator):
    target = make_target("beta")
    first = build_cluster(provider, target, masters=1, workers=1)
    emulator.calls.clear()

    assert provider.ensure_network(target).actions == ()
    assert provider.ensure_subnet(target).actions == ()
    assert provider.ensure_firewall(target).actions == ()
    again = provider.ensure_vms(target, vm_requests(target, 1, 1), PUBLIC_KEY)

    assert [(v.name, v.public_ip) for v in again] == [(v.name, v.public_ip) for v in first]
    assert not [route for route in emulator.calls if not route.startswith("GET ")]


def test_rerun_after_quota_failure_finishes_without_duplicates(provider, emulator):
    target = make_target("gamma")
    provider.ensure_network(target)
    provider.ensure_subnet(target)
    provider.ensure_firewall(target)
    emulator.faults.add("quota", next_n=1, match="virtualMachines/gamma-az-w1")

    with pytest.raises(CapacityError) as caught:
        provider.ensure_vms(target, vm_requests(target, 1, 1), PUBLIC_KEY)
    assert "eastus" in str(caught.value) and "Standard_B2s" in str(caught.value)

    emulator.calls.clear()
    vms = provider.ensure_vms(target, vm_requests(target, 1, 1), PUBLIC_KEY)
    assert [v.state for v in vms] == ["running", "running"]
    puts = [route for route, n in emulator.calls.items() for _ in range(n) if route.startswith("PUT ")]
    assert puts == ["PUT /subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"]
    with emulator.lock:
        group = emulator.state.in_group(build.group_name(target.cluster))
    per_node = [r.name for r in group if r.type.endswith(("publicIPAddresses", "networkInterfaces", "virtualMachines"))]
    assert sorted(per_node) == sorted(["gamma-az-m1", "gamma-az-m1-nic", "gamma-az-m1-ip",
                                       "gamma-az-w1", "gamma-az-w1-nic", "gamma-az-w1-ip"])


def test_rerun_after_a_crash_mid_create_waits_for_the_unfinished_vm(provider, emulator, monkeypatch):
    target = make_target("omicron")
    provider.ensure_network(target)
    provider.ensure_subnet(target)
    provider.ensure_firewall(target)
    [req] = vm_requests(target, 1, 0)
    group = build.group_name(target.cluster)
    labels = tags.vm_tags(target.cluster.name, target.cluster.uuid, req.role, req.name)
    net, compute = provider.session.network, provider.session.compute
    pip = net.public_ip_addresses.begin_create_or_update(group, "omicron-az-m1-ip",
                                                         build.public_ip("eastus", labels, "1")).result()
    nsg = provider.nsgs_of(group, target.cluster)["master"]
    nic = net.network_interfaces.begin_create_or_update(group, "omicron-az-m1-nic", build.network_interface(
        "eastus", labels, provider.subnet_id(group, target.cluster), pip.id, nsg.id)).result()
    model = build.virtual_machine("eastus", "1", labels, req.name, req.size, target.image, req.user_data,
                                  PUBLIC_KEY, nic.id)
    monkeypatch.setattr(emulator, "abandoned_after_s", 0.3)
    # the first run dies right after sending the VM create: nobody polls its operation
    compute.virtual_machines.begin_create_or_update(group, req.name, model, polling=False)
    emulator.calls.clear()

    [vm] = Provider("eastus", "1").ensure_vms(target, [req], PUBLIC_KEY)  # the re-run: a command of its own

    assert vm.state == "running" and vm.public_ip == pip.ip_address
    assert not [route for route in emulator.calls if route.startswith("PUT ")]


def test_quota_on_vm_create_names_region_and_size(provider, emulator):
    target = make_target("delta")
    provider.ensure_network(target)
    provider.ensure_subnet(target)
    provider.ensure_firewall(target)
    emulator.vm_quota = 0
    try:
        with pytest.raises(CapacityError) as caught:
            provider.ensure_vms(target, vm_requests(target, 1, 0), PUBLIC_KEY)
    finally:
        emulator.vm_quota = None
    message = str(caught.value)
    assert "eastus" in message and "Standard_D2s_v5" in message and "quota" in message.lower()
    assert caught.value.exit_code == 1


def _group_calls(emulator: AzureEmulator) -> list[str]:
    """The requests on a resource group itself (folded routes), one entry per request."""
    return sorted(route for route, n in emulator.calls.items() for _ in range(n)
                  if route.lower().endswith("/resourcegroups/{group}"))


def test_teardown_removes_everything_after_a_long_running_delete(provider, emulator):
    target = make_target("epsilon")
    build_cluster(provider, target, masters=1, workers=1)
    emulator.calls.clear()

    provider.teardown(target)

    # The groups, VMs and VNets the safety check lists; the group's DELETE and one look at it.
    assert _group_calls(emulator) == ["DELETE /subscriptions/{sub}/resourcegroups/{group}",
                                      "GET /subscriptions/{sub}/resourcegroups/{group}"]
    assert _ops_polls(emulator, "operationresults") == 0 and sum(emulator.calls.values()) == 5
    assert provider.list_resources(target.cluster) == []
    assert provider.list_vms(target.cluster) == []
    with emulator.lock:
        assert build.group_name(target.cluster).lower() not in emulator.state.groups
        assert emulator.state.in_group(build.group_name(target.cluster)) == []
    provider.teardown(target)  # harmless when nothing is left


def test_teardown_looks_at_the_group_after_the_deletes_retry_after_until_it_is_gone():
    # The deletion works 1.2 s: its Retry-After says 1 s, the look after it finds the group
    # still deleting, the next one (after backoff) finds it gone.
    with AzureEmulator(lro_polls=0, retry_after=0, op_seconds=1.2) as emu, pytest.MonkeyPatch.context() as mp:
        assert isinstance(emu, AzureEmulator)
        mp.setenv("CAST_AZURE_ENDPOINT", emu.url)
        provider, target = Provider("eastus", "1"), make_target("epsilon2")
        provider.ensure_network(target)
        emu.calls.clear()
        started = time.monotonic()
        provider.teardown(target)
        took = time.monotonic() - started
        with emu.lock:
            assert build.group_name(target.cluster).lower() not in emu.state.groups
        assert emu.errors == []
    assert _group_calls(emu) == ["DELETE /subscriptions/{sub}/resourcegroups/{group}",
                                 *["GET /subscriptions/{sub}/resourcegroups/{group}"] * 2]
    assert 1.2 <= took < 4.0


def test_teardown_leaves_another_cluster_untouched(provider, emulator):
    doomed, kept = make_target("zeta"), make_target("eta")
    build_cluster(provider, doomed, masters=1, workers=0)
    build_cluster(provider, kept, masters=1, workers=1)
    before = sorted(r.id for r in provider.list_resources(kept.cluster))

    provider.teardown(doomed)

    assert sorted(r.id for r in provider.list_resources(kept.cluster)) == before
    assert [v.state for v in provider.list_vms(kept.cluster)] == ["running", "running"]
    provider.teardown(kept)


def _foreign_vm(provider, target, group: str, name: str, nic_group: str | None = None) -> None:
    """A VM on the cluster's subnet that does not carry the cluster's UUID (made with the SDK),
    its NIC and public IP in `nic_group` (default: the VM's)."""
    net, compute = provider.session.network, provider.session.compute
    subnet_id = provider.subnet_id(build.group_name(target.cluster), target.cluster)
    other = {"owner": "someone-else"}
    nic_group = nic_group or group
    pip = net.public_ip_addresses.begin_create_or_update(
        nic_group, f"{name}-ip", build.public_ip("eastus", other, None)).result()
    nsg = provider.nsgs_of(build.group_name(target.cluster), target.cluster)["worker"]
    nic = net.network_interfaces.begin_create_or_update(
        nic_group, f"{name}-nic", build.network_interface("eastus", other, subnet_id, pip.id, nsg.id)).result()
    model = build.virtual_machine("eastus", None, other, name, "Standard_B2s", target.image, "#cloud-config\n",
                                  PUBLIC_KEY, nic.id)
    compute.virtual_machines.begin_create_or_update(group, name, model).result()


@pytest.mark.parametrize("where", ["in-group", "other-group-same-vnet", "other-group-nic-in-group"])
def test_untagged_vm_refuses_teardown_and_deletes_nothing(provider, emulator, where):
    target = make_target("theta")
    build_cluster(provider, target, masters=1, workers=0)
    group = ours = build.group_name(target.cluster)
    if where != "in-group":
        group = f"other-{target.cluster.short_id}"
        provider.session.resources.resource_groups.create_or_update(group, build.resource_group("eastus", {}))
    _foreign_vm(provider, target, group, "stranger", nic_group=ours if where == "other-group-nic-in-group" else None)
    before = sorted(r.id for r in provider.list_resources(target.cluster))

    with pytest.raises(ForeignVmError) as caught:
        provider.teardown(target)

    assert caught.value.exit_code == 4
    assert "stranger" in str(caught.value)
    assert sorted(r.id for r in provider.list_resources(target.cluster)) == before
    assert [v.name for v in provider.list_vms(target.cluster)] == ["theta-az-m1"]


def test_delete_vms_removes_vm_nic_ip_and_disk(provider, emulator):
    target = make_target("iota")
    build_cluster(provider, target, masters=1, workers=2)

    provider.delete_vms(target, ["iota-az-w1", "iota-az-w9"])  # w9 never existed: counts as done

    assert sorted(v.name for v in provider.list_vms(target.cluster)) == ["iota-az-m1", "iota-az-w2"]
    with emulator.lock:
        left = [r.name for r in emulator.state.in_group(build.group_name(target.cluster))]
    assert not [n for n in left if n.startswith("iota-az-w1")]
    assert "iota-az-w2-osdisk" in left and "iota-az-w2-ip" in left


def test_firewall_drift_is_repaired(provider, emulator):
    target = make_target("kappa")
    provider.ensure_network(target)
    provider.ensure_firewall(target)
    group = build.group_name(target.cluster)
    net = provider.session.network
    nsg = net.network_security_groups.get(group, "kappa-master-nsg")
    nsg.security_rules = nsg.security_rules[:1]  # someone removed two rules by hand
    net.network_security_groups.begin_create_or_update(group, nsg.name, nsg).result()

    later = Provider("eastus", "1")  # the next command (reconcile, create again) reads what is there
    actions = later.ensure_firewall(target).actions

    assert actions == ("repair network security group kappa-master-nsg: 2 rules to add, 0 to remove",)
    ports = sorted(r.destination_port_range for r in net.network_security_groups.get(group, nsg.name).security_rules)
    assert ports == ["22", "51820", "6443"]
    assert later.ensure_firewall(target).actions == ()


def test_wireguard_sources_follow_the_nodes_in_place(provider, emulator):
    target = make_target("kappa2")
    provider.ensure_network(target)
    first = {r.name: r.id for r in provider.ensure_firewall(target).resources}
    group = build.group_name(target.cluster)
    net = provider.session.network
    for peers in ([*PEERS, "198.18.8.3"], ["198.18.8.3"]):  # a node added, then two removed
        moved = replace(target, firewall={r: firewall_rules(r, ["0.0.0.0/0"], node_ips=peers)
                                          for r in ("master", "worker")})
        assert len(provider.ensure_firewall(moved).actions) == 2  # both roles' groups repaired
        for role in ("master", "worker"):
            nsg = net.network_security_groups.get(group, f"kappa2-{role}-nsg")
            assert nsg.id == first[nsg.name]  # the same group, its rules updated
            wireguard = [r for r in nsg.security_rules if r.destination_port_range == "51820"]
            sources = set(wireguard[0].source_address_prefixes or [wireguard[0].source_address_prefix])
            assert len(wireguard) == 1 and sources == {f"{ip}/32" for ip in peers}
            assert not any(r.destination_port_range == "30000-32767" for r in nsg.security_rules)
        assert provider.ensure_firewall(moved).actions == ()


def test_throttling_with_retry_after_is_survived(provider, emulator):
    target = make_target("lambda")
    emulator.faults.add("throttle", next_n=2, match="virtualNetworks")
    started = time.monotonic()

    ensured = provider.ensure_network(target)

    # The network step makes the security groups alongside the VNet (they need only the group).
    assert [r.kind for r in ensured.resources] == ["resource-group", "vnet"] + ["network-security-group"] * len(
        target.firewall)
    assert time.monotonic() - started >= 2 * emulator.throttle_retry_after * 0.9  # Retry-After was honoured


def test_throttling_that_never_ends_is_a_transient_error(provider, emulator):
    provider.session._kwargs["retry_total"] = 1  # the SDK's own retries, kept short for the test
    emulator.faults.add("unavailable", share=1.0, match="resourcegroups")

    with pytest.raises(TransientError, match="HTTP 503"):
        provider.check_credentials()


def test_arm_errors_become_cast_errors(provider, emulator):
    target = make_target("nu")
    build_cluster(provider, target, masters=1, workers=0)
    group = build.group_name(target.cluster)
    net, compute = provider.session.network, provider.session.compute

    with pytest.raises(DependencyError, match="NicInUse"):
        provider.lro("delete NIC", lambda: net.network_interfaces.begin_delete(group, "nu-az-m1-nic"))
    with pytest.raises(DependencyError, match="InUseSubnetCannotBeDeleted"):
        provider.lro("delete subnet", lambda: net.subnets.begin_delete(group, "nu-vnet", "nu-subnet"))
    with pytest.raises(NotFoundError):
        provider.call("read VM", lambda: compute.virtual_machines.get(group, "nu-az-m9"))
    with pytest.raises(NotFoundError, match="ResourceGroupNotFound"):
        provider.call("read VM", lambda: compute.virtual_machines.get("no-such-group", "x"))


def test_two_resource_groups_for_one_cluster_are_excess(provider, emulator):
    target = make_target("xi")
    provider.ensure_network(target)
    copy = build.resource_group("eastus", tags.cluster_tags(target.cluster.name, target.cluster.uuid))
    provider.session.resources.resource_groups.create_or_update("xi-leaked", copy)

    with pytest.raises(ExcessResourcesError, match="xi-leaked"):
        provider.ensure_network(target)


def test_dry_run_creates_nothing(provider, emulator):
    target = make_target("mu")
    actions = provider.ensure_network(target, dry_run=True).actions
    assert actions == (f"create resource group {build.group_name(target.cluster)} in eastus",
                       "create virtual network mu-vnet 10.20.0.0/16")
    assert provider.list_resources(target.cluster) == []


def test_missing_subscription_is_an_auth_error(monkeypatch):
    monkeypatch.delenv("CAST_AZURE_ENDPOINT")
    from provisioner.clouds.azure import Provider

    with pytest.raises(AuthError) as caught:
        Provider("eastus").check_credentials()
    assert "AZURE_SUBSCRIPTION_ID" in str(caught.value)


def test_vms_are_made_in_batches_without_polling_each_operation(provider, emulator, monkeypatch):
    target = make_target("batched")
    provider.ensure_network(target)
    provider.ensure_subnet(target)
    provider.ensure_firewall(target)
    monkeypatch.setattr(emulator, "op_seconds", 0.8)  # each create works a while, polled or not: Retry-After 1
    emulator.calls.clear()
    started = time.monotonic()

    vms = provider.ensure_vms(target, vm_requests(target, 1, 5), PUBLIC_KEY)

    took = time.monotonic() - started
    assert [v.state for v in vms] == ["running"] * 6
    assert _ops_polls(emulator, "operations") == 0  # watched in lists, not one operation at a time
    puts = sum(n for route, n in emulator.calls.items() if route.startswith("PUT "))
    assert puts == 3 * 6  # a public IP, a NIC and a VM per node, each sent once
    # Each level (public IPs, NICs) looked at in one list of its kind per round, a few rounds
    # (Retry-After 1 says 0.5 to 1.5 s: the first look at 0.5 s), two pages each here.
    looks = sum(n for route, n in emulator.calls.items()
                if route.startswith("GET ") and route.endswith(("/publicIPAddresses", "/networkInterfaces")))
    assert looks <= 2 * 4 * 2
    assert sum(emulator.calls.values()) - looks <= 3 * 6 + 12  # the PUTs, the VM watch
    assert took >= 3 * 0.8  # three levels, each waited for


def test_a_new_cluster_is_made_without_reading_back_what_the_command_made(provider, emulator):
    target = make_target("fresh")
    emulator.calls.clear()

    vms = build_cluster(provider, target, masters=1, workers=4)

    assert [v.state for v in vms] == ["running"] * 5
    lists = sorted(route.rsplit("/", 1)[1] for route, n in emulator.calls.items() for _ in range(n)
                   if route.startswith("GET ") and "/locations/" not in route)
    # The groups (by UUID), then a look at each level's resources in each kind's own list
    # and the VM watch (the NICs and public IPs with the VMs once): the subnet, the security
    # groups' rules and an empty group's VMs are known, not read.
    assert set(lists) == {"resourcegroups", "virtualNetworks", "networkSecurityGroups", "publicIPAddresses",
                          "networkInterfaces", "virtualMachines"}
    assert lists.count("resourcegroups") == 1

    again = Provider("eastus", "1")  # a later command reads what is there, and finds nothing to do
    assert again.ensure_subnet(target).actions == () and again.ensure_firewall(target).actions == ()


def test_the_inventory_after_a_passed_safety_check_is_what_the_check_listed(provider, emulator):
    target = make_target("checked")
    build_cluster(provider, target, masters=1, workers=1)
    deleting = Provider("eastus", "1")  # delete-cluster's own provider
    assert deleting.find_foreign_vms(target) == []
    emulator.calls.clear()

    inventory = deleting.list_resources(target.cluster)

    assert sum(emulator.calls.values()) == 0
    assert sorted(r.kind for r in inventory) == ["resource-group", "subnet", "vm", "vm", "vnet"]
    assert {r.kind for r in deleting.list_resources(target.cluster)} >= {"public-ip", "network-interface"}  # listed
    provider.teardown(target)


def test_delete_cluster_on_azure_takes_five_calls_after_the_credential_check(provider, emulator):
    target = make_target("five")
    build_cluster(provider, target, masters=1, workers=2)
    deleting = Provider("eastus", "1")  # delete-cluster's own provider
    # the module's other clusters' groups are cast's too: the check lists them, page by page
    cast_made = f"tagName eq '{tags.CLUSTER_UUID}'"
    pages = -(-len(list(deleting.session.resources.resource_groups.list(filter=cast_made))) // 3)
    emulator.calls.clear()

    deleting.check_credentials()  # lists the groups cast made: the safety check's lookup too
    deleting.teardown(target)

    calls = sorted(route.split(" ", 1)[0] + " " + route.rsplit("/", 1)[1]
                   for route, n in emulator.calls.items() for _ in range(n))
    # the groups; the group's VMs and VNets (the safety check); its DELETE and one look at it
    assert calls == sorted(["DELETE {group}", *["GET resourcegroups"] * pages, "GET virtualMachines",
                            "GET virtualNetworks", "GET {group}"])
    with emulator.lock:
        assert build.group_name(target.cluster).lower() not in emulator.state.groups


def test_a_stale_credential_check_is_not_the_safety_checks_lookup(provider, emulator, monkeypatch):
    target = make_target("stale")
    checking = Provider("eastus", "1")
    checking.check_credentials()  # before the cluster's group exists
    build_cluster(provider, target, masters=1, workers=0)
    monkeypatch.setattr("provisioner.clouds.azure.GROUPS_FRESH_S", 0.0)

    assert checking.find_foreign_vms(target) == []
    checking.teardown(target)
    with emulator.lock:
        assert build.group_name(target.cluster).lower() not in emulator.state.groups
