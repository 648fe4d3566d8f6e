"""Booting a local host the way the sandbox boots a VM: the boot marker a node's cloud-init
leaves, and the two-step boot (network first, sshd later). Needs root; reads the host over
SSH with cast's own node access, host key pinned."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path

import pytest

from provisioner.nodes.boot import CLOUD_INIT_RESULT, wait_booted
from provisioner.nodes.ssh import NodeAccess, NodeError, SshPool, load_private_key
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


def test_a_node_whose_cloud_init_finished_with_errors_fails_at_once_and_one_without_waits(network: Network) -> None:
    ip, host_key = network.add("boot4", "azure")
    access = NodeAccess("boot4", ip, host_key)
    with SshPool(load_private_key(str(network.ssh_key_path))) as pool:
        # as on a VM whose cloud-init is still running: no marker, no result yet
        pool.check(access, f"rm {BOOT_MARKER_PATH}; mkdir -p {Path(CLOUD_INIT_RESULT).parent}")
        with pytest.raises(NodeError, match="to finish booting"):
            wait_booted(pool, access, timeout_s=1.5)
        # cloud-init's last stage ended with an error (its result file, indented as it writes it)
        result = '{\n "v1": {\n  "datasource": "DataSourceNoCloud",\n  "errors": [\n   "scripts_user failed"\n  ]\n }\n}'
        pool.check(access, f"cat > {CLOUD_INIT_RESULT} <<'END'\n{result}\nEND")
        with pytest.raises(NodeError, match="cloud-init failed while booting"):
            wait_booted(pool, access, timeout_s=60)
        # a clean result and the marker: booted
        pool.check(access, f"echo '{{\"v1\": {{\"errors\": []}}}}' > {CLOUD_INIT_RESULT}; "
                           f"printf 'kubernetes=v1.36.2\\n' > {BOOT_MARKER_PATH}")
        assert wait_booted(pool, access, timeout_s=30).kubernetes == "v1.36.2"
