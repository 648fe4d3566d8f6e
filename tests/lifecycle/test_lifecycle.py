"""The cluster lifecycle end to end in the sandbox, through the `cast` command as users run it:
create across every cloud, add and remove nodes, reconcile, fault injection, kill -9 and
resume, the safety refusals, and delete-cluster leaving nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import pytest

from provisioner.sandbox.emulator import CONTROL_TOKEN_ENV, CONTROL_TOKEN_HEADER

from .conftest import SKIP, wait_for

pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

REGION = "eu-frankfurt"  # all four clouds in one metro (the sandbox delays follow it)
# Every sandbox VM shares this machine's two cores, so single pings over the mesh stall for
# tens, sometimes hundreds of ms. These tests are about the lifecycle, not the latency verdict
# (tests/nodes checks that with explicit delays), so their clusters do not judge latency.
RELAXED = ["--latency-threshold-ms", "1000"]
FOUR = ["--cloud", "aws:1:1", "--cloud", "gcp:0:1", "--cloud", "azure:0:1", "--cloud", "digitalocean:0:1", *RELAXED]


def emulator(cast, cloud: str, path: str, method: str = "GET", body: dict | None = None):
    variable = {"gcp": "CAST_GCP_ENDPOINT", "azure": "CAST_AZURE_ENDPOINT",
                "digitalocean": "CAST_DIGITALOCEAN_ENDPOINT"}[cloud]
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{cast.env[variable]}/_emulator/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", **control_headers(cast)})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else None


def control_headers(cast) -> dict[str, str]:
    """The header that opens the sandbox's control routes: its per-run token."""
    return {CONTROL_TOKEN_HEADER: cast.env[CONTROL_TOKEN_ENV]}


def ec2(cast):
    return boto3.client("ec2", endpoint_url=cast.env["AWS_ENDPOINT_URL"], region_name="eu-central-1",
                        aws_access_key_id=cast.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=cast.env["AWS_SECRET_ACCESS_KEY"])


def test_whole_lifecycle_across_four_clouds(cast):
    created = cast("create-cluster", "life", "--region", REGION, *FOUR, "--output", "json")
    cluster = json.loads(created.stdout)
    assert cluster["status"] == "ready"
    assert {n["cloud"] for n in cluster["nodes"]} == {"aws", "gcp", "azure", "digitalocean"}
    assert all(n["status"] == "meshed" for n in cluster["nodes"])
    uuid = cluster["uuid"]
    # The sandbox's hosts cannot run a kubelet: Kubernetes is skipped, visibly, with their reason.
    reason = "sandbox host: a network-namespace host cannot run a kubelet"
    assert cluster["kubernetes"]["state"].startswith(f"skipped: {reason}")
    assert cluster["kubernetes"]["kubeconfig"] is None
    kubeconfig = cast("kubeconfig", "life", check=False)
    assert kubeconfig.returncode == 1 and f"cluster life has no kubeconfig: Kubernetes skipped: {reason}" in (
        kubeconfig.stderr)

    latency = cast("check-latency", "life", "--count", "3", "--interval", "0.2", "--output", "json", check=False)
    assert latency.returncode in (0, 3), latency.stderr
    pairs = json.loads(latency.stdout)["pairs"]
    assert len(pairs) == 5 * 4  # every ordered pair of the five nodes, measured over the mesh

    added = json.loads(cast("add-node", "life", "--cloud", "gcp", "--count", "1", "--output", "json").stdout)
    assert added == {"added": ["life-gcp-w2"]}
    assert cast.vms("life", uuid)["gcp"] == ["life-gcp-w1", "life-gcp-w2"]

    cast("remove-node", "life", "life-gcp-w1")
    status = cast.cluster("life")
    assert {r["cloud"] for r in status["resources"]} == {"aws", "gcp", "azure", "digitalocean"}
    assert "life-gcp-w1" not in {n["name"] for n in status["nodes"]}
    assert cast.vms("life", uuid)["gcp"] == ["life-gcp-w2"]
    # the mesh address of a removed node is never reused
    again = json.loads(cast("add-node", "life", "--cloud", "gcp", "--output", "json").stdout)["added"]
    assert again == ["life-gcp-w3"]
    meshes = [n["mesh_ip"] for n in cast.cluster("life")["nodes"]]
    assert len(meshes) == len(set(meshes)) and "10.4.0.3" not in meshes  # gcp-w1 had 10.4.0.3

    refused = cast("add-node", "life", "--cloud", "aws", "--role", "master", check=False)
    assert refused.returncode == 2 and "masters are fixed at creation" in refused.stderr

    spec = status["spec"]
    cast("delete-cluster", "life", "--yes")
    assert cast.leftovers("life", uuid, spec) == {c: [] for c in spec["clouds"]}
    assert cast("delete-cluster", "life", "--yes").returncode == 0  # twice is harmless
    for cloud in ("gcp", "azure", "digitalocean"):
        assert emulator(cast, cloud, "vms") == []


