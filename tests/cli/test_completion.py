"""Shell completion as the shell asks for it: `_CAST_COMPLETE`, COMP_WORDS and COMP_CWORD given
to the real command line, against a state store made through StateStore."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.state import NodeRow, StateStore

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNhc3QtdGVzdC1rZXktbm90LXJlYWwtYXQtYWxs x"
CLUSTER_COMMANDS = ["add-node", "remove-node", "delete-cluster", "reconcile", "status", "kubeconfig", "check-latency"]


def complete(words: str, home: Path, shell: str = "bash") -> list[str]:
    """What cast offers for the last word of `words` (a trailing space: a new, empty word)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAST_")}
    parts = words.split(" ")
    env.update(_CAST_COMPLETE=f"{shell}_complete", COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1),
               CAST_HOME=str(home))
    result = subprocess.run([sys.executable, "-m", "provisioner"], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line.startswith("plain,")]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store with two clusters: alpha (a master and two workers) and beta (a master)."""
    store = StateStore(tmp_path / "cast-home")
    alpha = store.create_cluster("0b1c2d3e-0000-4000-8000-0000000000a1", "alpha", "us-east", {})
    beta = store.create_cluster("0b1c2d3e-0000-4000-8000-0000000000b2", "beta", "us-east", {})
    nodes = [(alpha.uuid, "alpha-aws-m1", "master"), (alpha.uuid, "alpha-aws-w1", "worker"),
             (alpha.uuid, "alpha-gcp-w1", "worker"), (beta.uuid, "beta-aws-m1", "master")]
    for i, (uuid, name, role) in enumerate(nodes, start=1):
        store.upsert_node(NodeRow(uuid, name, name.split("-")[1], role, f"10.4.0.{i}", "t3.medium", "running",
                                  None, None, None, HOST_KEY, None))
    return store.root


@pytest.mark.parametrize("command", CLUSTER_COMMANDS)
def test_every_command_taking_a_cluster_name_completes_the_stored_clusters(home, command):
    assert complete(f"cast {command} ", home) == ["alpha", "beta"]
    assert complete(f"cast {command} b", home) == ["beta"]


def test_remove_node_completes_the_workers_of_the_cluster_named(home):
    assert complete("cast remove-node alpha ", home) == ["alpha-aws-w1", "alpha-gcp-w1"]
    assert complete("cast remove-node alpha alpha-g", home) == ["alpha-gcp-w1"]
    assert complete("cast remove-node beta ", home) == []  # masters cannot be removed
    assert complete("cast remove-node nosuch ", home) == []


def test_the_state_dir_flag_is_honoured(home, tmp_path):
    assert complete(f"cast --state-dir {home} status ", tmp_path / "elsewhere") == ["alpha", "beta"]


def test_a_missing_store_completes_nothing_and_creates_nothing(tmp_path):
    home = tmp_path / "cast-home"
    assert complete("cast status ", home) == []
    assert complete("cast remove-node alpha ", home) == []
    assert not home.exists()


def test_zsh_is_offered_the_same_names(home):
    env = {**os.environ, "_CAST_COMPLETE": "zsh_complete", "COMP_WORDS": "cast status ", "COMP_CWORD": "2",
           "CAST_HOME": str(home)}
    out = subprocess.run([sys.executable, "-m", "provisioner"], capture_output=True, text=True, env=env).stdout
    assert out.split("\n")[:6] == ["plain", "alpha", "_", "plain", "beta", "_"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_command_prints_each_shells_script(shell, tmp_path):
    result = subprocess.run([sys.executable, "-m", "provisioner", "completion", shell], capture_output=True,
                            text=True, env={**os.environ, "CAST_HOME": str(tmp_path / "h")})
    assert result.returncode == 0, result.stderr
    assert "_CAST_COMPLETE" in result.stdout and f"{shell}_complete" in result.stdout
    assert not (tmp_path / "h").exists()


def test_an_unknown_shell_is_bad_input_naming_the_shells():
    result = subprocess.run([sys.executable, "-m", "provisioner", "completion", "tcsh"], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr
