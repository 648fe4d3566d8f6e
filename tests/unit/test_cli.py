"""The command line as a user meets it: exit codes, JSON, and nothing written on bad input."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from provisioner.cli import cli

FOUR = ["--cloud", "aws:1:1", "--cloud", "gcp:0:1", "--cloud", "azure:0:1", "--cloud", "digitalocean:0:1"]


def run(args, state_dir):
    return CliRunner().invoke(cli, ["--state-dir", str(state_dir), *args], catch_exceptions=False)


def test_version_and_help():
    out = subprocess.run([sys.executable, "-m", "provisioner", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "0.1.0" in out.stdout
    out = subprocess.run([sys.executable, "-m", "provisioner", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "create-cluster" in out.stdout


def test_the_console_script_keeps_exit_codes_and_flushes_messages(tmp_path):
    out = subprocess.run([sys.executable, "-m", "provisioner", "--state-dir", str(tmp_path), "status", "nope"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: NAME: no cluster named 'nope' (allowed: none)"


def test_help_imports_no_cloud_sdk():
    code = (
        "import sys; sys.argv=['cast','--help']\nfrom provisioner import cli\ntry: cli.cli(prog_name='cast')\nexcept SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3','botocore','google','azure','pydo','paramiko')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_regions_table_and_json(tmp_path):
    result = run(["regions", "--output", "json"], tmp_path)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert len(data["regions"]) >= 8
    east = next(r for r in data["regions"] if r["key"] == "us-east")
    assert east["clouds"]["digitalocean"]["region"] == "nyc1"
    assert {p["verdict"] for p in east["pairs"]} <= {"ok", "warn"}
    table = run(["regions"], tmp_path)
    assert table.exit_code == 0 and "us-east-1" in table.output and "warn" in table.output


def test_dry_run_json_plan(tmp_path):
    result = run(["create-cluster", "demo", "--region", "us-east", *FOUR, "--dry-run", "--output", "json"], tmp_path)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    subnets = {c["cloud"]: c["subnet"] for c in plan["clouds"]}
    assert subnets["aws"].startswith("10.10.") and subnets["gcp"].startswith("10.0.")
    assert subnets["azure"].startswith("10.20.") and 100 <= int(subnets["digitalocean"].split(".")[1]) <= 255
    mesh = [n["mesh_ip"] for c in plan["clouds"] for n in c["nodes"]]
    assert len(mesh) == len(set(mesh)) == 5 and all(m.startswith("10.4.") for m in mesh)
    assert not os.listdir(tmp_path)  # a dry run writes nothing


def test_dry_run_table_warns_on_close_pairs(tmp_path):
    result = run(["create-cluster", "demo", "--region", "us-east", *FOUR, "--dry-run"], tmp_path)
    assert result.exit_code == 0
    assert "demo-do-w1" in result.stdout and "10.4.0.5" in result.stdout
    assert "within 20%" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--region", "atlantis", "--cloud", "aws:1:0"], "unknown region"),
        (["demo", "--region", "ap-tokyo", "--cloud", "digitalocean:1:0"], "not offered in region"),
        (["Demo", "--region", "us-east", "--cloud", "aws:1:0"], "not a DNS label"),
        (["my_demo", "--region", "us-east", "--cloud", "aws:1:0"], "not a DNS label"),
        (["a" * 31, "--region", "us-east", "--cloud", "aws:1:0"], "31 characters"),
        (["demo", "--region", "us-east", "--cloud", "aws:0:3"], "no master"),
        (["demo", "--region", "us-east", "--cloud", "aws:-1:3"], "is negative"),
        (["demo", "--region", "us-east", "--cloud", "aws:x:3"], "not a whole number"),
        (["demo", "--region", "us-east", "--cloud", "aws:1:1", "--cloud", "aws:1:1"], "more than once"),
        (["demo", "--region", "us-east", "--cloud", "aws-1-1"], "not CLOUD:MASTERS:WORKERS"),
        (["demo", "--region", "us-northwest", "--cloud", "aws:1:0", "--cloud", "gcp:0:1"], "too far apart"),
        (
            [
                "demo",
                "--region",
                "us-east",
                "--cloud",
                "aws:1:0",
                "--cloud",
                "digitalocean:0:1",
                "--latency-threshold-ms",
                "5",
            ],
            "too far apart",
        ),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    state = tmp_path / "state"
    result = run(["create-cluster", *args], state)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not state.exists()


def test_broken_and_missing_cluster_files(tmp_path):
    state = tmp_path / "state"
    broken = tmp_path / "c.yaml"
    broken.write_text("name: demo\nregion: us-east\nclouds: {aws: {masters: 1\n")
    result = run(["create-cluster", "-f", str(broken)], state)
    assert result.exit_code == 2 and "line " in result.stderr
    result = run(["create-cluster", "-f", str(tmp_path / "missing.yaml")], state)
    assert result.exit_code == 2 and "no such file" in result.stderr
    assert not state.exists()


def test_list_and_status_on_an_empty_store(tmp_path):
    result = run(["list", "--output", "json"], tmp_path / "s")
    assert result.exit_code == 0 and json.loads(result.output) == []
    result = run(["status", "nope"], tmp_path / "s")
    assert result.exit_code == 2 and "no cluster named 'nope'" in result.stderr
    assert not (tmp_path / "s").exists()


def test_kubeconfig_prints_its_path_and_merges_under_a_context_named_after_the_cluster(tmp_path, monkeypatch):
    from provisioner.kube.kubeadm import ca_cert_hash
    from provisioner.kube.kubeconfig import client_kubeconfig
    from provisioner.state import StateStore
    from tests.kube.pki import make_pki

    store = StateStore(tmp_path / "state")
    row = store.create_cluster("0b1c2d3e-0000-4000-8000-000000000001", "demo", "eu-frankfurt", {})
    pki = make_pki()
    saved = client_kubeconfig(pki.admin_conf(), cluster="demo", server="https://198.18.0.2:6443",
                              ca_hash=ca_cert_hash(pki.ca_pem))
    store.write_secret(row.uuid, "kubeconfig", saved.encode())
    mine = tmp_path / "kube" / "config"
    mine.parent.mkdir()
    mine.write_text("apiVersion: v1\nkind: Config\ncurrent-context: work\nclusters: [{name: w, cluster: {server: 'https://w'}}]\n"
                    "users: [{name: wu, user: {token: x}}]\ncontexts: [{name: work, context: {cluster: w, user: wu}}]\n")
    monkeypatch.setenv("KUBECONFIG", str(mine))

    shown = run(["kubeconfig", "demo"], tmp_path / "state")
    assert shown.exit_code == 0
    assert shown.output.strip() == str(store.secrets_dir(row.uuid) / "kubeconfig")
    assert pki.key_data not in shown.output  # the path, never the credentials

    merged = run(["kubeconfig", "demo", "--merge", "--output", "json"], tmp_path / "state")
    assert json.loads(merged.output)["merged_into"] == str(mine)
    import yaml

    config = yaml.safe_load(mine.read_text())
    assert {c["name"] for c in config["contexts"]} == {"work", "demo"}
    assert config["current-context"] == "work"  # the user's choice is kept
    assert next(c for c in config["clusters"] if c["name"] == "cast-demo")["cluster"]["server"] == "https://198.18.0.2:6443"
    assert oct(mine.stat().st_mode & 0o777) == "0o600"


def test_kubeconfig_of_a_cluster_without_one_says_why(tmp_path):
    from provisioner.state import StateStore

    store = StateStore(tmp_path)
    row = store.create_cluster("0b1c2d3e-0000-4000-8000-000000000002", "bare", "eu-frankfurt", {})
    store.journal(row.uuid, "kubernetes", "bootstrap", "skip", "sandbox host: no kubelet")
    result = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "kubeconfig", "bare"])
    assert result.exit_code == 1
    assert "cluster bare has no kubeconfig: Kubernetes skipped: sandbox host: no kubelet" in result.output
    missing = CliRunner().invoke(cli, ["--state-dir", str(tmp_path), "kubeconfig", "nope"])
    assert missing.exit_code == 2 and "no cluster named 'nope'" in missing.output