@pytest.mark.parametrize(("cloud", "step"), [("gcp", "network"), ("azure", "vms"), ("mesh", "wireguard")])
def test_kill_9_during_create_then_rerun_completes_without_duplicates(cast, cloud, step):
    name = f"k{step[:4]}"
    args = ["create-cluster", name, "--region", REGION, *FOUR, "--quiet"]
    process = cast.start(*args)
    wait_for(lambda: (cloud, step, "begin") in cast.journal(name) or process.poll() is not None,
             what=f"{cloud} {step} to begin")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    cast(*args)  # the same command again: it continues and finishes
    cluster = cast.cluster(name)
    assert cluster["status"] == "ready"
    vms = cast.vms(name, cluster["uuid"])
    assert vms == {"aws": [f"{name}-aws-m1", f"{name}-aws-w1"], "gcp": [f"{name}-gcp-w1"],
                   "azure": [f"{name}-az-w1"], "digitalocean": [f"{name}-do-w1"]}
    cast("delete-cluster", name, "--yes")
    assert cast.leftovers(name, cluster["uuid"], cluster["spec"]) == {c: [] for c in cluster["spec"]["clouds"]}


def test_reconcile_repairs_a_deleted_vm_and_a_deleted_subnet(cast):
    cluster = json.loads(cast("create-cluster", "heal", "--region", REGION, "--cloud", "aws:1:1", *RELAXED,
                              "--output", "json").stdout)
    client = ec2(cast)
    worker = next(n for n in cluster["nodes"] if n["name"] == "heal-aws-w1")
    client.terminate_instances(InstanceIds=[worker["cloud_id"]])
    found = json.loads(cast("reconcile", "heal", "--dry-run", "--output", "json").stdout)["findings"]
    assert any("heal-aws-w1" in line and "would recreate" in line for line in found), found
    assert cast.vms("heal", cluster["uuid"])["aws"] == ["heal-aws-m1"]  # dry run changed nothing
    done = json.loads(cast("reconcile", "heal", "--output", "json").stdout)["findings"]
    assert any("heal-aws-w1" in line and "recreated" in line for line in done), done
    assert cast.vms("heal", cluster["uuid"])["aws"] == ["heal-aws-m1", "heal-aws-w1"]

    subnets = client.describe_subnets(Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [cluster["uuid"]]}])
    client.delete_subnet(SubnetId=subnets["Subnets"][0]["SubnetId"])
    done = json.loads(cast("reconcile", "heal", "--output", "json").stdout)["findings"]
    assert any("subnet" in line for line in done), done
    again = client.describe_subnets(Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [cluster["uuid"]]}])
    assert len(again["Subnets"]) == 1
    quiet = json.loads(cast("reconcile", "heal", "--dry-run", "--output", "json").stdout)["findings"]
    assert quiet == []  # everything matches the spec again

    # a peer removed behind cast's back on one node: found, then restored live
    master, worker = (n for n in cast.cluster("heal")["nodes"])
    with cast.ssh(cluster["uuid"]) as (pool, access):
        worker_key = pool.check(access[worker["name"]], "wg show wg0 public-key").strip()
        pool.check(access[master["name"]], f"wg set wg0 peer {worker_key} remove")
    found = json.loads(cast("reconcile", "heal", "--dry-run", "--output", "json").stdout)["findings"]
    assert found == [f"mesh: {master['name']}: lacks peers {worker['name']}"]
    done = json.loads(cast("reconcile", "heal", "--output", "json").stdout)["findings"]
    assert done == [f"mesh: {master['name']}: lacks peers {worker['name']}: repaired"]
    with cast.ssh(cluster["uuid"]) as (pool, access):
        assert worker_key in pool.check(access[master["name"]], "wg show wg0 peers").split()
    assert json.loads(cast("reconcile", "heal", "--dry-run", "--output", "json").stdout)["findings"] == []

    # a bring-up cut short (wg0 made, never addressed nor up): the node is not in the mesh
    with cast.ssh(cluster["uuid"]) as (pool, access):
        pool.check(access[worker["name"]], "ip addr flush dev wg0 && ip link set wg0 down")
    found = json.loads(cast("reconcile", "heal", "--dry-run", "--output", "json").stdout)["findings"]
    assert f"mesh: {worker['name']}: not in the mesh (wg0 is down)" in found
    cast("reconcile", "heal")
    with cast.ssh(cluster["uuid"]) as (pool, access):
        pool.check(access[master["name"]], "ping -c 2 -W 2 10.4.0.2")  # the worker's mesh address, through wg0
    assert json.loads(cast("reconcile", "heal", "--dry-run", "--output", "json").stdout)["findings"] == []
    cast("delete-cluster", "heal", "--yes")


