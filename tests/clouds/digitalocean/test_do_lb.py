"""The cluster's DigitalOcean load balancer (clouds/do_lb.py) through the real pydo against the
emulator over HTTP: made with a sandbox pool address in front of exactly the workers, left
alone the second time, following the worker set live, deleted before the VPC."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from dataclasses import replace

import pytest

from provisioner.clouds.balancing import HEALTH_PATH, HTTP_NODEPORT, HTTPS_NODEPORT, BalancerPlan, Forward
from provisioner.clouds.do_client import ApiError
from provisioner.clouds.do_lb import Balancers, member_tag
from provisioner.retry import DeadlineError
from provisioner.sandbox.do_emulator import PUBLIC_POOL, DigitalOceanEmulator
from provisioner.sandbox.emulator import CONTROL_TOKEN_HEADER

from .conftest import REGION, build, make_target, raw, vm_requests
from .test_do_recorded_shapes import _shape_gaps


@pytest.fixture
def balancers(emulator: DigitalOceanEmulator) -> Balancers:
    b = Balancers(REGION)
    b.poll_initial_s = 0.02
    b.poll_max_s = 0.1
    b.api.retry_initial_s = 0.02
    b.api.transient_budget_s = 5.0
    return b


def _cluster(provider, name: str, workers: int = 2):
    target = make_target(name)
    build(provider, target, vm_requests(name, workers=workers))
    vms = provider.list_vms(target.cluster)
    return target, sorted((vm for vm in vms if vm.role == "worker"), key=lambda vm: vm.name)


def _plan(workers) -> BalancerPlan:
    return BalancerPlan(backends=tuple(vm.name for vm in workers))


def _sandbox_view(emulator: DigitalOceanEmulator) -> list[dict]:
    with urllib.request.urlopen(f"{emulator.url}/_emulator/load-balancers", timeout=10) as resp:
        return json.loads(resp.read())


def test_create_puts_a_pool_address_in_front_of_exactly_the_workers(emulator, provider, balancers):
    target, workers = _cluster(provider, "lb1")
    made = balancers.ensure_load_balancer(target, _plan(workers), workers)

    assert made.address is not None and ipaddress.IPv4Address(made.address) in ipaddress.IPv4Network(PUBLIC_POOL)
    assert made.backends == tuple(vm.name for vm in workers)
    assert made.actions[0].startswith("create load balancer")
    (lb,) = emulator.balancers.values()
    assert lb["status"] == "active" and lb["tag"] == member_tag(target.cluster.uuid)
    assert target.cluster.short_id in lb["name"]
    assert lb["vpc_uuid"] == next(v.id for v in emulator.vpcs.values() if target.cluster.uuid in v.description)
    assert [(r["entry_protocol"], r["entry_port"], r["target_port"]) for r in lb["forwarding_rules"]] == [
        ("tcp", 80, HTTP_NODEPORT), ("tcp", 443, HTTPS_NODEPORT)]
    assert (lb["health_check"]["protocol"], lb["health_check"]["port"], lb["health_check"]["path"]) == (
        "http", HTTP_NODEPORT, HEALTH_PATH)
    (shown,) = _sandbox_view(emulator)  # what the sandbox's forwarder serves
    assert shown["address"] == made.address and shown["forwards"] == [[80, 30080], [443, 30443]]
    assert shown["health"] == {"port": 30080, "path": "/healthz"}
    assert sorted(b["name"] for b in shown["backends"]) == list(made.backends)
    assert all(b["private_ip"] and b["public_ip"] for b in shown["backends"])
    masters = [vm.name for vm in provider.list_vms(target.cluster) if vm.role == "master"]
    assert masters and not set(masters) & {b["name"] for b in shown["backends"]}


def test_a_second_ensure_changes_nothing(emulator, provider, balancers):
    target, workers = _cluster(provider, "lb2")
    first = balancers.ensure_load_balancer(target, _plan(workers), workers)
    emulator.clear_calls()
    again = balancers.ensure_load_balancer(target, _plan(workers), workers)
    assert again.actions == () and again.address == first.address and again.backends == first.backends
    writes = {r: n for r, n in emulator.calls.items() if not r.startswith("GET")}
    assert writes == {}
    assert balancers.find_load_balancer(target.cluster) == again


def test_backends_follow_the_worker_set_live(emulator, provider, balancers):
    target, workers = _cluster(provider, "lb3", workers=3)
    made = balancers.ensure_load_balancer(target, _plan(workers[:2]), workers[:2])
    assert made.backends == tuple(vm.name for vm in workers[:2])
    lb_id = made.resources[0].id

    grown = balancers.ensure_load_balancer(target, _plan(workers), workers)  # add-node
    assert grown.backends == tuple(vm.name for vm in workers)
    assert grown.actions == (f"add {workers[2].name} to load balancer {made.resources[0].name}",)
    shrunk = balancers.ensure_load_balancer(target, _plan(workers[1:]), workers[1:])  # remove-node, before it goes
    assert shrunk.backends == tuple(vm.name for vm in workers[1:])
    assert shrunk.resources[0].id == lb_id and shrunk.address == made.address
    (shown,) = _sandbox_view(emulator)
    assert sorted(b["name"] for b in shown["backends"]) == [vm.name for vm in workers[1:]]
    # the worker left the balancer but is still behind its firewall
    left = emulator.droplets[int(workers[0].cloud_id)]
    assert member_tag(target.cluster.uuid) not in left.tags
    assert f"cast-role:worker:{target.cluster.uuid}" in left.tags


def test_drifted_rules_are_repaired_in_place(emulator, provider, balancers):
    target, workers = _cluster(provider, "lb4")
    made = balancers.ensure_load_balancer(target, _plan(workers), workers)
    (lb,) = emulator.balancers.values()
    lb["forwarding_rules"] = lb["forwarding_rules"][:1]  # someone removed the 443 rule
    repaired = balancers.ensure_load_balancer(target, _plan(workers), workers)
    assert repaired.actions and repaired.actions[0].startswith("repair load balancer")
    assert len(emulator.balancers) == 1 and repaired.address == made.address
    assert [r["entry_port"] for r in emulator.balancers[made.resources[0].id]["forwarding_rules"]] == [80, 443]


def test_dry_run_changes_nothing(emulator, provider, balancers):
    target, workers = _cluster(provider, "lb5")
    emulator.clear_calls()
    planned = balancers.ensure_load_balancer(target, _plan(workers), workers, dry_run=True)
    assert planned.address is None and planned.backends == ()
    assert planned.actions[0].startswith(f"create load balancer cast-lb5-{target.cluster.short_id} in {REGION}")
    assert sorted(planned.actions[1:]) == sorted(f"add {vm.name} to load balancer cast-lb5-{target.cluster.short_id}"
                                                 for vm in workers)
    assert not any(not r.startswith("GET") for r in emulator.calls)
    assert emulator.balancers == {} and balancers.find_load_balancer(target.cluster) is None


def test_delete_removes_it_and_is_harmless_when_absent(emulator, provider, balancers):
    target, workers = _cluster(provider, "lb6")
    balancers.delete_load_balancer(target)  # none yet
    balancers.ensure_load_balancer(target, _plan(workers), workers)
    balancers.delete_load_balancer(target)
    assert emulator.balancers == {} and balancers.find_load_balancer(target.cluster) is None
    assert member_tag(target.cluster.uuid) not in emulator.tags
    assert not any(member_tag(target.cluster.uuid) in d.tags for d in emulator.droplets.values())
    balancers.delete_load_balancer(target)


def test_teardown_deletes_the_balancer_before_the_vpc(emulator, provider, balancers):
    target, workers = _cluster(provider, "lb7")
    balancers.ensure_load_balancer(target, _plan(workers), workers)
    provider.teardown(target)  # the VPC refuses deletion (403) while the balancer is in it
    assert emulator.balancers == {}
    assert not any(target.cluster.uuid in v.description for v in emulator.vpcs.values())
    assert not any(target.cluster.uuid in t for t in emulator.tags)


def test_an_unavailable_region_is_refused_with_the_apis_status_and_message(emulator, provider):
    target, workers = _cluster(provider, "lb8")
    elsewhere = Balancers("nyc2")  # takes no new resources
    with pytest.raises(ApiError) as refused:
        elsewhere.ensure_load_balancer(replace(target, region="nyc2"), _plan(workers), workers)
    assert (refused.value.status, refused.value.error_id, refused.value.detail) == (
        422, "unprocessable_entity", "Region is not available")
    assert emulator.balancers == {}


def test_a_bad_forwarding_rule_is_refused_with_the_apis_status_and_message(emulator, provider, balancers):
    target, workers = _cluster(provider, "lb9")
    plan = replace(_plan(workers), forwards=(Forward(80, 0),))
    with pytest.raises(ApiError) as refused:
        balancers.ensure_load_balancer(target, plan, workers)
    assert refused.value.status == 422 and refused.value.error_id == "unprocessable_entity"
    assert "target_port 0" in refused.value.detail
    assert emulator.balancers == {}


def test_another_clusters_workers_are_never_registered(emulator, provider, balancers):
    mine, workers = _cluster(provider, "lba")
    _, theirs = _cluster(provider, "lbb")
    made = balancers.ensure_load_balancer(mine, _plan(workers), workers)
    assert set(made.backends).isdisjoint(vm.name for vm in theirs)
    assert balancers.find_load_balancer(mine.cluster) == replace(made, actions=())


def test_a_balancer_has_every_field_of_the_apis_own_example(emulator, provider, balancers):
    """The response the OpenAPI description gives for a create by tag, field by field."""
    checker = emulator.checker
    if checker is None:
        pytest.skip("DigitalOcean's OpenAPI description is not on this machine")
    example = checker.document["components"]["examples"]["load_balancer_using_tag_response"]["value"]
    target, workers = _cluster(provider, "lbc")
    made = balancers.ensure_load_balancer(target, _plan(workers), workers)
    status, ours = raw(emulator, "GET", f"/v2/load_balancers/{made.resources[0].id}")
    assert status == 200 and _shape_gaps(example, ours) == []
    listed = raw(emulator, "GET", "/v2/load_balancers")[1]
    assert listed["meta"] == {"total": 1} and listed["load_balancers"] == [ours["load_balancer"]]


def test_a_rerun_after_an_interrupted_create_waits_for_the_same_balancer(emulator, provider, balancers):
    """kill -9 right after the create call: the re-run finds the balancer still `new`, makes no
    second one and returns its address once it is active."""
    target, workers = _cluster(provider, "lbd")
    emulator.lb_delay_s = 0.3
    patient = Balancers(REGION)
    patient.poll_initial_s, patient.poll_max_s = 0.02, 0.05
    patient.active_timeout_s = 0.0  # the first run gives up at once: as if it had died
    with pytest.raises(DeadlineError):
        patient.ensure_load_balancer(target, _plan(workers), workers)
    (lb,) = emulator.balancers.values()
    assert lb["status"] == "new"
    again = balancers.ensure_load_balancer(target, _plan(workers), workers)
    assert again.actions == () and again.address and len(emulator.balancers) == 1
    assert again.resources[0].id == lb["id"]


def test_the_sandbox_views_need_the_control_token(emulator):
    emulator.control_token = "the-control-token"
    try:
        for view in ("load-balancers", "dns-zones"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{emulator.url}/_emulator/{view}", timeout=10)
            assert refused.value.code == 401
            request = urllib.request.Request(f"{emulator.url}/_emulator/{view}",
                                             headers={CONTROL_TOKEN_HEADER: "the-control-token"})
            with urllib.request.urlopen(request, timeout=10) as resp:
                assert json.loads(resp.read()) == []
    finally:
        emulator.control_token = None
