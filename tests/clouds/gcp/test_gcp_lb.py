"""GCP's load balancer (clouds/gcp_lb) through google-cloud-compute against the emulator over
HTTP; the emulator's load-balancing routes against the compute v1 discovery document (the
conftest fails a test whose requests break it) and the control route's shape; libcloud's GCE
driver on the target-pool kind."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from provisioner.clouds.balancing import BalancerPlan, Forward
from provisioner.clouds.gcp import Provider
from provisioner.clouds.gcp_lb import Balancers, part_name
from provisioner.errors import CloudError
from provisioner.sandbox.gcp_emulator import GcpEmulator
from provisioner.sandbox.pools import DEFAULT_POOLS

from .conftest import REGION, ZONE, build, http, make_target, vm_requests
from .test_gcp_clients import gce  # noqa: F401  (the libcloud driver fixture)

PROJECT = "cast-test"
BASE = f"/compute/v1/projects/{PROJECT}"
MUTATING = ("insert", "delete", "update", "patch", "addInstances", "removeInstances")


@pytest.fixture
def balancers(provider: Provider) -> Balancers:  # provider: the environment pointing at the emulator
    b = Balancers(REGION, ZONE)
    b.transient_budget_s = 10
    b.stall_budget_s = 10
    return b


def cluster(provider: Provider, workers: int = 2) -> tuple[Any, list[Any]]:
    target = make_target()
    vms = build(provider, target, vm_requests("demo", 1, workers))
    return target, [v for v in vms if v.role == "worker"]


def plan_for(workers: list[Any]) -> BalancerPlan:
    return BalancerPlan(backends=tuple(w.name for w in workers))


def control(emulator: GcpEmulator, target: Any) -> list[dict[str, Any]]:
    status, body = http(emulator, "GET", "/_emulator/load-balancers")
    assert status == 200
    return [lb for lb in body if part_name(target.cluster, "bs") in lb["id"]]


def mutations(calls: dict[str, int]) -> dict[str, int]:
    return {route: n for route, n in calls.items() if route.rsplit(".", 1)[-1] in MUTATING}


def test_ensure_makes_the_balancer_with_a_pool_address_and_the_workers(
        provider: Provider, balancers: Balancers, emulator: GcpEmulator) -> None:
    target, workers = cluster(provider)
    made = balancers.ensure_load_balancer(target, plan_for(workers), workers)

    assert made.address and ipaddress.ip_address(made.address) in ipaddress.ip_network(DEFAULT_POOLS["gcp"])
    assert made.backends == ("demo-gcp-w1", "demo-gcp-w2")
    assert sorted(r.kind for r in made.resources) == ["address", "backend-service", "forwarding-rule",
                                                      "health-check", "instance-group"]
    sid, uuid = target.cluster.short_id, target.cluster.uuid
    _, rule = http(emulator, "GET", f"{BASE}/regions/{REGION}/forwardingRules/cast-{sid}-lb-fr")
    assert rule["IPAddress"] == made.address and rule["ports"] == ["80", "443"] and rule["IPProtocol"] == "TCP"
    assert rule["labels"]["cast-cluster-uuid"] == uuid and uuid in rule["description"]
    _, check = http(emulator, "GET", f"{BASE}/regions/{REGION}/healthChecks/cast-{sid}-lb-hc")
    assert check["type"] == "HTTP" and check["httpHealthCheck"]["port"] == 30080
    assert check["httpHealthCheck"]["requestPath"] == "/healthz"
    _, address = http(emulator, "GET", f"{BASE}/regions/{REGION}/addresses/cast-{sid}-lb-ip")
    assert address["status"] == "IN_USE" and address["users"] == [rule["selfLink"]]

    [shown] = control(emulator, target)
    assert shown["cloud"] == "gcp" and shown["address"] == made.address
    assert shown["forwards"] == [[80, 30080], [443, 30443]] and shown["health"] == {"port": 30080, "path": "/healthz"}
    assert sorted(b["name"] for b in shown["backends"]) == [w.cloud_id for w in workers]
    assert sorted(b["private_ip"] for b in shown["backends"]) == sorted(w.private_ip for w in workers)
    assert sorted(b["public_ip"] for b in shown["backends"]) == sorted(w.public_ip for w in workers)


def test_a_second_ensure_changes_nothing(provider: Provider, balancers: Balancers, calls: Any) -> None:
    target, workers = cluster(provider)
    first = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    calls()
    again = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    assert again.actions == () and again.address == first.address and again.backends == first.backends
    assert mutations(calls()) == {}


def test_backends_are_added_and_removed_live(provider: Provider, balancers: Balancers,
                                             emulator: GcpEmulator) -> None:
    target, workers = cluster(provider, workers=3)
    first = balancers.ensure_load_balancer(target, plan_for(workers[:1]), workers[:1])
    assert first.backends == ("demo-gcp-w1",)

    grown = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    assert grown.backends == ("demo-gcp-w1", "demo-gcp-w2", "demo-gcp-w3") and grown.address == first.address
    assert grown.actions == ("add demo-gcp-w2 to the load balancer", "add demo-gcp-w3 to the load balancer")

    shrunk = balancers.ensure_load_balancer(target, plan_for(workers[2:]), workers[2:])
    assert shrunk.backends == ("demo-gcp-w3",)
    assert [b["name"] for b in control(emulator, target)[0]["backends"]] == [workers[2].cloud_id]
    assert balancers.find_load_balancer(target.cluster).backends == ("demo-gcp-w3",)


def test_a_dry_run_says_what_it_would_do_and_changes_nothing(provider: Provider, balancers: Balancers,
                                                             emulator: GcpEmulator, calls: Any) -> None:
    target, workers = cluster(provider)
    calls()
    planned = balancers.ensure_load_balancer(target, plan_for(workers), workers, dry_run=True)
    assert planned.address is None and planned.backends == () and planned.resources == ()
    assert planned.actions[0] == f"reserve address {part_name(target.cluster, 'ip')} in {REGION}"
    assert "add demo-gcp-w2 to the load balancer" in planned.actions
    assert mutations(calls()) == {} and balancers.find_load_balancer(target.cluster) is None

    balancers.ensure_load_balancer(target, plan_for(workers), workers)
    calls()
    shrink = balancers.ensure_load_balancer(target, plan_for(workers[:1]), workers[:1], dry_run=True)
    assert shrink.actions == ("remove demo-gcp-w2 from the load balancer",)
    assert shrink.backends == ("demo-gcp-w1", "demo-gcp-w2")  # still registered: nothing changed
    assert mutations(calls()) == {}


def test_find_and_delete_and_delete_again(provider: Provider, balancers: Balancers, emulator: GcpEmulator) -> None:
    target, workers = cluster(provider, workers=1)
    assert balancers.find_load_balancer(target.cluster) is None
    made = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    found = balancers.find_load_balancer(target.cluster)
    assert found is not None and found.address == made.address and found.backends == ("demo-gcp-w1",)

    balancers.delete_load_balancer(target)
    assert balancers.find_load_balancer(target.cluster) is None and control(emulator, target) == []
    balancers.delete_load_balancer(target)  # nothing left: harmless


def test_teardown_removes_the_balancer_before_the_network(provider: Provider, balancers: Balancers,
                                                          emulator: GcpEmulator) -> None:
    target, workers = cluster(provider, workers=1)
    balancers.ensure_load_balancer(target, plan_for(workers), workers)
    # the instance group holds the network: deleting the network first is refused, as on GCP
    status, body = http(emulator, "DELETE", f"{BASE}/global/networks/cast-{target.cluster.short_id}-net")
    assert status == 400 and body["error"]["errors"][0]["reason"] == "resourceInUseByAnotherResource"

    provider.teardown(target)
    assert provider.list_resources(target.cluster) == [] and balancers.find_load_balancer(target.cluster) is None


def test_a_bad_port_is_refused_with_the_apis_error(provider: Provider, balancers: Balancers) -> None:
    target, workers = cluster(provider, workers=1)
    plan = BalancerPlan(forwards=(Forward(80, 30080), Forward(70000, 30443)), backends=("demo-gcp-w1",))
    with pytest.raises(CloudError, match="Invalid port range"):
        balancers.ensure_load_balancer(target, plan, workers)


def test_the_api_refuses_what_gcp_refuses(emulator: GcpEmulator) -> None:
    regional = f"{BASE}/regions/{REGION}"
    assert http(emulator, "POST", f"{regional}/addresses", {"name": "lb-ip"})[0] == 200
    _, addr = http(emulator, "GET", f"{regional}/addresses/lb-ip")
    status, body = http(emulator, "POST", f"{BASE}/regions/nowhere-1/addresses", {"name": "x"})
    assert status == 400 and "Unknown region" in body["error"]["message"]
    status, body = http(emulator, "POST", f"{regional}/forwardingRules", {
        "name": "fr", "IPAddress": addr["address"], "portRange": "80", "backendService": f"{regional}/backendServices/no"})
    assert status == 400 and body["error"]["errors"][0]["reason"] == "invalid" and "was not found" in body["error"]["message"]
    status, body = http(emulator, "POST", f"{regional}/backendServices", {
        "name": "bs", "loadBalancingScheme": "EXTERNAL", "protocol": "TCP", "healthChecks": []})
    assert status == 400 and "exactly one health check" in body["error"]["message"]
    status, body = http(emulator, "POST", f"{regional}/forwardingRules", {"name": "bad", "portRange": 80})
    assert status == 400 and emulator.violations  # a number where the document says string
    emulator.violations.clear()
    assert http(emulator, "GET", f"{regional}/healthChecks/missing")[0] == 404
    assert http(emulator, "DELETE", f"{regional}/addresses/lb-ip")[0] == 200


def test_a_name_taken_by_a_stranger_is_not_touched(provider: Provider, balancers: Balancers,
                                                   emulator: GcpEmulator) -> None:
    target, workers = cluster(provider, workers=1)
    stranger = {"name": part_name(target.cluster, "ip"), "description": "someone else's"}
    assert http(emulator, "POST", f"{BASE}/regions/{REGION}/addresses", stranger)[0] == 200
    with pytest.raises(CloudError, match="does not carry cluster demo's UUID"):
        balancers.ensure_load_balancer(target, plan_for(workers), workers)
    with pytest.raises(CloudError, match="does not carry"):
        balancers.delete_load_balancer(target)


def test_libcloud_runs_the_target_pool_kind(gce: Any, emulator: GcpEmulator) -> None:  # noqa: F811
    """apache-libcloud's GCE driver (a client nobody here wrote) on the other kind of passthrough
    balancing: legacy HTTP health check, target pool, address, forwarding rule."""
    network = gce.ex_create_network("lb-net", None, mode="custom")
    subnet = gce.ex_create_subnetwork("lb-sub", cidr="10.33.0.0/24", network=network, region=REGION)
    image = gce.ex_get_image_from_family("ubuntu-2404-lts-amd64", ex_project_list=["ubuntu-os-cloud"],
                                         ex_standard_projects=False)
    node = gce.create_node("lb-node", "e2-medium", image, ex_network=network, ex_subnetwork=subnet)
    check = gce.ex_create_healthcheck("lb-hc", path="/healthz", port=30080)
    pool = gce.ex_create_targetpool("lb-pool", region=REGION, healthchecks=[check], nodes=[node])
    address = gce.ex_create_address("lb-ip", region=REGION)
    rule = gce.ex_create_forwarding_rule("lb-fr", pool, region=REGION, protocol="tcp", port_range="80",
                                         address=address)
    assert rule.address == address.address and rule.targetpool.name == "lb-pool"
    assert [r.name for r in gce.ex_list_forwarding_rules(region=REGION)] == ["lb-fr"]
    [listed] = [p for p in gce.ex_list_targetpools(region=REGION) if p.name == "lb-pool"]
    assert [n.name for n in listed.nodes] == ["lb-node"] and listed.healthchecks[0].port == 30080
    assert gce.ex_targetpool_remove_node(pool, node) and gce.ex_get_targetpool("lb-pool", REGION).nodes == []
    shown = [lb for lb in http(emulator, "GET", "/_emulator/load-balancers")[1] if lb["id"].endswith("lb-pool")]
    assert shown == [{"cloud": "gcp", "id": f"projects/cast-clients/regions/{REGION}/targetPools/lb-pool",
                      "address": address.address, "forwards": [[80, 30080]],
                      "health": {"port": 30080, "path": "/healthz"}, "backends": []}]
    assert rule.destroy() and pool.destroy() and check.destroy() and address.destroy()
    assert gce.destroy_node(node) and subnet.destroy() and network.destroy()
    assert emulator.violations == []


@pytest.mark.parametrize("route", ["/_emulator/load-balancers", "/_emulator/dns-zones"])
def test_the_control_routes_want_the_sandbox_token(emulator: GcpEmulator, route: str) -> None:
    import json
    import urllib.error
    import urllib.request

    emulator.control_token = "sandbox-secret"
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(emulator.url + route)
        assert refused.value.code == 401
        request = urllib.request.Request(emulator.url + route, headers={"X-Cast-Sandbox-Token": "sandbox-secret"})
        with urllib.request.urlopen(request) as answered:
            assert answered.status == 200 and isinstance(json.loads(answered.read()), list)
    finally:
        emulator.control_token = None


def test_a_rerun_after_a_crash_and_through_faults_makes_no_duplicate(
        provider: Provider, balancers: Balancers, emulator: GcpEmulator) -> None:
    target, workers = cluster(provider, workers=1)
    balancers._insert_address(target.cluster)  # a run that died after its first create
    emulator.faults.add("unavailable", next_n=1, match="/forwardingRules")  # and a 503 on the way
    made = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    assert not any(a.startswith("reserve address") for a in made.actions)
    _, listed = http(emulator, "GET", f"{BASE}/regions/{REGION}/addresses")
    assert [a["name"] for a in listed["items"] if a["name"].startswith(f"cast-{target.cluster.short_id}")] == [
        part_name(target.cluster, "ip")]
    _, rules = http(emulator, "GET", f"{BASE}/regions/{REGION}/forwardingRules")
    assert [r["IPAddress"] for r in rules["items"] if target.cluster.short_id in r["name"]] == [made.address]
