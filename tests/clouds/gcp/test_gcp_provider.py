"""The GCP provider through google-cloud-compute against the emulator over HTTP."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import replace

import pytest
from google.api_core import exceptions
from google.cloud import compute_v1

from provisioner.clouds.gcp import Provider
from provisioner.clouds.loopback import is_loopback
from provisioner.errors import AuthError, CapacityError, DependencyError, ForeignVmError, TransientError
from provisioner.plan import firewall_rules
from provisioner.sandbox.gcp_emulator import GcpEmulator
from provisioner.sandbox.pools import DEFAULT_POOLS

from ...reports import reports
from .conftest import PEERS, PUBLIC_KEY, REGION, ZONE, build, http, make_target, sdk, vm_requests

PROJECT = "cast-test"


def firewall_bodies(emulator: GcpEmulator, prefix: str) -> dict[str, dict]:
    _, listing = http(emulator, "GET", f"/compute/v1/projects/{PROJECT}/global/firewalls")
    return {f["name"]: f for f in listing.get("items", []) if f["name"].startswith(prefix)}


def test_create_builds_the_cluster_with_running_vms(provider: Provider, emulator: GcpEmulator) -> None:
    target = make_target()
    with reports() as said:
        vms = build(provider, target, vm_requests("demo", 1, 2))

    assert [v.name for v in vms] == ["demo-gcp-m1", "demo-gcp-w1", "demo-gcp-w2"]
    assert said[-1] == "3/3 running"  # the count the user watches while the instances start
    for vm in vms:
        assert vm.state == "RUNNING" and vm.cluster_uuid == target.cluster.uuid
        assert ipaddress.ip_address(vm.public_ip) in ipaddress.ip_network(DEFAULT_POOLS["gcp"])
        assert ipaddress.ip_address(vm.private_ip) in ipaddress.ip_network(target.subnet_cidr)
    kinds = sorted(r.kind for r in provider.list_resources(target.cluster))
    assert kinds == ["firewall"] * 4 + ["instance", "instance", "instance", "network", "subnetwork"]

    booted = {vm.name: vm for vm in emulator.running_vms()}
    master = booted[vms[0].cloud_id]
    assert master.user_data.startswith("#cloud-config\nhostname: demo-master-1")
    assert master.ssh_keys == [PUBLIC_KEY]

    sid = target.cluster.short_id
    fws = firewall_bodies(emulator, f"cast-{sid}-")
    master_fw = fws[f"cast-{sid}-master-fw"]
    assert master_fw["allowed"] == [{"IPProtocol": "tcp", "ports": ["22", "6443"]}]
    assert fws[f"cast-{sid}-master-fw-2"]["allowed"] == [{"IPProtocol": "udp", "ports": ["51820"]}]
    assert fws[f"cast-{sid}-master-fw-2"]["sourceRanges"] == ["198.18.0.10/32", "198.18.4.10/32"]
    assert not any(a["ports"] == ["30000-32767"] for f in fws.values() for a in f["allowed"])  # NodePorts closed
    assert master_fw["targetTags"] == ["cast-master"] and target.cluster.uuid in master_fw["description"]
    _, inst = http(emulator, "GET", f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances/{vms[0].cloud_id}")
    assert inst["tags"]["items"] == ["cast-master"]
    assert inst["labels"]["cast-node"] == "demo-gcp-m1" and inst["labels"]["cast-role"] == "master"
    boot = inst["disks"][0]
    assert boot["boot"] and boot["autoDelete"] and boot["mode"] == "READ_WRITE" and boot["type"] == "PERSISTENT"
    _, disk = http(emulator, "GET", boot["source"].removeprefix("https://www.googleapis.com"))
    _, current = http(emulator, "GET", "/compute/v1/projects/ubuntu-os-cloud/global/images/family/"
                                       "ubuntu-2404-lts-amd64")
    assert disk["sourceImage"] == current["selfLink"] and disk["users"] == [inst["selfLink"]]
    provider.teardown(target)


def _metadata(emulator: GcpEmulator, instance: str) -> dict[str, str]:
    _, inst = http(emulator, "GET", f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances/{instance}")
    return {i["key"]: i["value"] for i in inst["metadata"].get("items", [])}


def test_instances_block_project_keys_and_their_user_data_can_be_taken_back(
        provider: Provider, emulator: GcpEmulator) -> None:
    # The guest agent gives logins to project-wide SSH keys unless the instance blocks them, and
    # the user-data (the node's first host key) is metadata every process on the node can read.
    target = make_target()
    vms = build(provider, target, vm_requests("demo", 1, 1))
    before = {vm.name: _metadata(emulator, vm.cloud_id) for vm in vms}
    assert all(m["block-project-ssh-keys"] == "TRUE" and "user-data" in m for m in before.values())

    assert provider.removes_user_data
    done = provider.forget_user_data(target, ["demo-gcp-m1"])
    assert done.actions == ("user-data removed from demo-gcp-m1",)
    after = {vm.name: _metadata(emulator, vm.cloud_id) for vm in vms}
    assert "user-data" not in after["demo-gcp-m1"]
    assert after["demo-gcp-m1"] == {k: v for k, v in before["demo-gcp-m1"].items() if k != "user-data"}
    assert after["demo-gcp-w1"] == before["demo-gcp-w1"]  # only the named nodes
    assert provider.forget_user_data(target, ["demo-gcp-m1"]).actions == ()  # twice is harmless
    provider.teardown(target)


def test_set_metadata_with_a_stale_fingerprint_is_refused(provider: Provider, emulator: GcpEmulator) -> None:
    target = make_target()
    vms = build(provider, target, vm_requests("demo", 1, 0))
    client = sdk(emulator, "InstancesClient")
    stale = compute_v1.Metadata(fingerprint="AAAAAAAAAAA=", items=[compute_v1.Items(key="a", value="b")])
    with pytest.raises(exceptions.PreconditionFailed):
        client.set_metadata(project=PROJECT, zone=ZONE, instance=vms[0].cloud_id, metadata_resource=stale)
    assert "a" not in _metadata(emulator, vms[0].cloud_id)
    provider.teardown(target)


def test_rerun_after_partial_create_adds_only_what_is_missing(provider: Provider, calls) -> None:
    target = make_target()
    wanted = vm_requests("demo", 1, 2)
    build(provider, target, wanted[:1])  # a run that stopped after the first VM
    counts = calls()
    vms = build(provider, target, wanted)
    counts = calls()

    assert [v.name for v in vms] == [w.name for w in wanted]
    assert counts.get("compute.instances.insert") == 2
    for route in ("compute.networks.insert", "compute.subnetworks.insert", "compute.firewalls.insert"):
        assert route not in counts
    assert provider.ensure_network(target).actions == ()
    assert provider.ensure_firewall(target).actions == ()
    assert len(provider.list_vms(target.cluster)) == 3
    provider.teardown(target)


def test_firewall_drift_is_repaired(provider: Provider, emulator: GcpEmulator) -> None:
    target = make_target()
    provider.ensure_network(target)
    provider.ensure_firewall(target)
    sid, uuid = target.cluster.short_id, target.cluster.uuid
    fws = sdk(emulator, "FirewallsClient")
    worker = fws.get(project=PROJECT, firewall=f"cast-{sid}-worker-fw")
    worker.allowed = [compute_v1.Allowed(I_p_protocol="tcp", ports=["22"])]  # someone trimmed it
    fws.update_unary(project=PROJECT, firewall=worker.name, firewall_resource=worker)
    stray = compute_v1.Firewall(name=f"cast-{sid}-stray-fw", network=worker.network, description=f"cast-cluster-uuid={uuid}",
                                allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=["3389"])],
                                source_ranges=["0.0.0.0/0"])
    fws.insert_unary(project=PROJECT, firewall_resource=stray)
    assert fws.get(project=PROJECT, firewall=stray.name)  # exists before the repair

    # ssh narrowed too: the SSH rule moves to its own firewall
    narrowed = make_target(ssh_cidrs=("192.0.2.0/24",))
    narrowed = type(target)(**{**target.__dict__, "firewall": narrowed.firewall})
    actions = provider.ensure_firewall(narrowed).actions

    assert sorted(actions) == sorted([
        f"repair firewall cast-{sid}-worker-fw", f"repair firewall cast-{sid}-master-fw",
        f"repair firewall cast-{sid}-master-fw-2", f"create firewall cast-{sid}-master-fw-3",
        f"delete firewall cast-{sid}-stray-fw (not in the plan)"])
    now = firewall_bodies(emulator, f"cast-{sid}-")
    assert now[f"cast-{sid}-worker-fw"]["sourceRanges"] == ["192.0.2.0/24"]
    assert now[f"cast-{sid}-worker-fw"]["allowed"] == [{"IPProtocol": "tcp", "ports": ["22"]}]
    assert now[f"cast-{sid}-master-fw-2"]["allowed"] == [{"IPProtocol": "tcp", "ports": ["6443"]}]
    assert now[f"cast-{sid}-worker-fw-2"]["allowed"] == [{"IPProtocol": "udp", "ports": ["51820"]}]
    assert f"cast-{sid}-stray-fw" not in now
    assert provider.ensure_firewall(narrowed).actions == ()
    provider.teardown(narrowed)


def test_wireguard_sources_follow_the_nodes_in_place(provider: Provider, emulator: GcpEmulator) -> None:
    target = make_target()
    provider.ensure_network(target)
    provider.ensure_firewall(target)
    sid = target.cluster.short_id
    ids = {n: f["id"] for n, f in firewall_bodies(emulator, f"cast-{sid}-").items()}
    for peers in ([*PEERS, "198.18.8.3"], ["198.18.8.3"]):  # a node added, then two removed
        moved = replace(target, firewall={r: firewall_rules(r, ["0.0.0.0/0"], node_ips=peers)
                                          for r in ("master", "worker")})
        assert sorted(provider.ensure_firewall(moved).actions) == [
            f"repair firewall cast-{sid}-master-fw-2", f"repair firewall cast-{sid}-worker-fw-2"]
        now = firewall_bodies(emulator, f"cast-{sid}-")
        assert {n: f["id"] for n, f in now.items()} == ids  # updated in place, nothing made or deleted
        assert now[f"cast-{sid}-worker-fw-2"]["sourceRanges"] == sorted(f"{ip}/32" for ip in peers)
    provider.teardown(target)


def test_teardown_removes_everything_and_spares_another_cluster(provider: Provider, calls) -> None:
    doomed, other = make_target("doomed"), make_target("other")
    build(provider, doomed, vm_requests("doomed", 1, 1))
    build(provider, other, vm_requests("other", 1, 0))
    before_other = sorted(str(r) for r in provider.list_resources(other.cluster))
    calls()

    provider.teardown(doomed)

    assert provider.list_resources(doomed.cluster) == []
    assert sorted(str(r) for r in provider.list_resources(other.cluster)) == before_other
    assert [v.state for v in provider.list_vms(other.cluster)] == ["RUNNING"]
    provider.teardown(doomed)  # harmless when nothing is left
    provider.teardown(other)
    assert provider.list_resources(other.cluster) == []


def test_teardown_refuses_when_the_network_holds_a_foreign_instance(
        provider: Provider, emulator: GcpEmulator) -> None:
    target = make_target()
    build(provider, target, vm_requests("demo", 1, 0))
    sid = target.cluster.short_id
    intruder = compute_v1.Instance(
        name="someone-elses-vm", machine_type=f"zones/{ZONE}/machineTypes/e2-small",
        disks=[compute_v1.AttachedDisk(boot=True, initialize_params=compute_v1.AttachedDiskInitializeParams(
            source_image="projects/debian-cloud/global/images/family/debian-12"))],
        network_interfaces=[compute_v1.NetworkInterface(
            subnetwork=f"projects/{PROJECT}/regions/{REGION}/subnetworks/cast-{sid}-subnet")])
    sdk(emulator, "InstancesClient").insert_unary(project=PROJECT, zone=ZONE, instance_resource=intruder)
    before = sorted(str(r) for r in provider.list_resources(target.cluster))

    with pytest.raises(ForeignVmError) as refused:
        provider.teardown(target)

    assert refused.value.exit_code == 4 and "someone-elses-vm" in str(refused.value)
    assert sorted(str(r) for r in provider.list_resources(target.cluster)) == before
    op = sdk(emulator, "InstancesClient").delete_unary(project=PROJECT, zone=ZONE, instance="someone-elses-vm")
    sdk(emulator, "ZoneOperationsClient").wait(project=PROJECT, zone=ZONE, operation=op.name)
    provider.teardown(target)
    assert provider.list_resources(target.cluster) == []


def test_throttling_and_unavailability_are_survived(provider: Provider, emulator: GcpEmulator, calls) -> None:
    clean = make_target()
    build(provider, clean, vm_requests("clean", 1, 2))
    provider.teardown(clean)
    clean_counts = calls()

    target = make_target()
    emulator.faults.add("unavailable", next_n=2, match="/global/networks")
    emulator.faults.add("throttle", next_n=2, match="/instances")
    emulator.faults.add("throttle", share=0.15)
    vms = build(provider, target, vm_requests("demo", 1, 2))
    provider.teardown(target)
    counts = calls()

    assert [v.state for v in vms] == ["RUNNING"] * 3
    assert provider.list_resources(target.cluster) == []
    # the faulted calls really reached the emulator and were retried
    assert counts["compute.networks.list"] >= clean_counts["compute.networks.list"] + 2
    assert sum(counts.values()) > sum(clean_counts.values()) + 4


def test_throttling_beyond_the_budget_is_a_transient_error(provider: Provider, emulator: GcpEmulator) -> None:
    provider.transient_budget_s = 0.5
    emulator.faults.add("throttle", share=1.0)
    with pytest.raises(TransientError, match="Rate Limit Exceeded"):
        provider.ensure_network(make_target())


@pytest.mark.parametrize("style", ["operation", "http"])
def test_quota_is_reported_with_region_zone_and_machine_type(
        provider: Provider, emulator: GcpEmulator, style: str) -> None:
    target = make_target()
    provider.ensure_network(target)
    provider.ensure_subnet(target)
    emulator.quota_style = style
    emulator.faults.add("quota", next_n=1)
    with pytest.raises(CapacityError) as err:
        provider.ensure_vms(target, vm_requests("demo", 1, 0), PUBLIC_KEY)
    text = str(err.value)
    assert REGION in text and ZONE in text and "e2-standard-2" in text and "Quota 'CPUS'" in text
    provider.teardown(target)


def test_in_use_network_maps_to_dependency_error(provider: Provider) -> None:
    target = make_target()
    provider.ensure_network(target)
    provider.ensure_subnet(target)
    api = provider.api
    request = compute_v1.DeleteNetworkRequest(project=api.project, network=f"cast-{target.cluster.short_id}-net")
    with pytest.raises(DependencyError, match="already being used"):
        api.mutate("delete network", api.client("NetworksClient").delete_unary, request)
    provider.teardown(target)


def test_listing_pages_through_next_page_token(provider: Provider, emulator: GcpEmulator, calls) -> None:
    target = make_target()
    build(provider, target, vm_requests("demo", 0, 5))
    calls()
    client = sdk(emulator, "InstancesClient")
    request = compute_v1.ListInstancesRequest(project=PROJECT, zone=ZONE, max_results=2,
                                              filter=f'labels.cast-cluster-uuid = "{target.cluster.uuid}"')
    names = [i.name for i in client.list(request=request)]
    assert len(names) == 5 == len(set(names))
    assert calls()["compute.instances.list"] == 3
    provider.teardown(target)


def test_missing_credentials_are_an_auth_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("CAST_GCP_ENDPOINT", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # never ask a metadata server
    with pytest.raises(AuthError, match="application-default"):
        Provider(REGION, ZONE).check_credentials()


def test_sandbox_endpoint_defaults_the_project(monkeypatch: pytest.MonkeyPatch, emulator: GcpEmulator) -> None:
    monkeypatch.setenv("CAST_GCP_ENDPOINT", emulator.url)
    for var in ("CAST_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    p = Provider(REGION, ZONE)
    p.check_credentials()
    assert p.api.project == "cast-sandbox" and p.api.sandbox


@pytest.mark.parametrize(("endpoint", "loopback"), [
    ("http://127.0.0.1:8080", True), ("http://localhost:1", True), ("http://[::1]:9", True),
    ("https://compute.googleapis.com", False), ("http://10.0.0.1:80", False),
])
def test_only_loopback_endpoints_get_the_sandbox_treatment(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


def test_discovery_check_rejects_what_the_real_api_would(emulator: GcpEmulator) -> None:
    base = f"/compute/v1/projects/{PROJECT}/global/networks"
    status, body = http(emulator, "POST", base, {"name": "cast-bad-net", "autoCreateSubnetwork": False})
    assert status == 400 and "autoCreateSubnetwork" in body["error"]["message"]
    status, _ = http(emulator, "GET", base + "?maxResults=lots")
    assert status == 400
    status, _ = http(emulator, "POST", f"/compute/v1/projects/{PROJECT}/zones/{ZONE}/instances",
                     {"name": "x", "networkInterfaces": [{"accessConfigs": [{"natIp": "1.2.3.4"}]}]})
    assert status == 400
    status, _ = http(emulator, "GET", f"/compute/v1/projects/{PROJECT}/global/routers")
    assert status == 404
    found = list(emulator.violations)
    emulator.violations.clear()
    assert any("unknown field 'autoCreateSubnetwork'" in v for v in found)
    assert any("maxResults='lots' is not an integer" in v for v in found)
    assert any("unknown field 'natIp'" in v for v in found)
    assert any("no method GET" in v for v in found)
    assert not any(n.startswith("cast-bad") for n in (r["name"] for r in
                   (http(emulator, "GET", base)[1].get("items", []))))


def test_invalid_names_and_cidrs_are_refused(provider: Provider, emulator: GcpEmulator) -> None:
    base = f"/compute/v1/projects/{PROJECT}"
    status, body = http(emulator, "POST", base + "/global/networks", {"name": "Bad_Name"})
    assert status == 400 and body["error"]["errors"][0]["reason"] == "invalid"
    target = make_target()
    provider.ensure_network(target)
    status, _ = http(emulator, "POST", base + f"/regions/{REGION}/subnetworks",
                     {"name": "ok-name", "ipCidrRange": "10.0.0.1/24",
                      "network": f"projects/{PROJECT}/global/networks/cast-{target.cluster.short_id}-net"})
    assert status == 400
    status, body = http(emulator, "POST", base + "/global/networks",
                        {"name": f"cast-{target.cluster.short_id}-net"})
    assert status == 409 and body["error"]["errors"][0]["reason"] == "alreadyExists"
    provider.teardown(target)


def test_control_endpoint_reports_calls_and_vms(provider: Provider, emulator: GcpEmulator) -> None:
    target = make_target()
    build(provider, target, vm_requests("demo", 1, 0))
    status, vms = http(emulator, "GET", "/_emulator/vms")
    assert status == 200 and any(v["name"].startswith("demo-gcp-m1-") for v in vms)
    status, counted = http(emulator, "GET", "/_emulator/calls")
    assert counted["by_route"]["compute.instances.insert"] >= 1
    assert http(emulator, "GET", "/_emulator/violations") == (200, [])
    provider.teardown(target)
    assert os.environ["CAST_GCP_ENDPOINT"] == emulator.url


@pytest.mark.parametrize("auth", [None, "Basic dXNlcjpwYXNz", "Bearer ", "Bearer wrong-token"])
def test_requests_without_the_bearer_are_refused_as_google_does(emulator: GcpEmulator, auth: str | None) -> None:
    emulator.token = "the-token"
    try:
        status, body = http(emulator, "GET", f"/compute/v1/projects/{PROJECT}/global/networks", auth=auth)
        assert http(emulator, "GET", f"/compute/v1/projects/{PROJECT}/global/networks",
                    auth="Bearer the-token")[0] == 200
    finally:
        emulator.token = None
    assert status == 401 and body["error"]["status"] == "UNAUTHENTICATED" and body["error"]["code"] == 401
    detail = body["error"]["errors"][0]
    assert detail["location"] == "Authorization" and detail["locationType"] == "header"
    if auth is None:
        assert body["error"]["message"].startswith("Request is missing required authentication credential")
        assert detail["reason"] == "required"
    else:
        assert body["error"]["message"].startswith("Request had invalid authentication credentials")
        assert detail["reason"] == "authError"


def test_an_sdk_client_without_credentials_is_refused(emulator: GcpEmulator) -> None:
    """AnonymousCredentials send no header: the 401 makes google-auth try a refresh, which
    anonymous credentials cannot do."""
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import InvalidOperation

    client = compute_v1.NetworksClient(credentials=AnonymousCredentials(), transport="rest",
                                       client_options={"api_endpoint": emulator.url})
    emulator.clear_calls()
    with pytest.raises(InvalidOperation, match="cannot be refreshed"):
        list(client.list(project=PROJECT))
    assert [(e["route"], e["status"]) for e in emulator.log] == [("compute.networks.list", 401)]


def test_the_provider_sends_its_sandbox_token(emulator: GcpEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAST_GCP_ENDPOINT", emulator.url)
    monkeypatch.setenv("CAST_GCP_TOKEN", "per-run-token")
    emulator.token = "per-run-token"
    try:
        Provider(REGION, ZONE).check_credentials()
        emulator.token = "another-token"
        with pytest.raises(AuthError, match="not authorised"):
            Provider(REGION, ZONE).check_credentials()
    finally:
        emulator.token = None


def test_what_the_real_api_lets_through_is_accepted(provider: Provider, emulator: GcpEmulator) -> None:
    """Unknown query parameters are ignored; null reads as absent (proto3 JSON)."""
    base = f"/compute/v1/projects/{PROJECT}/global/networks"
    status, listing = http(emulator, "GET", base + "?colour=blue&maxResults=3")
    assert status == 200 and listing["kind"] == "compute#networkList"
    status, op = http(emulator, "POST", base, {"name": "cast-null-net", "description": None,
                                                "autoCreateSubnetworks": None, "mtu": None})
    assert status == 200 and op["operationType"] == "insert"
    status, net = http(emulator, "GET", base + "/cast-null-net")
    assert status == 200 and "description" not in net and net["autoCreateSubnetworks"] is False
    assert http(emulator, "DELETE", base + "/cast-null-net", {})[0] == 200  # an empty body on DELETE is fine
    status, _ = http(emulator, "DELETE", base + "/cast-null-net", {"force": True})
    assert status == 400
    assert emulator.violations == ["compute.networks.delete takes no request body"]
    emulator.violations.clear()
