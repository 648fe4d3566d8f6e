"""Local hosts on their own: the delay line (set, change, remove) and cleanup after a crash.
Needs root; measures with real ping between namespace hosts, no SSH."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from provisioner.errors import CastError
from provisioner.retry import wait_until
from provisioner.sandbox.hosts import LocalHosts, cleanup_leftovers, require_support
from provisioner.sandbox.leftovers import Leftover, dead_sandboxes, remove_dead_sandboxes

from .conftest import keypair

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def hosts() -> Iterator[LocalHosts]:
    reason = require_support()
    if reason:
        pytest.skip(f"local host tests need real namespaces and sshd: {reason}")
    with LocalHosts(f"cl{os.getpid() % 1000000}") as made:
        made.add_group("east", "198.19.0.192/28")
        made.add_group("west", "198.19.0.208/28")
        made.add_group("north", "198.19.0.224/28")
        _, public = keypair()
        for name, group, ip in [("e1", "east", "198.19.0.194"), ("e2", "east", "198.19.0.195"),
                                ("w1", "west", "198.19.0.210"), ("n1", "north", "198.19.0.226")]:
            made.add_host(name, group, ip, keypair()[0], public)
        yield made


def rtt_ms(hosts: LocalHosts, source: str, target_ip: str) -> float:
    """The shortest of a few round trips: a delay line makes every one at least as long as
    its delay, while a busy machine only adds to some of them."""
    out = subprocess.run(["ip", "netns", "exec", hosts.netns_of(source), "ping", "-n", "-q",
                          "-c", "6", "-i", "0.05", "-w", "3", target_ip],
                         capture_output=True, text=True).stdout
    found = re.search(r"= ([\d.]+)/", out)
    assert found, out
    return float(found.group(1))


def test_a_delay_line_delays_only_the_two_groups_and_changes_live(hosts):
    hosts.set_delay("east", "west", 20)
    try:
        assert 19.5 <= rtt_ms(hosts, "e1", "198.19.0.210") < 30
        assert 19.5 <= rtt_ms(hosts, "w1", "198.19.0.194") < 30
        assert rtt_ms(hosts, "e1", "198.19.0.195") < 5  # inside one group
        assert rtt_ms(hosts, "e1", "198.19.0.226") < 5  # a group without a line
        hosts.set_delay("east", "west", 6)
        assert 5.5 <= rtt_ms(hosts, "e1", "198.19.0.210") < 15
    finally:
        hosts.remove_delay("east", "west")
    assert rtt_ms(hosts, "e1", "198.19.0.210") < 5


def test_hosts_reach_nothing_outside_the_public_ranges(hosts):
    routes = subprocess.run(["ip", "-n", hosts.netns_of("e1"), "route"], capture_output=True,
                            text=True, check=True).stdout
    assert "default" not in routes
    done = subprocess.run(["ip", "netns", "exec", hosts.netns_of("e1"), "ping", "-c1", "-W1",
                           "192.0.2.1"], capture_output=True, text=True)
    assert done.returncode != 0


def test_a_host_s_only_neighbour_is_its_gateway_even_for_peers_of_its_group(hosts):
    # The kernel's neighbour table is shared by all namespaces (1024 entries by default):
    # a neighbour per pair of a group overflowed it at 100 hosts and packets were dropped.
    assert rtt_ms(hosts, "e1", "198.19.0.195") < 5  # e2, in e1's group
    assert rtt_ms(hosts, "e1", "198.19.0.210") < 5  # w1, another group
    neighbours = subprocess.run(["ip", "-4", "-n", hosts.netns_of("e1"), "neigh", "show"],
                                capture_output=True, text=True, check=True).stdout.split("\n")
    assert [line.split()[0] for line in neighbours if line.strip()] == ["169.254.0.1"]


def test_cleanup_leftovers_removes_what_a_crashed_run_left():
    prefix = f"cr{os.getpid() % 1000000}"
    crashed = LocalHosts(prefix)  # never closed: as if the process had died
    crashed.add_group("g", "198.19.0.240/29")
    crashed.add_host("h1", "g", "198.19.0.242", keypair()[0], keypair()[1])
    sshd = crashed.hosts["h1"].sshd
    assert sshd is not None and sshd.poll() is None
    cleanup_leftovers(prefix)
    assert sshd.wait(timeout=5) is not None
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{prefix}-" not in listed
    links = subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    assert f"{prefix}-up" not in links
    assert not (crashed.directory).exists()


def _sandbox_like(prefix: str, block: str) -> LocalHosts:
    """Hosts named as a sandbox names its own (cs + six hex digits), with one running sshd."""
    made = LocalHosts(prefix)
    made.add_group("g", block)
    made.add_host("h1", "g", str(ipaddress.IPv4Network(block)[2]), keypair()[0], keypair()[1])
    return made


MAKE_AND_DIE = """
import os, signal, sys
from provisioner.sandbox.hosts import LocalHosts
made = LocalHosts(sys.argv[1])
made.add_group("g", "198.19.0.232/29")
made.add_host("h1", "g", "198.19.0.234", os.environ["HOST_KEY"], os.environ["AUTHORIZED_KEY"])
for pid in [int(p) for p in os.popen("ip netns pids " + made.netns_of("h1")).read().split()]:
    os.kill(pid, signal.SIGKILL)  # its host's processes die with it, as when a session is cut
os.kill(os.getpid(), signal.SIGKILL)  # and then the process that made the hosts: kill -9
"""


def test_what_a_dead_sandbox_left_is_found_and_removed_and_a_live_one_is_left_alone():
    live_prefix, dead_prefix = (f"cs{(os.getpid() + n) % 0xFFFFFF:06x}" for n in (0, 1))
    live = _sandbox_like(live_prefix, "198.19.0.248/29")
    try:
        host_key, authorized = keypair()
        died = subprocess.run([sys.executable, "-c", MAKE_AND_DIE, dead_prefix], capture_output=True, text=True,
                              env={**os.environ, "HOST_KEY": host_key, "AUTHORIZED_KEY": authorized}, timeout=60)
        assert died.returncode == -9, died.stderr
        found: dict[str, Leftover] = {}

        def dead_one_found() -> bool:  # the host's own processes take a moment to die after its init
            found.update({leftover.prefix: leftover for leftover in dead_sandboxes()})
            return dead_prefix in found

        with contextlib.suppress(CastError):
            wait_until(dead_one_found, what="the dead sandbox's processes to end", timeout_s=10)
        assert dead_prefix in found and found[dead_prefix].uplink
        assert live_prefix not in found  # the process that made it runs (this one): it may be in use
        assert dead_prefix in {leftover.prefix for leftover in remove_dead_sandboxes()}
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{dead_prefix}-" not in listed and f"{live_prefix}-" in listed
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
        assert f"{dead_prefix}-up" not in routes
        assert live.hosts["h1"].sshd is not None and live.hosts["h1"].sshd.poll() is None
    finally:
        live.close()
        cleanup_leftovers(dead_prefix)
