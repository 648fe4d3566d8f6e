"""Booting a local host the way the sandbox boots a VM: the boot marker a node's cloud-init
leaves, and the two-step boot (network first, sshd later). Needs root; reads the host over
SSH with cast's own node access, host key pinned."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

import pytest

from provisioner.nodes.ssh import NodeAccess, SshPool, load_private_key
from provisioner.sandbox.hosts import BOOT_MARKER_PATH

from .conftest import GROUPS, Network, keypair

pytestmark = pytest.mark.root

EXPECTED_MARKER = [
    "kubernetes=unsupported",
    "reason=sandbox host: a network-namespace host cannot run a kubelet (no systemd, no cgroup or kernel of its own)",
]


def _read_marker(network: Network, access: NodeAccess) -> str:
    with SshPool(load_private_key(str(network.ssh_key_path))) as pool:
        return pool.check(access, f"cat {BOOT_MARKER_PATH}")


def test_a_booted_host_has_the_boot_marker_in_its_own_namespace(network: Network) -> None:
    ip, host_key = network.add("boot1", "aws")
    text = _read_marker(network, NodeAccess("boot1", ip, host_key))
    assert text.splitlines() == EXPECTED_MARKER
    assert text.endswith("\n")
    # The host's own tmpfs: this machine itself has no marker, and another host has its own.
    assert not Path(BOOT_MARKER_PATH).exists()
    other_ip, other_key = network.add("boot2", "gcp")
    assert _read_marker(network, NodeAccess("boot2", other_ip, other_key)).splitlines() == EXPECTED_MARKER


def test_a_host_wired_first_refuses_ssh_until_it_serves_then_has_its_marker(network: Network) -> None:
    private, public = keypair()
    ip = str(ipaddress.IPv4Network(GROUPS["azure"]).network_address + 40)
    network.hosts.add_host("boot3", "azure", ip, private, network.ssh_public, serve=False)
    with pytest.raises(ConnectionRefusedError) as refused:  # the address answers: no timeout
        socket.create_connection((ip, 22), timeout=3).close()
    assert refused.value.errno == errno.ECONNREFUSED
    network.hosts.serve_ssh("boot3")
    assert _read_marker(network, NodeAccess("boot3", ip, public)).splitlines() == EXPECTED_MARKER
