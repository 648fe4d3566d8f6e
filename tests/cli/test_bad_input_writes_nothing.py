"""Bad input writes nothing: every command the real command line refuses with exit 2 (and
delete-cluster of a cluster that is not there, exit 0) leaves the state directory as it was,
and a state directory that did not exist still does not."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.regions import load_region_map
from provisioner.spec import build_spec
from provisioner.state import NodeRow, StateStore

UUID = "0b1c2d3e-0000-4000-8000-0000000000aa"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNhc3QtdGVzdC1rZXktbm90LXJlYWwtYXQtYWxs demo"

# Commands naming a cluster that is not there: exit 2, except delete-cluster (exit 0).
NO_SUCH_CLUSTER = [
    (["add-node", "nosuch", "--cloud", "gcp"], 2),
    (["remove-node", "nosuch", "x"], 2),
    (["reconcile", "nosuch"], 2),
    (["reconcile", "nosuch", "--dry-run"], 2),
    (["check-latency", "nosuch"], 2),
    (["status", "nosuch"], 2),
    (["kubeconfig", "nosuch"], 2),
    (["delete-cluster", "nosuch", "--yes"], 0),
]
BAD_FLAGS = [
    ["create-cluster", "demo", "--region", "atlantis", "--cloud", "aws:1:0"],
    ["create-cluster", "demo", "--region", "us-east", "--cloud", "nosuch:1:0"],
    ["create-cluster", "demo", "--region", "us-east", "--cloud", "aws:1:0", "--size", "aws:master:x9.huge"],
    ["create-cluster", "demo", "--region", "us-east", "--cloud", "aws:0:1"],
    ["create-cluster", "demo", "--region", "us-east", "--cloud", "aws:1:0", "--api-cidr", "nope"],
    ["create-cluster", "demo", "--region", "us-east", "--cloud", "aws:1:0", "--nodeport-cidr", "10.0.0.1/8"],
    ["add-node", "demo", "--cloud", "aws", "--count", "0"],
    ["add-node", "demo", "--cloud", "nosuch"],
    ["add-node", "demo", "--cloud", "aws", "--role", "master"],
    ["reconcile", "demo", "--interval", "soon"],
    ["doctor", "nosuch"],
    ["completion", "tcsh"],
]
# Against a store holding `demo` in ap-tokyo (AWS master m1 and worker w1; no DigitalOcean there).
BAD_FOR_DEMO = [
    ["remove-node", "demo", "demo-aws-m1"],  # a master
    ["remove-node", "demo", "demo-aws-w9"],  # no such node
    ["add-node", "demo", "--cloud", "digitalocean"],  # not offered in the cluster's region
    ["create-cluster", "demo", "--region", "us-east", "--cloud", "aws:1:0"],  # it lives in ap-tokyo
]


def cases(pairs: list[tuple[list[str], int]]) -> list[object]:
    return [pytest.param(args, code, id=" ".join(args)) for args, code in pairs]


def cast(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CAST_", "DIGITALOCEAN_"))}
    env["CAST_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "provisioner", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def tree(root: Path, *, dir_times: bool = True) -> dict[str, tuple[int, int] | None] | None:
    """Every path under root with its size and mtime (None when root does not exist). With
    dir_times=False a directory counts by its name only: SQLite makes and removes its -wal and
    -shm files beside a WAL database for any read, which touches the directory's mtime."""
    if not root.exists():
        return None
    found: dict[str, tuple[int, int] | None] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.stat()
        keep = dir_times or not path.is_dir()
        found[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns) if keep else None
    return found


def demo_store(home: Path) -> None:
    regions = load_region_map()
    spec = build_spec(regions, name="demo", region="ap-tokyo", cloud_flags=("aws:1:1",), size_flags=(),
                      ssh_cidrs=(), latency_threshold_ms=None, file=None)
    store = StateStore(home)
    store.create_cluster(UUID, "demo", "ap-tokyo", spec.to_dict())
    for name, role, ip in (("demo-aws-m1", "master", "10.4.0.1"), ("demo-aws-w1", "worker", "10.4.0.2")):
        store.upsert_node(NodeRow(UUID, name, "aws", role, ip, "t3.medium", "running", None, None, None,
                                  HOST_KEY, None))


@pytest.mark.parametrize(("args", "code"), cases(NO_SUCH_CLUSTER + [(a, 2) for a in BAD_FLAGS]))
def test_a_state_directory_that_does_not_exist_is_not_made(tmp_path, args, code):
    home = tmp_path / "cast-home"
    result = cast(home, *args)
    assert result.returncode == code, result.stderr
    assert not home.exists(), sorted(p.name for p in home.rglob("*"))


def test_a_bad_api_cidr_names_the_field(tmp_path):
    result = cast(tmp_path / "home", "create-cluster", "demo", "--region", "us-east", "--cloud", "aws:1:0",
                  "--api-cidr", "nope")
    assert result.returncode == 2 and "--api-cidr" in result.stderr and "'nope'" in result.stderr
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(("args", "code"), cases(NO_SUCH_CLUSTER[:3] + NO_SUCH_CLUSTER[-1:]))
def test_an_empty_state_directory_stays_empty(tmp_path, args, code):
    home = tmp_path / "cast-home"
    home.mkdir()
    before = tree(home)
    time.sleep(0.01)  # a write now would show in the mtimes
    result = cast(home, *args)
    assert result.returncode == code, result.stderr
    assert tree(home) == before


@pytest.mark.parametrize(("args", "code"), cases([(a, 2) for a in BAD_FOR_DEMO] + NO_SUCH_CLUSTER))
def test_an_existing_store_is_left_as_it_was(tmp_path, args, code):
    home = tmp_path / "cast-home"
    demo_store(home)
    before = tree(home, dir_times=False)
    time.sleep(0.01)
    result = cast(home, *args)
    assert result.returncode == code, result.stderr
    assert tree(home, dir_times=False) == before
