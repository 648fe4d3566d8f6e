"""Host key rotation after first contact (issue 21, item 4): the key cast injected travels in
user-data, readable through the metadata service, so the node makes its own, cast pins it and
the injected one is gone. Real sshd in namespace hosts: needs root."""

from __future__ import annotations

import ipaddress
import subprocess

import pytest

from provisioner.nodes.hostkey import rotate_host_key, same_key
from provisioner.nodes.ssh import HostKeyMismatchError, NodeAccess, SshPool, connect, load_private_key
from tests.nodes.conftest import GROUPS, Network, keypair


def _boot(network: Network, name: str, group: str) -> tuple[NodeAccess, str]:
    """A host booted with an injected key; returns its access and the injected private key."""
    private, public = keypair()
    index = network.next_ip.get(group, 10)
    network.next_ip[group] = index + 1
    ip = str(ipaddress.IPv4Network(GROUPS[group]).network_address + index)
    network.hosts.add_host(name, group, ip, private, network.ssh_public)
    return NodeAccess(name, ip, public), private


def _key_body(private: str) -> str:
    """A line from the middle of an OpenSSH private key: found in any file holding it."""
    return private.strip().splitlines()[2]


def test_rotation_makes_a_new_key_pins_it_and_removes_the_injected_one(network: Network) -> None:
    access, injected = _boot(network, "rot1", "aws")
    key = load_private_key(str(network.ssh_key_path))
    pending: list[str] = []
    with SshPool(key) as pool:
        pool.wait_reachable(access)
        rotated = rotate_host_key(pool, access, pending.append)
        assert pending == [rotated.host_key]
        assert not same_key(rotated.host_key, access.host_key)
        # New connections see the new key only: the injected one is refused, the new one pinned works.
        with pytest.raises(HostKeyMismatchError):
            connect(access, key).close()
        connect(rotated, key).close()
        # The injected private key is nowhere on the node's /etc/ssh any more.
        found = pool.run(rotated, f"grep -rlF -- '{_key_body(injected)}' /etc/ssh /var/lib/cast").stdout
        assert found == ""
        # Idempotent: a rotated node is not rotated again.
        again: list[str] = []
        assert rotate_host_key(pool, rotated, again.append) == rotated
        assert again == []
    # Outside the host, the machine holds no copy of the injected key either.
    directory = network.hosts.hosts["rot1"].directory
    grep = subprocess.run(["grep", "-rlF", "--", _key_body(injected), str(directory)], capture_output=True, text=True)
    assert grep.stdout == ""


def test_a_rotation_stopped_before_its_commit_resumes_with_the_key_it_recorded(network: Network) -> None:
    access, _ = _boot(network, "rot2", "gcp")
    key = load_private_key(str(network.ssh_key_path))
    pending: list[str] = []

    def stopped(public: str) -> None:  # cast recorded the key, then stopped before the node switched
        pending.append(public)
        raise KeyboardInterrupt

    with SshPool(key) as pool:
        pool.wait_reachable(access)
        with pytest.raises(KeyboardInterrupt):
            rotate_host_key(pool, access, stopped)
        connect(access, key).close()  # nothing switched: the injected key still answers
        rotated = rotate_host_key(pool, access, pending.append)
        assert len(pending) == 2 and pending[0] == pending[1] == rotated.host_key
        connect(rotated, key).close()
        # sshd's public key file is the key it now presents
        assert same_key(pool.check(rotated, "cat /etc/ssh/ssh_host_ed25519_key.pub"), rotated.host_key)
