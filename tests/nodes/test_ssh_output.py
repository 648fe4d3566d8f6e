"""Reading a command's output from a node: both streams at once, one deadline for the whole
command, and a cap on what is kept. Real sshd in a namespace host; needs root."""

from __future__ import annotations

import time

import pytest

from provisioner.nodes import ssh
from provisioner.nodes.ssh import NodeAccess, NodeError, OutputTooLargeError, SshPool, load_private_key

from .conftest import Network

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def node(network: Network):
    ip, public = network.add("out-1", "aws")
    with SshPool(load_private_key(str(network.ssh_key_path))) as pool:
        access = NodeAccess("out-1", ip, public)
        pool.wait_reachable(access, timeout_s=30)
        yield pool, access


def test_a_command_filling_stderr_before_stdout_does_not_stall(node) -> None:
    """Read stdout to its end first, and 3 MiB on stderr (over the SSH window) stalled both."""
    pool, access = node
    started = time.monotonic()
    result = pool.run(access, "head -c 3145728 /dev/zero >&2; echo done", timeout_s=15)
    assert result.status == 0 and result.stdout == "done\n" and len(result.stderr) == 3145728
    assert time.monotonic() - started < 10


def test_the_timeout_is_one_deadline_for_the_whole_command(node) -> None:
    """A command that trickles output never let a per-read timeout fire."""
    pool, access = node
    started = time.monotonic()
    with pytest.raises(NodeError, match="failed"):
        pool.run(access, "for i in 1 2 3 4 5 6 7 8; do echo x; sleep 1; done", timeout_s=2.5)
    assert time.monotonic() - started < 5
    assert pool.run(access, "echo again").stdout == "again\n"  # the pool still works


def test_output_over_the_cap_is_refused(node, monkeypatch: pytest.MonkeyPatch) -> None:
    pool, access = node
    monkeypatch.setattr(ssh, "OUTPUT_LIMIT", 1024 * 1024)
    with pytest.raises(OutputTooLargeError, match="more than 1048576 bytes to stdout"):
        pool.run(access, "head -c 2097152 /dev/zero", timeout_s=15)
    assert pool.run(access, "echo fine").stdout == "fine\n"