@pytest.mark.parametrize("fault", ["throttle", "unavailable", "quota"])
def test_faults_on_one_cloud_fail_cleanly_then_a_rerun_completes(cast, fault):
    name = f"f{fault[:5]}"
    args = ["create-cluster", name, "--region", REGION, "--cloud", "aws:1:0", "--cloud", "gcp:0:1", *RELAXED, "--quiet"]
    # a steady fault on every GCP call: retries cannot get through (a short retry budget
    # keeps the test quick; the default is 120 s)
    emulator(cast, "gcp", "faults", "POST", {"kind": fault, "share": 1.0})
    try:
        failed = cast(*args, check=False, env={"CAST_RETRY_BUDGET_S": "3"})
    finally:
        emulator(cast, "gcp", "faults", "DELETE")
    assert failed.returncode != 0
    assert "gcp" in failed.stderr and "run the same command again" in failed.stderr.lower()
    cast(*args)
    cluster = cast.cluster(name)
    assert cluster["status"] == "ready"
    cast("delete-cluster", name, "--yes")


def test_a_foreign_vm_makes_delete_refuse_and_delete_nothing(cast):
    cluster = json.loads(cast("create-cluster", "safe", "--region", REGION, "--cloud", "aws:1:0",
                              "--output", "json").stdout)
    client = ec2(cast)
    subnet = client.describe_subnets(Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [cluster["uuid"]]}])
    image = client.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    stray = client.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                 SubnetId=subnet["Subnets"][0]["SubnetId"])["Instances"][0]["InstanceId"]
    refused = cast("delete-cluster", "safe", "--yes", check=False)
    assert refused.returncode == 4
    assert stray in refused.stderr
    assert cast.vms("safe", cluster["uuid"])["aws"] == ["safe-aws-m1"]  # nothing deleted
    client.terminate_instances(InstanceIds=[stray])
    cast("delete-cluster", "safe", "--yes")


def test_a_second_process_on_the_same_cluster_exits_4_naming_the_holder(cast):
    args = ["create-cluster", "lock", "--region", REGION, "--cloud", "aws:1:0", "--quiet"]
    first = cast.start(*args)
    wait_for(lambda: ("aws", "network", "begin") in cast.journal("lock"), what="the first run to hold the lock")
    os.kill(first.pid, signal.SIGSTOP)  # hold it there, lock taken
    try:
        second = cast(*args, check=False)
        assert second.returncode == 4
        assert f"pid {first.pid}" in second.stderr and "create-cluster" in second.stderr
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=120) == 0
    cast("delete-cluster", "lock", "--yes")


def test_add_node_refuses_a_cloud_beyond_the_latency_threshold(cast):
    cast("create-cluster", "far", "--region", REGION, "--cloud", "aws:1:0", "--latency-threshold-ms", "1", "--quiet")
    refused = cast("add-node", "far", "--cloud", "gcp", check=False)  # aws-gcp: 1.19 ms published
    assert refused.returncode == 2 and "too far apart" in refused.stderr
    status = cast.cluster("far")
    assert list(status["spec"]["clouds"]) == ["aws"] and len(status["nodes"]) == 1
    cast("delete-cluster", "far", "--yes")


def test_missing_credentials_stop_create_before_anything_is_made(cast):
    args = ["create-cluster", "nocred", "--region", REGION, "--cloud", "aws:1:0", "--cloud", "digitalocean:0:1"]
    failed = cast(*args, check=False, env={"DIGITALOCEAN_TOKEN": ""})
    assert failed.returncode == 1
    assert "DIGITALOCEAN_TOKEN" in failed.stderr
    assert "nocred" not in cast("list").stdout
    vpcs = ec2(cast).describe_vpcs(Filters=[{"Name": "tag:cast-cluster", "Values": ["nocred"]}])["Vpcs"]
    assert vpcs == []  # not even the cloud whose credentials were fine was touched


