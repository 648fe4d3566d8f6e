"""The command log as a user finds it: where it is, who may read it, how many are kept, that a
refused command leaves none, that --verbose prints it, that an error names it, and that the
redaction filter catches secrets a caller should never have logged."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from provisioner import logs
from provisioner.cli import cli
from provisioner.keys import new_ed25519

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ +\S")


def run(args, state_dir, env=None):
    return CliRunner().invoke(cli, ["--state-dir", str(state_dir), *args], catch_exceptions=False, env=env)


def test_the_log_is_made_on_its_first_record_under_logs_cluster_utc_command(tmp_path):
    log = logs.start(tmp_path, "demo", "create-cluster", argv=["create-cluster", "demo"], version="9.9")
    assert not (tmp_path / "logs").exists()  # nothing yet: created on the first record
    logs.api_call("aws", "ec2.DescribeVpcs", 200, 12, "req-1")
    path = log.path
    assert path is not None and path.parent == tmp_path / "logs" / "demo"
    assert re.fullmatch(r"\d{8}T\d{6}Z-create-cluster\.log", path.name)
    assert abs(time.mktime(time.strptime(path.name[:16], "%Y%m%dT%H%M%SZ")) - time.mktime(time.gmtime())) < 5
    assert logs.finish() == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (tmp_path / "logs", tmp_path / "logs" / "demo"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    header, record, end = path.read_text().splitlines()
    assert "start cast 9.9 create-cluster cluster=demo" in header and "args: create-cluster demo" in header
    assert LINE.match(record) and record.endswith("api   aws ec2.DescribeVpcs status=200 ms=12 request_id=req-1")
    assert LINE.match(end) and re.search(r"end   exit 0 after ms=\d+$", end)


def test_two_commands_in_one_second_get_two_files_and_only_the_newest_are_kept(tmp_path):
    directory = tmp_path / "logs" / "demo"
    directory.mkdir(parents=True)
    for day in range(1, 26):  # older logs of the same cluster
        (directory / f"202611{day:02d}T100000Z-add-node.log").write_text("old\n")
    paths = []
    for _ in range(2):
        logs.start(tmp_path, "demo", "reconcile")
        logs.logger("step").info("aws network done")
        paths.append(logs.finish())
    assert paths[0] != paths[1] and all(p is not None and p.exists() for p in paths)
    kept = sorted(p.name for p in directory.iterdir())
    assert len(kept) == logs.KEEP
    assert kept[-2:] == sorted(p.name for p in paths if p is not None)  # the newest stay
    assert kept[0] == "20261108T100000Z-add-node.log"  # 25 old + 2 new, 20 kept: the 7 oldest went


def test_an_error_of_bad_input_removes_the_log_it_made(tmp_path):
    logs.start(tmp_path, "demo", "add-node")
    logs.api_call("gcp", "compute.instances.list", 200, 3)
    assert logs.finish(exit_code=2) is None
    assert not (tmp_path / "logs").exists()


def test_a_command_refused_for_bad_input_creates_no_file(tmp_path):
    state = tmp_path / "state"
    refused = run(["create-cluster", "demo", "--region", "nowhere", "--cloud", "aws:1:1"], state)
    assert refused.exit_code == 2
    refused = run(["--verbose", "remove-node", "nope", "nope-aws-w1"], state)
    assert refused.exit_code == 2 and "no cluster named 'nope'" in refused.output
    assert not (state / "logs").exists()


def cast(state, *args, env=None):
    return subprocess.run([sys.executable, "-m", "provisioner", "--state-dir", str(state), *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)


def logged_path(stderr: str) -> Path:
    named = re.search(r"\(log: (\S+\.log)\)", stderr)
    assert named, stderr
    return Path(named.group(1))


def test_a_failing_command_names_its_log_holding_the_error(tmp_path):
    state = tmp_path / "state"
    # No DigitalOcean token: the create stops before it makes anything, exit 1.
    out = cast(state, "create-cluster", "demo", "--region", "us-east", "--cloud", "digitalocean:1:0",
               env={"DIGITALOCEAN_TOKEN": "", "CAST_DIGITALOCEAN_ENDPOINT": "http://127.0.0.1:9"})
    assert out.returncode == 1, out.stderr
    path = logged_path(out.stderr)
    assert path.parent == state / "logs" / "demo" and path.name.endswith("-create-cluster.log")
    text = path.read_text()
    assert "error exit 1: digitalocean" in text and "DIGITALOCEAN_TOKEN is not set" in text


def test_verbose_prints_every_record_of_the_log_on_stderr(tmp_path):
    state = tmp_path / "state"
    key = tmp_path / "id_ed25519"
    pair = new_ed25519("cast")
    private, public = pair.private, pair.public
    key.write_bytes(private)
    inventory = tmp_path / "hosts.json"
    nodes = [{"name": f"n{i}", "group": g, "public_ip": "127.0.0.1", "mesh_ip": f"10.4.0.{i}", "ssh_port": 9,
              "host_key": public} for i, g in ((1, "aws"), (2, "gcp"))]
    inventory.write_text(json.dumps({"nodes": nodes}))
    # Nothing listens on port 9: SSH fails on both nodes, exit 1, and the log says so per node.
    out = cast(state, "--verbose", "check-latency", "--inventory", str(inventory), "--ssh-key", str(key),
               "--count", "1")
    assert out.returncode == 1, out.stderr
    text = logged_path(out.stderr).read_text()
    for node in ("n1", "n2"):
        assert re.search(rf" ssh   {node} 127\.0\.0\.1:9 'connect' status=NodeError ms=\d+", text), text
    records = text.splitlines()[1:]
    assert records and all(line[25:] in out.stderr for line in records)
    assert private.decode().splitlines()[1] not in text + out.stderr


def test_an_unexpected_exception_is_logged_with_its_traceback_and_named(tmp_path):
    logs.start(tmp_path, "demo", "delete-cluster")
    try:
        raise ValueError("something broke")
    except ValueError as exc:
        path = logs.finish(exc, exit_code=1)
    assert path is not None
    text = path.read_text()
    assert "exit 1: unexpected ValueError: something broke" in text
    assert "Traceback (most recent call last)" in text and 'raise ValueError("something broke")' in text


def test_the_redaction_filter_catches_keys_tokens_and_pem_blocks(tmp_path):
    pair = new_ed25519("cast")
    private, public = pair.private, pair.public
    # Every secret is made here, at test time, in the shape the real one has.
    wg_private = base64.b64encode(os.urandom(32)).decode()  # a WireGuard private key
    bearer = "ya29." + secrets.token_urlsafe(24)  # a Google OAuth access token
    join_token = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"  # kubeadm's [a-z0-9]{6}.[a-z0-9]{16}
    certificate_key = secrets.token_hex(32)
    access_token, password, signature = secrets.token_hex(12), secrets.token_hex(8), secrets.token_hex(10)
    leaks = {
        "pem": private.decode(),
        "wg": f"[Interface]\nPrivateKey = {wg_private}\nAddress = 10.4.0.1/32",
        "bearer": f"Authorization: Bearer {bearer}",
        "kubeadm": f"kubeadm join 1.2.3.4:6443 --token {join_token} --certificate-key {certificate_key}",
        "json": f'{{"access_token": "{access_token}", "password": "{password}"}}',
        "url": f"GET https://example.com/v1/x?sig={signature}: 403",
    }
    logs.start(tmp_path, "demo", "create-cluster")
    for name, text in leaks.items():
        logs.logger("ssh").info("%s: %s", name, text)
    logs.logger("api").info("public key %s stays", public.split()[1][:20])
    path = logs.finish()
    assert path is not None
    text = path.read_text()
    for needle in ("PRIVATE KEY", private.decode().splitlines()[1], wg_private, bearer, join_token,
                   certificate_key, access_token, password, signature):
        assert needle not in text, needle
    assert "GET https://example.com/v1/x?[query left out] 403" in text
    assert "Address = 10.4.0.1/32" in text and "kubeadm join 1.2.3.4:6443" in text and "stays" in text


def test_the_redaction_filter_also_covers_verbose_stderr_and_tracebacks(tmp_path, capsys):
    wg_private = base64.b64encode(os.urandom(32)).decode()  # a WireGuard private key, made now
    logs.start(tmp_path, "demo", "reconcile", verbose=True)
    try:
        raise RuntimeError(f"PrivateKey = {wg_private}")
    except RuntimeError as exc:
        path = logs.finish(exc, exit_code=1)
    assert path is not None
    err = capsys.readouterr().err
    assert "PrivateKey = [redacted]" in err
    assert wg_private[:8] not in err and wg_private[:8] not in path.read_text()


def test_operations_are_named_from_the_path_without_ids_names_or_query():
    from provisioner.clouds.api_log import azure_operation, digitalocean_operation, gcp_operation

    sub = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/cast-demo-1a2b"
    assert azure_operation("PUT", f"{sub}/providers/Microsoft.Network/virtualNetworks/v1/subnets/s1") == (
        "PUT Microsoft.Network/virtualNetworks/subnets")
    assert azure_operation("GET", "/subscriptions/x/providers/Microsoft.Compute/locations/eastus/operations/9f") == (
        "GET Microsoft.Compute/locations/operations")
    assert azure_operation("DELETE", sub) == "DELETE resourceGroups"
    assert digitalocean_operation("POST", "/v2/droplets/4242/actions") == "POST /v2/droplets/{id}/actions"
    assert digitalocean_operation("DELETE", "/v2/tags/cast-1a2b3c4d") == "DELETE /v2/tags/{id}"
    project = "/compute/v1/projects/p-1"
    assert gcp_operation("POST", f"{project}/zones/europe-west3-a/instances") == "compute.instances.insert"
    assert gcp_operation("POST", f"{project}/zones/z/instances/vm-1/setMetadata") == "compute.instances.setMetadata"
    assert gcp_operation("POST", f"{project}/regions/r/operations/op-1/wait") == "compute.regionOperations.wait"
    assert gcp_operation("GET", f"{project}/aggregated/instances") == "compute.instances.aggregatedList"
    assert gcp_operation("DELETE", f"{project}/global/networks/n") == "compute.networks.delete"
