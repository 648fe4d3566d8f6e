"""Fixtures for node tests: real sshd, real wireguard-go and real ping in network namespaces
made here (provisioner.sandbox.hosts). They need root; elsewhere they skip, saying why.

Tests use 198.19.0.0/24 (split per group), never the sandbox's pools, so a running sandbox
and the tests cannot collide."""

from __future__ import annotations

import io
import ipaddress
import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provisioner.keys import new_ed25519
from provisioner.nodes.ssh import NodeAccess, SshPool, load_private_key
from provisioner.nodes.wireguard import MeshNodeAccess
from provisioner.sandbox.hosts import LocalHosts, require_support

GROUPS = {"aws": "198.19.0.0/26", "gcp": "198.19.0.64/26", "azure": "198.19.0.128/26"}


def keypair() -> tuple[str, str]:
    """An ed25519 key pair: (OpenSSH private key text, OpenSSH public key line)."""
    pair = new_ed25519("cast-test")
    return pair.private.decode(), pair.public


@dataclass
class Network:
    """The module's local hosts, the cluster SSH key, and every secret made for the check
    that none of them ever shows up in output or logs."""

    hosts: LocalHosts
    ssh_key_path: Path
    ssh_private: str
    ssh_public: str
    host_public_keys: dict[str, str] = field(default_factory=dict)
    next_ip: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, group: str) -> tuple[str, str]:
        """Boot host `name` in `group`; returns (public ip, host public key line)."""
        private, public = keypair()
        index = self.next_ip.get(group, 10)
        self.next_ip[group] = index + 1
        ip = str(ipaddress.IPv4Network(GROUPS[group]).network_address + index)
        self.hosts.add_host(name, group, ip, private, self.ssh_public)
        self.host_public_keys[name] = public
        return ip, public

    def node_file(self, name: str, path: str) -> str:
        """Read a file inside host `name`'s own mount namespace, bypassing cast entirely."""
        pid = self.hosts.hosts[name].sshd.pid  # type: ignore[union-attr]
        return subprocess.run(["nsenter", "-t", str(pid), "-m", "cat", path],
                              capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    reason = require_support()
    if reason:
        pytest.skip(f"node tests need real namespaces, sshd and wireguard-go: {reason}")
    private, public = keypair()
    key_path = tmp_path_factory.mktemp("ssh") / "cluster_key"
    key_path.touch(mode=0o600)
    key_path.write_text(private)
    with LocalHosts(f"ct{os.getpid() % 1000000}") as hosts:
        for group, network in GROUPS.items():
            hosts.add_group(group, network)
        yield Network(hosts, key_path, private, public)


@pytest.fixture(scope="module")
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of the module, at DEBUG (paramiko's included)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(old_level)


MESH_NAMES = {"aws": ["aws-1", "aws-2"], "gcp": ["gcp-1", "gcp-2"], "azure": ["azure-1", "azure-2"]}


def mesh_node(network: Network, name: str, group: str, index: int) -> MeshNodeAccess:
    """Host `name` of `network` as a mesh member of `group`, at mesh address 10.4.0.`index`."""
    host = network.hosts.hosts[name]
    access = NodeAccess(name, host.public_ip, network.host_public_keys[name], host.ssh_port)
    return MeshNodeAccess(access, group, f"10.4.0.{index}")


@pytest.fixture(scope="module")
def pool(network: Network) -> Iterator[SshPool]:
    """An SSH pool with the module's cluster key."""
    with SshPool(load_private_key(str(network.ssh_key_path))) as p:
        yield p


@pytest.fixture(scope="module")
def nodes(network: Network) -> list[MeshNodeAccess]:
    """The module's six mesh hosts (MESH_NAMES: two per group), made on first use."""
    result = []
    for group, names in MESH_NAMES.items():
        for name in names:
            network.add(name, group)
            result.append(mesh_node(network, name, group, len(result) + 1))
    return result