def emulator_calls(cast, cloud: str) -> int:
    """How many API calls the cloud's emulator (AWS: its fault proxy) has answered since its
    counters were last reset; `reset` first."""
    variable = {"aws": "AWS_ENDPOINT_URL", "gcp": "CAST_GCP_ENDPOINT", "azure": "CAST_AZURE_ENDPOINT",
                "digitalocean": "CAST_DIGITALOCEAN_ENDPOINT"}[cloud]
    request = urllib.request.Request(f"{cast.env[variable]}/_emulator/calls", headers=control_headers(cast))
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["total"]


def reset_emulator_calls(cast) -> None:
    for variable in ("AWS_ENDPOINT_URL", "CAST_GCP_ENDPOINT", "CAST_AZURE_ENDPOINT", "CAST_DIGITALOCEAN_ENDPOINT"):
        request = urllib.request.Request(f"{cast.env[variable]}/_emulator/calls", method="DELETE",
                                         headers=control_headers(cast))
        urllib.request.urlopen(request, timeout=10).close()


def secret_strings(data: bytes) -> set[str]:
    """The parts of a secret file worth looking for: the whole of it and each line of 16 or more
    characters (a PEM body line, a token)."""
    text = data.decode(errors="replace")
    return {text.strip(), *(line.strip() for line in text.splitlines() if len(line.strip()) >= 16)} - {""}


def test_verbose_logs_hold_every_api_call_and_ssh_command_and_no_secret(cast):
    # The sandbox's credentials are fresh random ones per run: finding one anywhere is a leak.
    credentials = {k: cast.env[k] for k in ("DIGITALOCEAN_TOKEN", "AWS_SECRET_ACCESS_KEY", "CAST_GCP_TOKEN",
                                            "CAST_AZURE_TOKEN", CONTROL_TOKEN_ENV)}
    runs = []

    def run(*args: str, check: bool = True):
        done = cast("--verbose", *args, check=check)
        runs.append(done)
        return done

    reset_emulator_calls(cast)
    created = json.loads(run("create-cluster", "logged", "--region", REGION, *FOUR, "--output", "json").stdout)
    uuid, nodes = created["uuid"], [n["name"] for n in created["nodes"]]
    latency = run("check-latency", "logged", "--count", "2", "--interval", "0.2", check=False)
    assert latency.returncode in (0, 3), latency.stderr
    added = json.loads(run("add-node", "logged", "--cloud", "digitalocean", "--output", "json").stdout)["added"]
    run("remove-node", "logged", added[0])

    # The cluster's secrets, read before delete-cluster removes them: its SSH key, every node's
    # host key, every node's WireGuard private key (made on the node; fetched here to look for).
    found: set[str] = set()
    for path in (cast.state_dir / "secrets" / uuid).iterdir():
        found |= secret_strings(path.read_bytes())
    with cast.ssh(uuid) as (pool, access):
        for node in access.values():
            found.add(pool.check(node, "wg show wg0 private-key").strip())
    assert len(found) > 2 * len(nodes)
    run("delete-cluster", "logged", "--yes")
    calls = {cloud: emulator_calls(cast, cloud) for cloud in ("aws", "gcp", "azure", "digitalocean")}

    log_dir = cast.state_dir / "logs" / "logged"
    log_files = sorted(log_dir.glob("*.log"), key=lambda p: p.read_text()[:24])  # by first line's time, in ms
    commands = [p.name.split("-", 1)[1].removesuffix(".log") for p in log_files]
    assert commands == ["create-cluster", "check-latency", "add-node", "remove-node", "delete-cluster"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in log_files) and log_dir.stat().st_mode & 0o777 == 0o700
    logs = {c: p.read_text() for c, p in zip(commands, log_files, strict=True)}
    everything = "".join(logs.values()) + "".join(r.stdout + r.stderr for r in runs)

    # Every API call each cloud's emulator answered is one line of a log, with status and duration.
    for cloud, answered in calls.items():
        logged = re.findall(rf"^\S+Z api   {cloud} \S+(?: \S+)? status=\d{{3}} ms=\d+", "".join(logs.values()), re.M)
        assert len(logged) == answered > 0, cloud
    # --verbose printed the same lines on stderr
    for run_, text in zip(runs, logs.values(), strict=True):
        assert all(line[25:] in run_.stderr for line in text.splitlines()[1:] if line[:4].isdigit())
    # Every node's SSH commands are there, by purpose, with exit status and duration.
    ssh = re.compile(r"^\S+Z ssh   (\S+) \S+:\d+ '([^']+)' status=(\S+) ms=\d+$", re.M)
    for command, text in logs.items():
        by_node = {(node, purpose) for node, purpose, status in ssh.findall(text)}
        if command == "create-cluster":
            for node in nodes:
                assert {(node, "connect"), (node, "read boot marker"), (node, "make key, bring up wg0"),
                        (node, "sync wg0 peers")} <= by_node, (node, text)
        if command == "check-latency":
            assert {n for n, p in by_node if p.startswith("ping ")} == set(nodes)
        if command == "add-node":
            assert {(added[0], "read boot marker"), (added[0], "make key, bring up wg0")} <= by_node
        if command in ("add-node", "remove-node"):  # every node's peers are changed live
            assert {n for n, p in by_node if p == "sync wg0 peers"} >= set(nodes)

    # No secret anywhere: not the cluster's keys, not the nodes' WireGuard keys, not a token.
    for secret in found | set(credentials.values()):
        assert secret not in everything
    for marker in ("PRIVATE KEY", "PrivateKey", "Authorization", "Bearer "):
        assert marker not in everything, marker


