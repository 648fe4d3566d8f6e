"""The sandbox's promise for a VM's boot, on real hosts (network namespaces, sshd): VMs made
together each answer SSH once their boot delay has passed, never before it, and every one of
them does, with the host key its user-data gave. Needs root.

Uses 198.19.2.0/26: not the sandbox's pools, nor the ranges of tests/nodes and tests/boot."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from provisioner.keys import new_ed25519
from provisioner.nodes.ssh import NodeAccess, SshPool, load_private_key
from provisioner.sandbox.emulator import EmulatedVm
from provisioner.sandbox.hosts import LocalHosts, require_support
from provisioner.sandbox.supervisor import Sandbox

pytestmark = pytest.mark.root

GROUP = "198.19.2.0/26"
BOOT_S = 3.0
VMS = 8


def _user_data(host_private: str, host_public: str, cluster_public: str) -> str:
    """What cast's user-data gives the sandbox: the host key pair and the authorized key."""
    return "#cloud-config\n" + yaml.safe_dump({
        "ssh_keys": {"ed25519_private": host_private, "ed25519_public": host_public},
        "ssh_authorized_keys": [cluster_public]})


def test_vms_made_together_answer_ssh_at_their_boot_delay_and_not_before(tmp_path: Path) -> None:
    reason = require_support()
    if reason:
        pytest.skip(f"sandbox hosts need real namespaces and sshd: {reason}")
    cluster = new_ed25519("cluster")
    key_path = tmp_path / "cluster_key"
    key_path.touch(mode=0o600)
    key_path.write_bytes(cluster.private)
    sandbox = Sandbox(tmp_path / "sandbox", boot_delay_s=BOOT_S)
    sandbox.hosts = LocalHosts(f"cb{os.getpid() % 1000000}")
    sandbox.hosts.add_group("gcp", GROUP)
    created = time.time()
    vms, access = {}, {}
    for i in range(VMS):
        pair = new_ed25519(f"vm{i}")
        ip = f"198.19.2.{10 + i}"
        vms[f"g{i}"] = ("gcp", EmulatedVm(str(i), f"vm{i}", ip, f"10.0.0.{10 + i}",
                                          _user_data(pair.private.decode(), pair.public, cluster.public),
                                          created_at=created))
        access[f"g{i}"] = NodeAccess(f"vm{i}", ip, pair.public)  # by host name
    sandbox.running = lambda: dict(vms)  # type: ignore[method-assign]
    stop = threading.Event()
    loop = threading.Thread(target=sandbox.serve, args=(stop,))
    loop.start()
    try:
        probes = 0
        while time.time() < created + BOOT_S:
            for node in access.values():
                try:
                    socket.create_connection((node.host, 22), timeout=0.2).close()
                except OSError:
                    continue  # not wired yet, or wired with port 22 refusing: as it should be
                finally:
                    probes += 1
                answered = time.time()
                assert answered >= created + BOOT_S, f"{node.name} answered SSH {created + BOOT_S - answered:.2f}s early"
            time.sleep(0.05)
        assert probes > 0
        with SshPool(load_private_key(str(key_path))) as pool:
            for host, node in access.items():  # every one comes up, presenting its user-data's host key
                pool.wait_reachable(node, timeout_s=60)
                assert pool.check(node, "hostname").strip() == host
    finally:
        stop.set()
        sandbox.wake()
        loop.join(timeout=10)
        sandbox.stop()
