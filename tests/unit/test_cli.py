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