def test_doctor_finds_every_cloud_usable_in_the_running_sandbox(cast):
    report = json.loads(cast("doctor", "--output", "json").stdout)
    assert report["usable"] is True
    assert report["sandbox"]["running"] is True and report["sandbox"]["region"] == REGION
    endpoints = set(report["sandbox"]["endpoints"].values())
    for access in report["clouds"]:
        assert access["usable"] and access["sandbox"] and access["endpoint"] in endpoints, access
    assert all(check["ok"] for check in report["local"])  # the sandbox runs, so it had all it needs


def test_the_sandbox_answers_only_its_own_run_credentials(cast):
    """A local user who can find the ports but not read the (root-only) sandbox state gets
    nowhere: every cloud API and every control route wants this run's random credentials, and no
    control route hands out a VM's user-data (its host private key)."""
    anyone = "Bearer x"
    for variable, method, path in (
        ("CAST_DIGITALOCEAN_ENDPOINT", "POST", "/v2/droplets"),
        ("CAST_GCP_ENDPOINT", "GET", "/compute/v1/projects/cast-sandbox/zones/europe-west3-a/instances"),
        ("CAST_AZURE_ENDPOINT", "GET",
         f"/subscriptions/{cast.env['AZURE_SUBSCRIPTION_ID']}/resourcegroups?api-version=2025-04-01"),
    ):
        request = urllib.request.Request(f"{cast.env[variable]}{path}", method=method, data=b"{}" if method == "POST"
                                         else None, headers={"Authorization": anyone,
                                                             "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401, variable
    other = boto3.client("ec2", endpoint_url=cast.env["AWS_ENDPOINT_URL"], region_name="eu-central-1",
                         aws_access_key_id="AKIAEXAMPLEEXAMPLE00", aws_secret_access_key="x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as aws_refused:
        other.describe_instances()
    assert aws_refused.value.response["Error"]["Code"] == "AuthFailure"

    for variable in ("AWS_ENDPOINT_URL", "CAST_GCP_ENDPOINT", "CAST_AZURE_ENDPOINT", "CAST_DIGITALOCEAN_ENDPOINT"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{cast.env[variable]}/_emulator/calls", timeout=10)
        assert refused.value.code == 401, variable

    cast("create-cluster", "keyless", "--region", REGION, "--cloud", "gcp:1:0", "--cloud", "digitalocean:0:1",
         *RELAXED)
    try:
        for cloud in ("gcp", "digitalocean"):
            listed = emulator(cast, cloud, "vms")
            assert listed and all(set(vm) == {"id", "name", "public_ip", "private_ip", "state"} for vm in listed)
            assert "PRIVATE KEY" not in json.dumps(listed)
    finally:
        cast("delete-cluster", "keyless", "--yes")
    state = cast.state_dir / "sandbox"
    assert state.stat().st_mode & 0o077 == 0 and (state / "sandbox.json").stat().st_mode & 0o077 == 0
