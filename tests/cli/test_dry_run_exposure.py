"""`create-cluster --dry-run` shows what each firewall will let in (issue 21, item 5): the API
only from --api-cidr, WireGuard only from the nodes, NodePorts only when asked; nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def dry_run(home: Path, *extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CAST_", "DIGITALOCEAN_"))}
    env["CAST_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "provisioner", "create-cluster", "demo", "--region", "us-east",
                           "--cloud", "aws:1:1", *extra, "--dry-run", "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not home.exists()
    return {role: {(r["protocol"], r["ports"]): r["sources"] for r in rules}
            for role, rules in json.loads(done.stdout)["clouds"][0]["firewall"].items()}


def test_the_plan_opens_only_what_was_asked(tmp_path: Path) -> None:
    rules = dry_run(tmp_path / "home", "--api-cidr", "203.0.113.0/24", "--api-cidr", "198.51.100.0/24")
    assert rules["master"][("tcp", "6443")] == ["203.0.113.0/24", "198.51.100.0/24"]
    assert rules["master"][("udp", "51820")] == rules["worker"][("udp", "51820")] == []  # the nodes, once they run
    assert set(rules["worker"]) == {("tcp", "22"), ("udp", "51820")}  # no NodePorts by default


def test_nodeports_when_asked(tmp_path: Path) -> None:
    rules = dry_run(tmp_path / "home", "--nodeport-cidr", "192.0.2.0/24")
    assert rules["worker"][("tcp", "30000-32767")] == rules["worker"][("udp", "30000-32767")] == ["192.0.2.0/24"]
    assert rules["master"][("tcp", "6443")] == ["0.0.0.0/0"]  # the default, as before
