"""Two sandboxes on one machine, and what a killed one leaves: a second `cast sandbox up` (another
state directory) takes the block's next free /24s while the first runs; once the first one's
supervisor is killed with kill -9, the next `cast sandbox up` removes what
it left (its namespaces, routes and the processes that outlived it), says so, and gets the block's
first /24s again. Needs root (the machine-wide lock)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.retry import wait_until
from provisioner.sandbox.hosts import require_support
from provisioner.sandbox.pools import DEFAULT_POOLS
from provisioner.sandbox.supervisor import STATE_FILE, hosts_prefix

pytestmark = pytest.mark.root


def cast(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provisioner", *args], env={**os.environ, "CAST_HOME": str(home)},
                          capture_output=True, text=True, timeout=180)


def state(home: Path) -> dict:
    return json.loads((home / "sandbox" / STATE_FILE).read_text())


def namespaces(prefix: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    return [line.split()[0] for line in listed if line.startswith(prefix + "-")]


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[list[Path]]:
    reason = require_support()
    if reason:
        pytest.skip(f"the sandbox needs root, namespaces and sshd: {reason}")
    made = [tmp_path / name for name in ("first", "second", "third")]
    yield made
    for home in made:
        if (home / "sandbox" / STATE_FILE).exists():
            cast(home, "sandbox", "down")


def kill_supervisor(home: Path) -> list[int]:
    """kill -9 of the supervisor alone; returns the processes it started, which outlive it."""
    supervisor = int(state(home)["pid"])
    started = [int(p) for ns in namespaces(hosts_prefix(home / "sandbox"))
               for p in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()]
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not running(supervisor), what="the supervisor to die", timeout_s=10)
    return started


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in {"Z", "X"}
    except OSError:
        return False


def test_a_second_sandbox_takes_the_next_pools_and_a_killed_ones_leftovers_are_removed(homes: list[Path]) -> None:
    first, second, third = homes
    up = cast(first, "sandbox", "up")
    assert up.returncode == 0, up.stderr
    assert state(first)["pools"] == DEFAULT_POOLS

    up = cast(second, "sandbox", "up")  # the first one's routes hold 198.18.0.0/22: the next /24s
    assert up.returncode == 0, up.stderr
    taken = set(state(second)["pools"].values())
    assert len(taken) == 4 and not taken & set(DEFAULT_POOLS.values())
    assert cast(second, "sandbox", "down").returncode == 0

    orphans = kill_supervisor(first)
    assert namespaces(hosts_prefix(first / "sandbox")), "kill -9 leaves the namespaces behind: this test's case"
    assert any(running(pid) for pid in orphans), "and processes it started (its DNS server, a delay line)"

    up = cast(third, "sandbox", "up")
    assert up.returncode == 0, up.stderr
    assert "removed what a sandbox that no longer runs left" in up.stderr
    assert hosts_prefix(first / "sandbox") in up.stderr
    assert state(third)["pools"] == DEFAULT_POOLS
    assert not namespaces(hosts_prefix(first / "sandbox"))
    assert not any(running(pid) for pid in orphans)
    assert cast(third, "sandbox", "down").returncode == 0
