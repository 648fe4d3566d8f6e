"""Real boots: a master and a worker booted at once as QEMU guests (provisioner/sandbox/vm_guest.py)
from the user-data cast renders for them, each effect the cloud-init templates promise checked
from inside the guest over SSH with the node's pinned host key, then the two-node mesh over
kernel WireGuard and `cast check-latency` across the delay line between their clouds.

The guest is Debian 12 (what Debian's packages build offline), the real clouds run Ubuntu
24.04; where the two differ for a step, the check says so. Kubernetes comes from a stand-in
repository the sandbox serves (standin_repo.py); test_sandbox_vm_hosts.py boots a third VM
through the sandbox without it, whose marker names the first failed step.

Several minutes under TCG (no KVM here): run alone, under the root-test lock.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest
import yaml

from provisioner.cloudinit import BOOT_FAILURES, BOOT_MARKER, AptSource, render_user_data
from provisioner.keys import new_ed25519
from provisioner.nodes.boot import wait_booted
from provisioner.nodes.ssh import NodeAccess, SshPool
from provisioner.nodes.wireguard import MeshNodeAccess, apply_mesh
from provisioner.sandbox.vm_repo import RepoServer

from . import standin_repo
from .conftest import DELAY_MS, GROUPS, BootLab

pytestmark = [pytest.mark.root, pytest.mark.timeout(1500)]

SSH_TIMEOUT_S = 600.0  # TCG on 2 shared cores: ~1-2 min, with a wide margin
MARKER_TIMEOUT_S = 600.0
PROJECT = Path(__file__).resolve().parents[2]


def _ip_in(group: str, index: int) -> str:
    import ipaddress

    return str(ipaddress.IPv4Network(GROUPS[group]).network_address + index)


def _boot(lab: BootLab, nodes: list[tuple[str, str, str, AptSource | None]]) -> dict[str, tuple[NodeAccess, str]]:
    """Render each node's user-data as cast does and boot it: {name: (access, user-data)}."""
    booted = {}
    for name, role, cloud, source in nodes:
        host_key = new_ed25519(name)
        user_data = render_user_data(cluster="boot", node=name, role=role, cloud=cloud,
                                     host_key_private=host_key.private, host_key_public=host_key.public,
                                     authorized_key=lab.client.public, apt_source=source)
        ip = _ip_in(cloud, 10 + len(lab.timeline.rows))
        guest = lab.vms.start(name, cloud, ip, user_data)  # type: ignore[attr-defined]
        lab.timeline.mark(name, "qemu", guest.started_at)
        booted[name] = (NodeAccess(name, ip, host_key.public), user_data)
    return booted


def _wait(lab: BootLab, pool: SshPool, nodes: dict[str, tuple[NodeAccess, str]]) -> dict[str, str]:
    """Wait for every node's pinned-key SSH, then its marker (all at once): {name: marker text}."""
    def one(access: NodeAccess) -> str:
        pool.wait_reachable(access, timeout_s=SSH_TIMEOUT_S)
        lab.timeline.mark(access.name, "ssh")
        # cast's own probe (wait_booted) runs `cloud-init status` until the marker is there: a
        # fresh Python each time, ~30 s of emulated CPU that slows the boot it waits for. Poll
        # for the file first, then read the marker through cast's probe.
        deadline = time.monotonic() + MARKER_TIMEOUT_S
        while pool.run(access, f"test -f {BOOT_MARKER}").status != 0 and time.monotonic() < deadline:
            time.sleep(2)
        wait_booted(pool, access, timeout_s=10)
        lab.timeline.mark(access.name, "marker")
        return pool.check(access, f"cat {BOOT_MARKER}")

    results = pool.map([a for a, _ in nodes.values()], one)
    return dict(zip(nodes, [results[n] for n in nodes], strict=True))


def _sh(pool: SshPool, node: NodeAccess, command: str) -> str:
    return pool.check(node, command).strip()


