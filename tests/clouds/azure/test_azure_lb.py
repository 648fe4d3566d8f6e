"""Azure's load balancer (clouds/azure_lb) through azure-mgmt-network against the emulator over
HTTP; every request checked against loadBalancer.json and the other network specifications
(the conftest fails a test that breaks them); the emulator's refusals and the control route's
shape; a plain ARM REST client (requests) reading what cast made."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from provisioner.clouds.azure import Provider
from provisioner.clouds.azure_lb import Balancers, lb_name, pip_name
from provisioner.clouds.balancing import BalancerPlan, Forward
from provisioner.errors import CloudError
from provisioner.sandbox.azure_emulator import AzureEmulator
from provisioner.sandbox.pools import DEFAULT_POOLS

from .conftest import NET, SUB, arm_call, build_cluster, make_target, raw_network

LB = "Microsoft.Network/loadBalancers"


@pytest.fixture
def balancers(provider: Provider) -> Balancers:
    return Balancers("eastus", "1", provider=provider)


def cluster(provider: Provider, name: str, workers: int = 2) -> tuple[Any, list[Any]]:
    target = make_target(name)
    vms = build_cluster(provider, target, masters=1, workers=workers)
    return target, sorted((v for v in vms if v.role == "worker"), key=lambda v: v.name)


def plan_for(workers: list[Any]) -> BalancerPlan:
    return BalancerPlan(backends=tuple(w.name for w in workers))


def shown(emulator: AzureEmulator, target: Any) -> list[dict[str, Any]]:
    status, body = arm_call(emulator, "GET", "/_emulator/load-balancers")
    assert status == 200
    return [lb for lb in body if f"/loadBalancers/{lb_name(target.cluster)}/" in lb["id"]
            and target.cluster.short_id in lb["id"]]


def mutations(emulator: AzureEmulator) -> list[str]:
    return [r for r in emulator.calls if r.split(" ", 1)[0] in ("PUT", "DELETE", "PATCH", "POST")]


def test_ensure_makes_a_standard_balancer_on_a_pool_address(provider: Provider, balancers: Balancers,
                                                           emulator: AzureEmulator) -> None:
    target, workers = cluster(provider, "lbmake")
    made = balancers.ensure_load_balancer(target, plan_for(workers), workers)

    assert made.address and ipaddress.ip_address(made.address) in ipaddress.ip_network(DEFAULT_POOLS["azure"])
    assert made.backends == ("lbmake-az-w1", "lbmake-az-w2")
    assert [r.kind for r in made.resources] == ["public-ip", "load-balancer"]
    lb = provider.session.network.load_balancers.get(provider.group_of(target.cluster), lb_name(target.cluster))
    assert lb.sku.name == "Standard" and lb.tags["cast-cluster-uuid"] == target.cluster.uuid
    assert sorted((r.frontend_port, r.backend_port, r.protocol) for r in lb.load_balancing_rules) == [
        (80, 30080, "Tcp"), (443, 30443, "Tcp")]
    assert (lb.probes[0].protocol, lb.probes[0].port, lb.probes[0].request_path) == ("Http", 30080, "/healthz")
    members = sorted(c.id.split("/networkInterfaces/")[1].split("/")[0]
                     for c in lb.backend_address_pools[0].backend_ip_configurations)
    assert members == ["lbmake-az-w1-nic", "lbmake-az-w2-nic"]

    [entry] = shown(emulator, target)
    assert entry["cloud"] == "azure" and entry["address"] == made.address
    assert entry["forwards"] == [[80, 30080], [443, 30443]] and entry["health"] == {"port": 30080, "path": "/healthz"}
    assert sorted(b["name"] for b in entry["backends"]) == ["lbmake-az-w1", "lbmake-az-w2"]
    assert sorted(b["private_ip"] for b in entry["backends"]) == sorted(w.private_ip for w in workers)
    assert sorted(b["public_ip"] for b in entry["backends"]) == sorted(w.public_ip for w in workers)


def test_a_second_ensure_changes_nothing(provider: Provider, balancers: Balancers, emulator: AzureEmulator) -> None:
    target, workers = cluster(provider, "lbagain")
    first = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    emulator.clear_calls()
    again = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    assert again.actions == () and again.address == first.address and again.backends == first.backends
    assert mutations(emulator) == []


def test_backends_are_added_and_removed_live(provider: Provider, balancers: Balancers,
                                             emulator: AzureEmulator) -> None:
    target, workers = cluster(provider, "lblive", workers=3)
    first = balancers.ensure_load_balancer(target, plan_for(workers[:1]), workers[:1])
    assert first.backends == ("lblive-az-w1",)
    grown = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    assert grown.actions == ("add lblive-az-w2 to the load balancer", "add lblive-az-w3 to the load balancer")
    assert grown.address == first.address
    balancers.ensure_load_balancer(target, plan_for(workers[1:2]), workers[1:2])
    assert [b["name"] for b in shown(emulator, target)[0]["backends"]] == ["lblive-az-w2"]
    assert balancers.find_load_balancer(target.cluster).backends == ("lblive-az-w2",)


def test_a_dry_run_changes_nothing(provider: Provider, balancers: Balancers, emulator: AzureEmulator) -> None:
    target, workers = cluster(provider, "lbdry")
    emulator.clear_calls()
    planned = balancers.ensure_load_balancer(target, plan_for(workers), workers, dry_run=True)
    assert planned.address is None and planned.resources == ()
    assert planned.actions[:2] == ("create public IP lbdry-lb-ip", "create load balancer lbdry-lb (80->30080, "
                                                                   "443->30443, probe HTTP 30080 /healthz)")
    assert mutations(emulator) == [] and balancers.find_load_balancer(target.cluster) is None

    balancers.ensure_load_balancer(target, plan_for(workers), workers)
    emulator.clear_calls()
    shrink = balancers.ensure_load_balancer(target, plan_for(workers[:1]), workers[:1], dry_run=True)
    assert shrink.actions == ("remove lbdry-az-w2 from the load balancer",)
    assert shrink.backends == ("lbdry-az-w1", "lbdry-az-w2") and mutations(emulator) == []


def test_find_delete_and_delete_again(provider: Provider, balancers: Balancers, emulator: AzureEmulator) -> None:
    target, workers = cluster(provider, "lbgone", workers=1)
    made = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    found = balancers.find_load_balancer(target.cluster)
    assert found is not None and found.address == made.address and found.backends == ("lbgone-az-w1",)

    balancers.delete_load_balancer(target)
    assert balancers.find_load_balancer(target.cluster) is None and shown(emulator, target) == []
    assert provider.list_vms(target.cluster)  # the VMs stay
    balancers.delete_load_balancer(target)  # nothing left: harmless


def test_teardown_lists_the_balancer_and_its_address_and_the_group_takes_them(
        provider: Provider, balancers: Balancers, emulator: AzureEmulator) -> None:
    target, workers = cluster(provider, "lbdown", workers=1)
    balancers.ensure_load_balancer(target, plan_for(workers), workers)
    kinds = {r.kind for r in provider.list_resources(target.cluster)}
    assert {"load-balancer", "public-ip"} <= kinds
    emulator.clear_calls()
    provider.teardown(target)
    deletes = [r for r in emulator.log if r["route"].startswith("DELETE")]
    # One call: deleting the resource group deletes what is in it, the balancer and its address too.
    assert len(deletes) == 1 and "/providers/" not in deletes[0]["route"]
    assert provider.list_resources(target.cluster) == []
    assert balancers.find_load_balancer(target.cluster) is None


def test_a_bad_port_is_refused_with_the_clouds_error(provider: Provider, balancers: Balancers) -> None:
    target, workers = cluster(provider, "lbport", workers=1)
    plan = BalancerPlan(forwards=(Forward(80, 70000),), backends=("lbport-az-w1",))
    with pytest.raises(CloudError, match="InvalidParameter.*out of range"):
        balancers.ensure_load_balancer(target, plan, workers)


def test_the_api_refuses_what_azure_refuses(emulator: AzureEmulator) -> None:
    nic = raw_network(emulator, "lb-raw")
    rg = f"{SUB}/resourceGroups/lb-raw/providers"
    basic = {"location": "eastus", "properties": {"publicIPAllocationMethod": "Static"}}
    assert arm_call(emulator, "PUT", f"{rg}/Microsoft.Network/publicIPAddresses/basic?{NET}", basic)[0] == 201
    lb_id = f"{rg}/{LB}/lb"
    body = {"location": "eastus", "sku": {"name": "Standard"}, "properties": {"frontendIPConfigurations": [
        {"name": "fe", "properties": {"publicIPAddress": {"id": f"{rg}/Microsoft.Network/publicIPAddresses/basic"}}}]}}
    status, error = arm_call(emulator, "PUT", f"{lb_id}?{NET}", body)
    assert status == 400 and error["error"]["code"] == "DifferentSkuLoadBalancerAndPublicIPAddressNotAllowed"

    body["sku"] = {"name": "Basic"}
    body["properties"]["loadBalancingRules"] = [{"name": "r", "properties": {
        "protocol": "Tcp", "frontendPort": 80, "backendPort": 80,
        "frontendIPConfiguration": {"id": f"{lb_id}/frontendIPConfigurations/fe"},
        "backendAddressPool": {"id": f"{lb_id}/backendAddressPools/missing"}}}]
    status, error = arm_call(emulator, "PUT", f"{lb_id}?{NET}", body)
    assert status == 400 and error["error"]["code"] == "InvalidResourceReference"

    status, error = arm_call(emulator, "PUT", f"{nic}?{NET}", {"location": "eastus", "properties": {
        "ipConfigurations": [{"name": "ip", "properties": {
            "subnet": {"id": f"{rg}/Microsoft.Network/virtualNetworks/v/subnets/s"},
            "loadBalancerBackendAddressPools": [{"id": f"{lb_id}/backendAddressPools/nope"}]}}]}})
    assert status == 400 and error["error"]["code"] == "InvalidResourceReference"

    status, _ = arm_call(emulator, "PUT", f"{lb_id}?{NET}", {"location": "eastus", "properties": {"probes": [
        {"name": "p", "properties": {"protocol": "Http", "port": "eighty"}}]}})
    assert status == 400 and emulator.errors  # the specification's types: refused as ARM refuses them
    emulator.errors.clear()

    body["properties"].pop("loadBalancingRules")
    assert arm_call(emulator, "PUT", f"{lb_id}?{NET}", body)[0] == 201
    status, error = arm_call(emulator, "DELETE", f"{rg}/Microsoft.Network/publicIPAddresses/basic?{NET}")
    assert status == 400 and error["error"]["code"] == "PublicIPAddressCannotBeDeleted"


def test_a_name_taken_by_a_stranger_is_not_touched(provider: Provider, balancers: Balancers,
                                                   emulator: AzureEmulator) -> None:
    target, workers = cluster(provider, "lbstranger", workers=1)
    group = provider.group_of(target.cluster)
    stranger = {"location": "eastus", "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"}}
    path = f"{SUB}/resourceGroups/{group}/providers/Microsoft.Network/publicIPAddresses/{pip_name(target.cluster)}"
    assert arm_call(emulator, "PUT", f"{path}?{NET}", stranger)[0] == 201
    with pytest.raises(CloudError, match="does not carry cluster lbstranger's UUID"):
        balancers.ensure_load_balancer(target, plan_for(workers), workers)


def test_a_plain_rest_client_reads_the_balancer(provider: Provider, balancers: Balancers,
                                                emulator: AzureEmulator) -> None:
    """requests, following ARM by hand: list the group's load balancers, read one, read the
    frontend's public IP back-reference."""
    import requests

    target, workers = cluster(provider, "lbrest", workers=1)
    made = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    group = provider.group_of(target.cluster)
    session = requests.Session()
    session.headers["Authorization"] = "Bearer plain-rest"
    listed = session.get(f"{emulator.url}{SUB}/resourceGroups/{group}/providers/{LB}?{NET}", timeout=5).json()
    [lb] = listed["value"]
    front = lb["properties"]["frontendIPConfigurations"][0]
    assert [r["id"].rsplit("/", 1)[1] for r in front["properties"]["loadBalancingRules"]] == ["tcp-80", "tcp-443"]
    pip = session.get(f"{emulator.url}{front['properties']['publicIPAddress']['id']}?{NET}", timeout=5).json()
    assert pip["properties"]["ipAddress"] == made.address and pip["properties"]["ipConfiguration"]["id"] == front["id"]
    missing = session.get(f"{emulator.url}{SUB}/resourceGroups/{group}/providers/{LB}/nope?{NET}", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ResourceNotFound"


@pytest.mark.parametrize("route", ["/_emulator/load-balancers", "/_emulator/dns-zones"])
def test_the_control_routes_want_the_sandbox_token(emulator: AzureEmulator, route: str) -> None:
    import requests

    emulator.control_token = "sandbox-secret"
    try:
        assert requests.get(emulator.url + route, timeout=5).status_code == 401
        answered = requests.get(emulator.url + route, headers={"X-Cast-Sandbox-Token": "sandbox-secret"}, timeout=5)
        assert answered.status_code == 200 and isinstance(answered.json(), list)
    finally:
        emulator.control_token = None


def test_a_rerun_through_a_throttled_call_makes_no_duplicate(provider: Provider, balancers: Balancers,
                                                             emulator: AzureEmulator) -> None:
    target, workers = cluster(provider, "lbrerun", workers=1)
    balancers._put_pip(provider.group_of(target.cluster), target.cluster)  # a run that died after its first PUT
    emulator.faults.add("throttle", next_n=1, match="/loadBalancers/")
    made = balancers.ensure_load_balancer(target, plan_for(workers), workers)
    assert not any(a.startswith("create public IP") for a in made.actions) and made.backends == ("lbrerun-az-w1",)
    group = provider.group_of(target.cluster)
    net = provider.session.network
    assert [p.name for p in net.public_ip_addresses.list(group) if p.name.startswith("lbrerun-lb")] == ["lbrerun-lb-ip"]
    assert [lb.name for lb in net.load_balancers.list(group)] == ["lbrerun-lb"]
