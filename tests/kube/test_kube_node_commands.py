"""The shell the nodes run, run here on scratch copies: the /etc/hosts edit is idempotent and
replaces cast's earlier line; a kubeadm step runs once, and a half-done one is reset and
retried (a stand-in `kubeadm` on PATH records its calls)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner.kube import bootstrap, paths
from provisioner.kube.bootstrap import KubeNode

from .sample_cluster import CLUSTER, sample_plan

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")

HOSTS = "127.0.0.1 localhost\n198.18.0.99 elsewhere\n"


def _run(command: str, path: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{path}:/usr/bin:/bin" if path else "/usr/bin:/bin"}
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=30)


def _hosts_command(tmp_path: Path, mesh_ip: str) -> str:
    command = bootstrap.hosts_command(CLUSTER, KubeNode("m", "master", mesh_ip, "198.18.0.10"))
    files = " ".join(bootstrap.HOSTS_FILES)
    assert files in command
    return command.replace(files, f"{tmp_path}/hosts {tmp_path}/absent.tmpl")


def test_hosts_entry_is_added_once_and_moved_when_the_address_changes(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    inode = hosts.stat().st_ino
    for _ in range(2):
        assert _run(_hosts_command(tmp_path, "10.4.0.1")).returncode == 0
    assert hosts.read_text() == HOSTS + f"10.4.0.1 api.{CLUSTER}.cast.internal {bootstrap.HOSTS_MARK}\n"
    assert _run(_hosts_command(tmp_path, "10.4.0.7")).returncode == 0
    assert hosts.read_text() == HOSTS + f"10.4.0.7 api.{CLUSTER}.cast.internal {bootstrap.HOSTS_MARK}\n"
    assert hosts.stat().st_ino == inode  # edited in place: /etc/hosts may be a bind mount
    assert not (tmp_path / "absent.tmpl").exists() and not (tmp_path / "hosts.cast").exists()


def _fake_kubeadm(tmp_path: Path, init_status: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "kubeadm"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\ncase "$1" in reset) exit 0;; esac\nexit {init_status}\n')
    fake.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("step", ["init", "join"])
def test_a_kubeadm_step_runs_once_and_a_failed_one_is_reset_and_retried(tmp_path: Path, step: str) -> None:
    plan = sample_plan()
    commands = plan.init.commands if step == "init" else plan.joins[0].commands
    [command] = [c for c in commands if f"kubeadm {step}" in c]
    command = command.replace(paths.CAST_DIR, str(tmp_path))
    calls = tmp_path / "calls"

    failed = _run(command, str(_fake_kubeadm(tmp_path, init_status=1)))
    assert failed.returncode != 0
    assert calls.read_text().splitlines()[0] == "reset --force"

    calls.unlink()
    assert _run(command, str(_fake_kubeadm(tmp_path, init_status=0))).returncode == 0
    made = calls.read_text().splitlines()
    assert made[0] == "reset --force" and made[1].startswith(f"{step} --config {tmp_path}/kubeadm-")

    calls.unlink()
    assert _run(command, str(_fake_kubeadm(tmp_path, init_status=0))).returncode == 0
    assert not calls.exists()  # done: nothing runs again


def _fake_tools(tmp_path: Path, healthy: bool) -> Path:
    """kubeadm (recording its calls) and kubectl and curl answering healthy or not."""
    bin_dir = _fake_kubeadm(tmp_path, init_status=0)
    for tool in ("kubectl", "curl"):
        fake = bin_dir / tool
        fake.write_text(f'#!/bin/sh\necho "{tool} $*" >> {tmp_path}/health\nexit {0 if healthy else 1}\n')
        fake.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("step", ["init", "join"])
def test_a_lost_marker_on_a_healthy_node_never_resets_it(tmp_path: Path, step: str) -> None:
    """`kubeadm reset --force` ran whenever the .done marker was missing: a lost marker wiped a
    live control plane on the next reconcile."""
    plan = sample_plan()
    commands = plan.init.commands if step == "init" else plan.joins[0].commands
    [command] = [c for c in commands if f"kubeadm {step}" in c]
    credentials = tmp_path / "credentials.conf"  # admin.conf (init) or kubelet.conf (join): the node is set up
    credentials.write_text("kind: Config\n")
    command = (command.replace(paths.CAST_DIR, str(tmp_path)).replace(paths.ADMIN_KUBECONFIG, str(credentials))
               .replace(paths.KUBELET_KUBECONFIG, str(credentials)))
    done = tmp_path / f"{step}.done"

    assert _run(command, str(_fake_tools(tmp_path, healthy=True))).returncode == 0
    assert not (tmp_path / "calls").exists()  # neither reset nor init/join
    assert done.exists()  # the marker is back
    assert (tmp_path / "health").read_text().split()[0] == ("kubectl" if step == "init" else "curl")

    done.unlink()
    assert _run(command, str(_fake_tools(tmp_path, healthy=False))).returncode == 0
    assert (tmp_path / "calls").read_text().splitlines()[0] == "reset --force"  # unhealthy: afresh
    assert done.exists()
