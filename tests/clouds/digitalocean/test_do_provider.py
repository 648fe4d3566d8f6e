"""The DigitalOcean provider through the real pydo against the emulator over HTTP."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import replace

import pytest

from provisioner import ipam
from provisioner.clouds import do_tags
from provisioner.clouds.digitalocean import Provider
from provisioner.errors import AuthError, CapacityError, ForeignVmError
from provisioner.plan import firewall_rules
from provisioner.sandbox.do_emulator import PUBLIC_POOL, DigitalOceanEmulator

from ...reports import reports
from .conftest import PEERS, PUBLIC_KEY, REGION, SEEDED_RANGE, build, make_target, public_key_for, raw, vm_requests


def _ours(emulator: DigitalOceanEmulator, cluster_uuid: str) -> dict[str, int]:
    """What the emulator holds of one cluster, counted by kind."""
    uuid_tag = do_tags.uuid_tag_string(cluster_uuid)
    return {
        "droplets": sum(1 for d in emulator.droplets.values() if uuid_tag in d.tags),
        "vpcs": sum(1 for v in emulator.vpcs.values() if cluster_uuid in v.description),
        "firewalls": sum(1 for f in emulator.firewalls.values() if any(cluster_uuid in t for t in f["tags"])),
        "keys": sum(1 for k in emulator.keys.values() if k["name"].endswith(cluster_uuid.replace("-", "")[:8])),
        "tags": sum(1 for t in emulator.tags if cluster_uuid in t),
    }


def test_create_gives_active_droplets_in_the_vpc_behind_the_firewall(emulator, provider):
    target = make_target("alpha")
    net = provider.ensure_network(target)
    provider.ensure_firewall(target)
    provider.ensure_ssh_key(target, PUBLIC_KEY)
    with reports() as said:
        vms = provider.ensure_vms(target, vm_requests("alpha"), PUBLIC_KEY)

    block = ipaddress.IPv4Network(net.network_cidr)
    assert [vm.name for vm in vms] == ["alpha-do-m1", "alpha-do-w1", "alpha-do-w2"]
    assert said[-1] == "3/3 running"  # the count the user watches while the droplets start
    for vm in vms:
        assert vm.state == "active"
        assert ipaddress.IPv4Address(vm.private_ip) in block
        assert ipaddress.IPv4Address(vm.public_ip) in ipaddress.IPv4Network(PUBLIC_POOL)
        assert vm.cluster_uuid == target.cluster.uuid
    assert [vm.role for vm in vms] == ["master", "worker", "worker"]
    # the two workers share size and cloud-init: one create call for both
    assert emulator.calls["POST /v2/droplets"] == 2
    booted = {vm.name: vm for vm in emulator.running_vms()}
    assert booted["alpha-do-w2"].user_data == "#cloud-config\n# worker\n"
    assert booted["alpha-do-w2"].ssh_keys == [PUBLIC_KEY]
    master_fw = next(f for f in emulator.firewalls.values()
                     if f["tags"] == [do_tags.role_target_tag(target.cluster.uuid, "master")])
    assert {(r["protocol"], r["ports"]) for r in master_fw["inbound_rules"]} == {
        ("tcp", "22"), ("tcp", "6443"), ("udp", "51820")}
    assert {r["protocol"] for r in master_fw["outbound_rules"]} == {"tcp", "udp", "icmp"}


def test_overlapping_range_is_picked_around(emulator, provider):
    target = make_target("beta")
    assert target.network_cidr == SEEDED_RANGE  # the plan wanted a block the account uses
    net = provider.ensure_network(target)
    chosen = ipaddress.IPv4Network(net.network_cidr)
    assert not chosen.overlaps(ipaddress.IPv4Network(SEEDED_RANGE))
    assert chosen == ipam.digitalocean_vpc_range([SEEDED_RANGE])  # the first free /20
    assert net.actions and chosen.prefixlen == 20


def test_vpc_range_race_is_picked_again(emulator, provider):
    """Another client takes the chosen block between our listing and our create."""
    target = make_target("race")
    wanted = ipam.digitalocean_vpc_range([SEEDED_RANGE])
    original = provider._vpcs
    stale_once = iter([True])

    def racing_list():
        found = original()
        if next(stale_once, False):  # the competitor creates its VPC just after our listing
            status, _ = raw(emulator, "POST", "/v2/vpcs", {"name": "competitor", "region": REGION,
                                                           "ip_range": str(wanted)})
            assert status == 201
        return found

    provider._vpcs = racing_list
    net = provider.ensure_network(target)
    assert net.network_cidr != str(wanted)
    assert not ipaddress.IPv4Network(net.network_cidr).overlaps(wanted)
    assert emulator.calls["POST /v2/vpcs"] == 3  # ours refused (422 overlap), ours again, theirs


def test_rerun_after_partial_create_adds_only_what_is_missing(emulator, provider):
    target = make_target("gamma")
    emulator.faults.add("quota", next_n=1, match="POST /v2/droplets")
    with pytest.raises(CapacityError):
        build(provider, target, vm_requests("gamma"))
    partial = _ours(emulator, target.cluster.uuid)["droplets"]
    assert 0 < partial < 3

    emulator.calls.clear()
    fresh = Provider(REGION)  # a new process: nothing cached
    fresh.settings = provider.settings
    assert fresh.ensure_network(target).actions == ()
    assert fresh.ensure_firewall(target).actions == ()
    key = public_key_for(target)
    assert fresh.ensure_ssh_key(target, key).actions == ()
    vms = fresh.ensure_vms(target, vm_requests("gamma"), key)
    assert len(vms) == 3 and len({vm.cloud_id for vm in vms}) == 3
    assert emulator.calls["POST /v2/droplets"] == 1
    assert _ours(emulator, target.cluster.uuid) == {"droplets": 3, "vpcs": 1, "firewalls": 2, "keys": 1, "tags": 3}
    # and once more: nothing new at all
    emulator.calls.clear()
    assert fresh.ensure_vms(target, vm_requests("gamma"), key) == vms
    assert not any(route.startswith(("POST", "PUT", "DELETE")) for route in emulator.calls)


def test_teardown_leaves_nothing_and_spares_another_cluster(emulator, provider):
    doomed, kept = make_target("delta"), make_target("epsilon")
    build(provider, doomed, vm_requests("delta"))
    build(provider, kept, vm_requests("epsilon", workers=1))
    kept_before = _ours(emulator, kept.cluster.uuid)
    kept_vms = provider.list_vms(kept.cluster)
    emulator.member_linger_s = 0.3  # deleted droplets stay VPC members for a while

    provider.teardown(doomed)

    assert provider.list_resources(doomed.cluster) == []
    assert _ours(emulator, doomed.cluster.uuid) == {"droplets": 0, "vpcs": 0, "firewalls": 0, "keys": 0, "tags": 0}
    assert emulator.calls["DELETE /v2/vpcs/{id}"] >= 2  # refused while members lingered, then done
    assert _ours(emulator, kept.cluster.uuid) == kept_before
    assert provider.list_vms(kept.cluster) == kept_vms
    assert any(v.ip_range == SEEDED_RANGE for v in emulator.vpcs.values())
    provider.teardown(doomed)  # harmless when nothing is left


def test_untagged_droplet_in_the_vpc_refuses_teardown(emulator, provider):
    target = make_target("zeta")
    build(provider, target, vm_requests("zeta", workers=1))
    vpc_id = next(v.id for v in emulator.vpcs.values() if target.cluster.uuid in v.description)
    status, made = raw(emulator, "POST", "/v2/droplets", {
        "name": "someone-elses-db", "region": REGION, "size": "s-1vcpu-1gb",
        "image": "ubuntu-24-04-x64", "vpc_uuid": vpc_id})
    assert status == 202
    before = provider.list_resources(target.cluster)

    with pytest.raises(ForeignVmError) as refused:
        provider.teardown(target)

    assert refused.value.exit_code == 4
    assert "someone-elses-db" in str(refused.value)
    assert provider.list_resources(target.cluster) == before
    assert made["droplet"]["id"] in emulator.droplets
    assert not any(route.startswith("DELETE") for route in emulator.calls)


def test_throttling_is_survived_honouring_retry_after(emulator, provider):
    target = make_target("eta")
    emulator.retry_after_s = 1
    emulator.faults.add("throttle", next_n=2, match="GET /v2/vpcs")
    started = time.monotonic()
    net = provider.ensure_network(target)
    assert net.network_cidr
    assert time.monotonic() - started >= 2.0  # two 429s, each asking for a second
    assert emulator.calls["GET /v2/vpcs"] == 3
    emulator.retry_after_s = 0
    emulator.faults.add("unavailable", share=0.3)
    build(provider, target, vm_requests("eta"))
    assert len(provider.list_vms(target.cluster)) == 3


def test_slow_droplet_is_awaited_with_one_listing_per_poll(emulator, provider):
    target = make_target("theta")
    provider.ensure_network(target)
    provider.ensure_firewall(target)
    provider.ensure_ssh_key(target, PUBLIC_KEY)
    emulator.slow_boot("theta-do-m1", 0.8)
    emulator.calls.clear()
    started = time.monotonic()
    vms = provider.ensure_vms(target, vm_requests("theta", workers=4), PUBLIC_KEY)
    assert time.monotonic() - started >= 0.8
    assert all(vm.state == "active" and vm.public_ip for vm in vms)
    polls = emulator.calls["GET /v2/droplets"]
    assert 2 <= polls <= 25  # backoff, and one listing per poll for all five droplets
    assert emulator.calls["GET /v2/droplets/{id}"] == 0


def test_droplet_limit_reported_with_region_and_size(emulator, provider):
    target = make_target("iota")
    emulator.droplet_limit = len(emulator.droplets) + 1
    with pytest.raises(CapacityError) as full:
        build(provider, target, vm_requests("iota", masters=0, workers=3))
    message = str(full.value)
    assert REGION in message and "s-2vcpu-4gb" in message and "droplet limit" in message


def test_missing_or_refused_token_is_an_auth_error(emulator, provider, monkeypatch):
    monkeypatch.delenv("DIGITALOCEAN_TOKEN")
    with pytest.raises(AuthError, match="DIGITALOCEAN_TOKEN is not set"):
        Provider(REGION).check_credentials()
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "wrong-token-value")
    emulator.token = "the-right-one"
    with pytest.raises(AuthError, match="401") as refused:
        Provider(REGION).check_credentials()
    assert "wrong-token-value" not in str(refused.value)


def test_firewall_drift_is_repaired(emulator, provider):
    target = make_target("kappa")
    provider.ensure_firewall(target)
    fw = next(f for f in emulator.firewalls.values()
              if f["tags"] == [do_tags.role_target_tag(target.cluster.uuid, "worker")])
    status, _ = raw(emulator, "PUT", f"/v2/firewalls/{fw['id']}", {
        "name": fw["name"], "tags": fw["tags"],
        "inbound_rules": [{"protocol": "tcp", "ports": "3306", "sources": {"addresses": ["0.0.0.0/0"]}}],
        "outbound_rules": fw["outbound_rules"]})
    assert status == 200

    repaired = provider.ensure_firewall(target)

    assert repaired.actions == (f"repair firewall {fw['name']}",)
    rules = {(r["protocol"], r["ports"]) for r in emulator.firewalls[fw["id"]]["inbound_rules"]}
    assert rules == {("tcp", "22"), ("udp", "51820")}  # NodePorts closed unless asked
    assert provider.ensure_firewall(target).actions == ()


def test_wireguard_sources_follow_the_nodes_in_place(emulator, provider):
    target = make_target("kappa2")
    ids = {r.name: r.id for r in provider.ensure_firewall(target).resources}
    for peers in ([*PEERS, "198.18.8.3"], ["198.18.8.3"]):  # a node added, then two removed
        moved = replace(target, firewall={r: firewall_rules(r, ["198.51.100.0/24"], node_ips=peers)
                                          for r in ("master", "worker")})
        done = provider.ensure_firewall(moved)
        assert len(done.actions) == 2 and {r.name: r.id for r in done.resources} == ids  # repaired in place
        for fw_id in ids.values():
            inbound = emulator.firewalls[fw_id]["inbound_rules"]
            wireguard = [r for r in inbound if (r["protocol"], r["ports"]) == ("udp", "51820")]
            assert len(wireguard) == 1 and set(wireguard[0]["sources"]["addresses"]) == {f"{ip}/32" for ip in peers}
    assert provider.ensure_firewall(moved).actions == ()


def test_dry_run_changes_nothing(emulator, provider):
    target = make_target("lambda")
    planned = provider.ensure_network(target, dry_run=True)
    assert planned.actions and planned.network_cidr
    assert provider.ensure_firewall(target, dry_run=True).actions
    assert provider.ensure_ssh_key(target, PUBLIC_KEY, dry_run=True).actions
    assert not any(route.startswith(("POST", "PUT", "DELETE")) for route in emulator.calls)
