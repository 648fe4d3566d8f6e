"""What the rendered user-data does on a node: the keys cast relies on, the pinned Kubernetes
repository, what differs between roles and clouds, and the boot marker's verdict (its shell
run here against a scratch directory, with the node's tools faked on PATH)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.cloudinit import BOOT_MARKER, STATE_DIR, read_bootstrap
from provisioner.keys import KeyPair
from provisioner.kube.versions import KUBERNETES_MINOR
from provisioner.regions import CLOUDS, ROLES

from .conftest import Render

REQUIRED_PACKAGES = {"wireguard-tools", "iputils-ping", "containerd", "ca-certificates", "curl", "gpg"}


def parsed(text: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def scripts(data: dict[str, Any]) -> list[str]:
    """The runcmd entries' shell scripts (every entry is [sh, -c, script])."""
    return [entry[2] for entry in data["runcmd"]]


def script_with(data: dict[str, Any], needle: str) -> str:
    found = [s for s in scripts(data) if needle in s]
    assert len(found) == 1, f"{len(found)} runcmd scripts contain {needle!r}"
    return found[0]


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("role", ROLES)
def test_sandbox_reads_the_host_key_and_authorized_key(render: Render, host_key: KeyPair,
                                                       cluster_key: KeyPair, role: str, cloud: str) -> None:
    boot = read_bootstrap(render(role, cloud))
    assert boot is not None
    assert boot.host_key_private == host_key.private.decode()
    assert boot.host_key_public == host_key.public
    assert boot.authorized_keys == (cluster_key.public,)


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("role", ROLES)
def test_the_private_host_key_appears_once_and_only_as_the_host_key(render: Render, host_key: KeyPair,
                                                                    role: str, cloud: str) -> None:
    text = render(role, cloud)
    body = host_key.private.decode().splitlines()[1:-1]
    assert all(text.count(line) == 1 for line in body)
    assert text.count("PRIVATE KEY-----") == 2  # one BEGIN, one END
    data = parsed(text)
    without_key = {**data, "ssh_keys": {k: v for k, v in data["ssh_keys"].items() if k != "ed25519_private"}}
    assert not any(line in yaml.safe_dump(without_key) for line in body)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_root_logs_in_with_the_cluster_key_only(render: Render, cloud: str) -> None:
    data = parsed(render("worker", cloud))
    assert data["disable_root"] is False
    assert data["ssh_pwauth"] is False
    assert data["ssh_deletekeys"] is True
    assert data["ssh_genkeytypes"] == ["ed25519"]  # the type cast supplies: nothing else is made
    assert set(data["ssh_keys"]) == {"ed25519_private", "ed25519_public"}
    assert data["hostname"] == "demo-" + {"azure": "az", "digitalocean": "do"}.get(cloud, cloud) + "-w1"


def test_packages_and_the_pinned_kubernetes_repository(render: Render) -> None:
    data = parsed(render("worker", "aws"))
    assert set(data["packages"]) >= REQUIRED_PACKAGES
    repository = f"https://pkgs.k8s.io/core:/stable:/v{KUBERNETES_MINOR}/deb/"
    source = script_with(data, "sources.list.d/kubernetes.list")
    assert f"key={STATE_DIR}/kubernetes-release.key" in source
    assert f'curl -fsSL --retry 5 -o "$key" {repository}Release.key' in source
    assert "gpg --batch --yes --dearmor -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg" in source
    assert f"deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] {repository} /" in source
    install = script_with(data, "apt-get install")
    assert "install -y -q kubeadm kubelet kubectl" in install
    assert "apt-mark hold kubeadm kubelet kubectl" in install
    assert "systemctl enable kubelet" in install
    # the repository is added before the install, and both before the marker
    order = scripts(data)
    assert order.index(source) < order.index(install) < len(order) - 1


def test_node_preparation_for_kubeadm(render: Render) -> None:
    data = parsed(render("worker", "digitalocean"))
    files = {f["path"]: f["content"] for f in data["write_files"]}
    assert files["/etc/modules-load.d/cast-kubernetes.conf"].split() == ["overlay", "br_netfilter"]
    sysctls = dict(line.split(" = ") for line in files["/etc/sysctl.d/90-cast.conf"].splitlines())
    assert sysctls == {"net.bridge.bridge-nf-call-iptables": "1", "net.bridge.bridge-nf-call-ip6tables": "1",
                       "net.ipv4.ip_forward": "1"}
    assert "modprobe overlay && modprobe br_netfilter && sysctl --system" in script_with(data, "modprobe")
    swap = script_with(data, "swapoff -a")
    assert "/etc/fstab" in swap
    containerd = script_with(data, "containerd config default")
    assert "SystemdCgroup = true" in containerd
    assert "systemctl restart containerd && systemctl enable containerd" in containerd