def _check_cloud_init(pool: SshPool, node: NodeAccess) -> None:
    status = _sh(pool, node, "cloud-init status --long")
    assert "status: done" in status, status
    result = json.loads(_sh(pool, node, "cat /run/cloud-init/result.json"))
    assert result["v1"]["errors"] == [], result
    assert "DataSourceNoCloud" in result["v1"]["datasource"]
    failed = _sh(pool, node, "grep -E 'finish: .*: FAIL' /var/log/cloud-init.log || true")
    assert failed == "", failed
    warnings = _sh(pool, node, "grep -E ' (WARNING|DEPRECATED)' /var/log/cloud-init.log || true")
    print(f"{node.name}: cloud-init warnings:\n{warnings or '(none)'}")


def _check_node(pool: SshPool, node: NodeAccess, user_data: str, key_path: Path) -> None:
    # host keys: the one cast made, and no other (the pinned-key session already proved sshd
    # serves it)
    assert _sh(pool, node, "ls /etc/ssh/ | grep host_ | sort").split() == [
        "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]
    assert _sh(pool, node, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2] == node.host_key.split()[:2]
    # root by key only; a password is refused by the server itself. `sshd -T` is the effective
    # config: Debian 12's cloud-init 22.4 edits sshd_config itself, Ubuntu 24.04's writes
    # sshd_config.d/50-cloud-init.conf (and its image adds 60-cloudimg-settings.conf); Ubuntu
    # also starts sshd from ssh.socket, Debian from ssh.service after cloud-init.
    config = dict(line.split(" ", 1) for line in _sh(pool, node, "sshd -T").splitlines() if " " in line)
    assert config["passwordauthentication"] == "no"
    assert config["permitrootlogin"] in ("prohibit-password", "without-password")
    transport = paramiko.Transport((node.host, node.port))
    try:
        transport.connect()
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            transport.auth_password("root", "not-the-password")
        assert "password" not in refused.value.allowed_types
        assert "publickey" in refused.value.allowed_types
    finally:
        transport.close()
    # swap: off now, and commented out of fstab. The Debian guest has a swap disk (the image's
    # fstab names it by label) so that the step has something to do; Ubuntu 24.04's cloud
    # images have no swap, and the step then changes nothing.
    assert _sh(pool, node, "swapon --show --noheadings") == ""
    fstab = _sh(pool, node, "cat /etc/fstab").splitlines()
    assert "# off for Kubernetes: LABEL=cast-swap none swap sw,nofail 0 0" in fstab
    assert not [line for line in fstab if " swap " in line and not line.startswith("#")]
    # modules and sysctls (Debian 12's kernel is 6.1, Ubuntu 24.04's 6.8: both build overlay and
    # br_netfilter as modules, which is why the step loads them)
    modules = _sh(pool, node, "cut -d' ' -f1 /proc/modules").split()
    assert {"overlay", "br_netfilter"} <= set(modules)
    sysctls = _sh(pool, node, "sysctl -n net.bridge.bridge-nf-call-iptables "
                              "net.bridge.bridge-nf-call-ip6tables net.ipv4.ip_forward").split()
    assert sysctls == ["1", "1", "1"]
    # containerd with the systemd cgroup driver (Debian 12's containerd is 1.6, Ubuntu 24.04's
    # 1.7: both print `SystemdCgroup = false` in their default config, which the step edits)
    assert _sh(pool, node, "systemctl is-active containerd") == "active"
    assert _sh(pool, node, "grep -c 'SystemdCgroup = true' /etc/containerd/config.toml") == "1"
    # the host firewall on wg0
    assert _sh(pool, node, "systemctl is-active cast-wg0-firewall") == "active"
    assert "table inet cast_wg0" in _sh(pool, node, "nft list table inet cast_wg0")
    # the packages, held; the kubelet enabled
    assert _sh(pool, node, "apt-mark showhold").split() == ["kubeadm", "kubectl", "kubelet"]
    assert _sh(pool, node, "systemctl is-enabled kubelet") == "enabled"
    # every file cloud-init wrote, with the mode and content the user-data gives
    for item in yaml.safe_load(user_data)["write_files"]:
        mode, owner = _sh(pool, node, f"stat -c '%a %U:%G' {shlex.quote(item['path'])}").split()
        assert (int(mode, 8), owner) == (int(item["permissions"], 8), "root:root"), item["path"]
        assert pool.check(node, f"cat {shlex.quote(item['path'])}") == item["content"], item["path"]
    assert _sh(pool, node, "hostname") == node.name


def test_master_and_worker_boot_from_cast_user_data(lab: BootLab, tmp_path: Path) -> None:
    repo = standin_repo.build(tmp_path)
    server = RepoServer(lab.hosts, "aws", repo.directory)  # type: ignore[arg-type]
    url = server.start()
    # the master fetches the key from a URL; the worker gets it inline (a key file in the spec)
    by_url = AptSource(url, repo.fingerprint, key_url=url + repo.key_url_path)
    inline = AptSource(url, repo.fingerprint, key_text=(repo.directory / repo.key_url_path).read_text())
    nodes = _boot(lab, [("boot-master", "master", "aws", by_url), ("boot-worker", "worker", "gcp", inline)])
    key = paramiko.Ed25519Key.from_path(str(lab.key_path))
    try:
        with SshPool(key) as pool:
            _check_master_and_worker(lab, pool, nodes, repo, tmp_path)
    finally:
        server.stop()
        for name in nodes:  # at most two guests at a time on this machine's two cores
            lab.vms.stop(name)  # type: ignore[attr-defined]


def _check_master_and_worker(lab: BootLab, pool: SshPool, nodes: dict[str, tuple[NodeAccess, str]],
                             repo: standin_repo.StandInRepo, tmp_path: Path) -> None:
    markers = _wait(lab, pool, nodes)
    for name, (access, user_data) in nodes.items():
        version = _sh(pool, access, "kubeadm version -o short")
        assert version == f"v{repo.version}"
        assert markers[name] == f"kubernetes={version}\n"
        assert _sh(pool, access, f"cat {BOOT_FAILURES} 2>/dev/null || true") == ""
        assert _sh(pool, access, "dpkg-query -W -f '${Version}' kubeadm") == f"{repo.version}-1.1"
        _check_cloud_init(pool, access)
        _check_node(pool, access, user_data, lab.key_path)
    _mesh_and_latency(lab, pool, nodes, tmp_path)


def _mesh_and_latency(lab: BootLab, pool: SshPool, nodes: dict[str, tuple[NodeAccess, str]], tmp: Path) -> None:
    members = [MeshNodeAccess(access, cloud, f"10.4.0.{i + 1}", access.host)
               for i, ((access, _), cloud) in enumerate(zip(nodes.values(), GROUPS, strict=True))]
    report = apply_mesh(members, pool)
    assert report.ok, report.missing_handshakes
    for access, _ in nodes.values():
        # the kernel's WireGuard: the guest has no wireguard-go
        assert "wireguard" in _sh(pool, access, "ip -d link show wg0")
        assert "wireguard" in _sh(pool, access, "cut -d' ' -f1 /proc/modules").split()
        assert _sh(pool, access, "command -v wireguard-go || echo none") == "none"
    inventory = tmp / "inventory.json"
    inventory.write_text(json.dumps({"nodes": [
        {"name": m.name, "group": m.group, "public_ip": m.endpoint_ip, "mesh_ip": m.mesh_ip,
         "ssh_port": 22, "host_key": m.access.host_key} for m in members]}))
    env = dict(os.environ, CAST_HOME=str(tmp / "cast-home"))
    done = subprocess.run([sys.executable, "-m", "provisioner", "check-latency", "--inventory", str(inventory),
                           "--ssh-key", str(lab.key_path), "--threshold-ms", "100", "--output", "json"],
                          capture_output=True, text=True, env=env, cwd=PROJECT, timeout=300)
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    print("check-latency:", json.dumps(measured)[:600])
    pairs = {(p["source"], p["target"]): p for p in measured["pairs"]}
    assert set(pairs) == {("boot-master", "boot-worker"), ("boot-worker", "boot-master")}, pairs
    for pair in pairs.values():
        # the delay line between the two clouds' bridges is in the path (TCG's crypto adds more)
        assert pair["loss"] == 0 and pair["avg_ms"] >= DELAY_MS, pair
