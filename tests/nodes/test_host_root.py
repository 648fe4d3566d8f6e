"""A root session on a sandbox host sees nothing of this machine (issue 21, item 1): not its
files, its users, its processes or its name, and it cannot write to the machine or mount,
make devices or change the kernel to reach it; what a VM does (wireguard-go, wg, ip, ping,
python3) still works. Real sshd in namespace hosts, reached as cast reaches a node. Needs
root."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.nodes.ssh import NodeAccess, SshPool, load_private_key

from .conftest import GROUPS, Network, keypair

pytestmark = pytest.mark.root

# All a host's root holds: a fresh VM's directories (bin, lib... as this machine has them).
ROOT_ENTRIES = {"bin", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "mnt", "opt", "proc",
                "root", "run", "sbin", "srv", "tmp", "usr", "var"}


@pytest.fixture(scope="module")
def session(network: Network) -> Iterator[tuple[SshPool, NodeAccess, NodeAccess, str]]:
    """Two hosts (the first with a host key kept here), a pool, and a file this machine has
    and no host should: (pool, first, second, the file's path)."""
    private, public = keypair()
    ip = str(ipaddress.IPv4Network(GROUPS["aws"]).network_address + 30)
    network.hosts.add_host("root-1", "aws", ip, private, network.ssh_public)
    other_ip, other_key = network.add("root-2", "gcp")
    machine_file = Path("/tmp") / f"cast-machine-{secrets.token_hex(4)}"
    machine_file.write_text("this machine's own file\n")
    try:
        with SshPool(load_private_key(str(network.ssh_key_path))) as pool:
            first = NodeAccess("root-1", ip, public)
            pool.wait_reachable(first, timeout_s=30)
            yield pool, first, NodeAccess("root-2", other_ip, other_key), str(machine_file)
            # The host key is the host's alone: nothing of this machine holds it once it runs.
            body = "".join(private.splitlines()[1:-1])
            for path in network.hosts.hosts["root-1"].directory.rglob("*"):
                if path.is_file():
                    assert body not in "".join(path.read_text(errors="replace").split()), f"{path} holds the host key"
    finally:
        machine_file.unlink()


def _status(pool: SshPool, node: NodeAccess, command: str) -> int:
    return pool.run(node, command).status


def test_the_host_sees_none_of_the_machines_files_users_or_processes(session) -> None:
    pool, node, _, machine_file = session
    assert _status(pool, node, f"test -e {machine_file}") != 0, "the machine's /tmp is visible"
    assert _status(pool, node, f"test -e {Path.cwd()}") != 0, "the machine's work tree is visible"
    shadow = pool.check(node, "cat /etc/shadow")
    assert shadow != Path("/etc/shadow").read_text(), "the host reads the machine's /etc/shadow"
    assert [line.split(":")[0] for line in shadow.splitlines()] == ["root", "sshd", "nobody"]
    assert pool.check(node, "ls -A /home") == ""
    assert set(pool.check(node, "ls -A /").split()) <= ROOT_ENTRIES
    # Only the host's own processes (sshd and this session): not pytest, not the machine's init.
    commands = pool.check(node, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
    assert "pytest" not in commands and "sshd" in commands
    assert pool.check(node, "cat /proc/1/comm").strip() == "sshd"
    assert pool.check(node, "hostname").strip() == "root-1" != socket.gethostname()


def test_what_the_host_writes_stays_its_own_and_usr_is_read_only(session) -> None:
    pool, node, other, _ = session
    probe = f"/cast-probe-{secrets.token_hex(4)}"
    try:
        pool.check(node, f"echo mine > {probe}")
        assert pool.check(node, f"cat {probe}") == "mine\n"
        assert not Path(probe).exists(), "the host wrote to the machine's root"
        assert _status(pool, other, f"test -e {probe}") != 0, "another host sees it"
        assert _status(pool, node, f"touch /usr{probe}") != 0
        assert not Path(f"/usr{probe}").exists()
    finally:  # what a host that could write here left
        for path in (Path(probe), Path(f"/usr{probe}")):
            path.unlink(missing_ok=True)


def test_the_host_cannot_mount_make_devices_or_change_the_kernel(session) -> None:
    pool, node, _, _ = session
    for command in ("mount -t tmpfs cast-probe /mnt", "mknod /root/cast-probe-disk b 8 0",
                    "unshare --mount true", "test -w /proc/sys/kernel/core_pattern"):
        assert _status(pool, node, command) != 0, f"`{command}` succeeded on the host"
    # Its network is its own to configure, as on a VM.
    assert pool.check(node, "test -w /proc/sys/net/ipv4/ip_forward && echo writable") == "writable\n"


def test_what_a_node_runs_still_works(session) -> None:
    pool, node, other, _ = session
    assert _status(pool, node, f"ping -c1 -W2 {other.host}") == 0
    pool.check(node, "wireguard-go wg7 >/dev/null 2>&1 && ip link set wg7 up && wg show wg7 listen-port")
    pool.check(node, "ip link del wg7")
    assert pool.check(node, "python3 -c 'print(6 * 7)'") == "42\n"
    assert pool.check(node, "awk 'BEGIN { print 1 }'; cat <(echo substituted)") == "1\nsubstituted\n"