@pytest.mark.parametrize("cloud", CLOUDS)
def test_master_and_worker_differ_only_by_the_image_pre_pull(render: Render, cloud: str) -> None:
    master = parsed(render("master", cloud, node="demo-n1"))
    worker = parsed(render("worker", cloud, node="demo-n1"))
    assert {k: v for k, v in master.items() if k != "runcmd"} == {k: v for k, v in worker.items() if k != "runcmd"}
    m, w = scripts(master), scripts(worker)
    extra = m[len(w) - 1:-1]
    assert m[:len(w) - 1] + m[-1:] == w, "the master's commands are the worker's plus the pre-pull, before the marker"
    assert extra and all("kubeadm config images pull" in s for s in extra)
    assert not any("images pull" in s for s in w)


def test_only_gcp_keeps_its_guest_agent_off_the_host_keys(render: Render) -> None:
    def files(cloud: str) -> dict[str, str]:
        return {f["path"]: f["content"] for f in parsed(render("worker", cloud, node="demo-n1"))["write_files"]}

    gcp = files("gcp")
    assert "set_host_keys = false" in gcp.pop("/etc/default/instance_configs.cfg")
    others = [files(c) for c in CLOUDS if c != "gcp"]
    assert all(f == gcp for f in others)
    assert all(parsed(render("worker", c, node="demo-n1")) == parsed(render("worker", "aws", node="demo-n1"))
               for c in ("azure", "digitalocean"))


@pytest.mark.parametrize("role", ROLES)
def test_every_command_is_an_argv_list_of_valid_shell(render: Render, role: str) -> None:
    data = parsed(render(role, "aws"))
    assert all(isinstance(entry, list) and entry[:2] == ["sh", "-c"] and len(entry) == 3 for entry in data["runcmd"])
    for script in scripts(data):
        check = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True, check=False)
        assert check.returncode == 0, f"{check.stderr}\n{script}"


def test_the_marker_path_is_the_one_cast_waits_for(render: Render) -> None:
    boot = pytest.importorskip("provisioner.nodes.boot")
    assert boot.BOOT_MARKER == BOOT_MARKER
    last = scripts(parsed(render("worker", "gcp")))[-1]
    assert last.rstrip().endswith(f"mv -f {BOOT_MARKER}.tmp {BOOT_MARKER}")


# --- the boot marker's verdict, run in a scratch directory ---------------------------------

def fake_tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def run_steps(render: Render, tmp_path: Path, needles: list[str], tools: dict[str, str]) -> dict[str, str]:
    """Run the worker's runcmd scripts that contain `needles` (in order), with STATE_DIR moved
    under tmp_path and `tools` faked on PATH; return the marker's key=value lines."""
    state = tmp_path / "state"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in tools.items():
        fake_tool(bin_dir, name, script)
    data = parsed(render("worker", "aws"))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for needle in needles:
        script = script_with(data, needle).replace(STATE_DIR, str(state))
        subprocess.run(["sh", "-c", script], env=env, check=True, timeout=30)
    marker = state / "boot-done"
    assert not (state / "boot-done.tmp").exists()
    return dict(line.split("=", 1) for line in marker.read_text().splitlines())


CLEAN, PACKAGES, MARKER = "rm -f", "dpkg-query", "boot-done.tmp"
ALL_INSTALLED = "printf 'ii '\n"


def test_marker_names_the_installed_version_when_every_step_succeeded(render: Render, tmp_path: Path) -> None:
    marker = run_steps(render, tmp_path, [CLEAN, PACKAGES, MARKER],
                       {"dpkg-query": ALL_INSTALLED, "kubeadm": "echo v1.36.2\n"})
    assert marker == {"kubernetes": "v1.36.2"}


def test_marker_gives_the_first_failed_steps_reason(render: Render, tmp_path: Path) -> None:
    not_containerd = 'case "$*" in *containerd*) exit 1;; esac\nprintf "ii "\n'
    marker = run_steps(render, tmp_path, [CLEAN, PACKAGES, MARKER],
                       {"dpkg-query": not_containerd, "kubeadm": "echo v1.36.2\n"})
    assert marker == {"kubernetes": "unavailable", "reason": "packages not installed: containerd"}


def test_marker_says_unavailable_when_kubeadm_does_not_run(render: Render, tmp_path: Path) -> None:
    marker = run_steps(render, tmp_path, [CLEAN, PACKAGES, MARKER],
                       {"dpkg-query": ALL_INSTALLED, "kubeadm": "exit 127\n"})
    assert marker == {"kubernetes": "unavailable", "reason": "kubeadm version failed"}


def test_a_stale_marker_and_old_failures_are_cleared_first(render: Render, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "boot-done").write_text("kubernetes=v1.35.0\n")
    (state / "boot-failures").write_text("an earlier boot's failure\n")
    marker = run_steps(render, tmp_path, [CLEAN, PACKAGES, MARKER],
                       {"dpkg-query": ALL_INSTALLED, "kubeadm": "echo v1.36.2\n"})
    assert marker == {"kubernetes": "v1.36.2"}
