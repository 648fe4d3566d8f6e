"""The mesh's handshakes on real hosts (namespace hosts, sshd, wireguard-go): the router
between them counts every WireGuard message by type (nftables), so a test sees each
handshake initiation, whether it was answered, and from which side it came.

A node that starts a handshake before its peer knows it has its initiation dropped and
waits REKEY_TIMEOUT (5 s) to retry; two sides starting at once cross their handshakes. The
mesh is applied so that neither happens: one initiation and one response per pair."""

from __future__ import annotations

import subprocess

import pytest

from provisioner.nodes.latency import measure_latency
from provisioner.nodes.ssh import SshPool
from provisioner.nodes.wireguard import MeshNodeAccess, MeshReport, apply_mesh

from .conftest import Network, mesh_node

pytestmark = pytest.mark.root

KINDS = {1: "initiation", 2: "response", 3: "cookie", 4: "data"}


def nft(network: Network, *args: str, script: str | None = None) -> str:
    return subprocess.run(["ip", "netns", "exec", network.hosts.inet, "nft", *args], input=script,
                          capture_output=True, text=True, check=True).stdout


class Messages:
    """Handshake messages the hosts send each other, counted by the router, by kind and
    by (sender, receiver) public address."""

    def __init__(self, network: Network) -> None:
        self.network = network
        nft(network, "-f", "-", script="add table ip meshcount\nadd chain ip meshcount seen "
            "{ type filter hook forward priority 0 ; }\n")
        self.reset()

    def reset(self) -> None:
        """Count from now on: one rule per kind and sender -> receiver (log-free counters)."""
        nft(self.network, "flush", "chain", "ip", "meshcount", "seen")
        ips = [h.public_ip for h in self.network.hosts.hosts.values()]
        rules = [f"add rule ip meshcount seen ip saddr {a} ip daddr {b} udp dport 51820 @th,64,8 {kind} "
                 f"counter comment \"{name} {a} {b}\""
                 for kind, name in KINDS.items() for a in ips for b in ips if a != b]
        nft(self.network, "-f", "-", script="\n".join(rules) + "\n")

    def counted(self) -> dict[tuple[str, str, str], int]:
        """{(kind, sender ip, receiver ip): messages} for every nonzero counter."""
        found = {}
        for line in nft(self.network, "list", "chain", "ip", "meshcount", "seen").splitlines():
            words = line.replace('"', "").split()
            if "packets" in words and words[words.index("packets") + 1] != "0":
                found[tuple(words[-3:])] = int(words[words.index("packets") + 1])
        return found  # type: ignore[return-value]


@pytest.fixture(scope="module")
def messages(network: Network, nodes: list[MeshNodeAccess]) -> Messages:
    return Messages(network)


@pytest.fixture(scope="module")
def first(nodes: list[MeshNodeAccess], pool: SshPool, messages: Messages) -> tuple[MeshReport, dict]:
    messages.reset()
    report = apply_mesh(nodes, pool)
    return report, messages.counted()


def one_handshake_per_pair(counted: dict, pairs: set[tuple[str, str]]) -> None:
    initiations = {(a, b): n for (kind, a, b), n in counted.items() if kind == "initiation"}
    responses = {(b, a): n for (kind, a, b), n in counted.items() if kind == "response"}
    assert not [k for k in counted if k[0] == "cookie"], counted
    # Every initiation answered (none dropped by a peer that did not know its sender yet),
    # and one per pair, from one side (no crossing handshakes, no retries).
    assert initiations == responses, f"unanswered initiations: {initiations} vs responses {responses}"
    assert {frozenset(p) for p in initiations} == {frozenset(p) for p in pairs}
    assert all(n == 1 for n in initiations.values()) and len(initiations) == len(pairs), initiations


def test_bring_up_makes_one_answered_handshake_per_pair(first, nodes, pool):
    report, counted = first
    assert report.ok and report.started == tuple(sorted(n.name for n in nodes))
    ips = [n.access.host for n in nodes]
    one_handshake_per_pair(counted, {(a, b) for a in ips for b in ips if a < b})
    for n in nodes:  # and the keepalives are on once the sessions exist
        keepalives = pool.check(n.access, "wg show wg0 persistent-keepalive").split()
        assert keepalives[1::2] == ["25"] * (len(nodes) - 1)
        assert "PersistentKeepalive = 25" in pool.check(n.access, "cat /etc/wireguard/wg0.conf")


def test_reapplying_a_live_mesh_makes_no_handshake(first, nodes, pool, messages):
    messages.reset()
    again = apply_mesh(nodes, pool)
    assert again.ok and again.updated == tuple(sorted(n.name for n in nodes))
    handshakes = {k: n for k, n in messages.counted().items() if k[0] != "data"}
    assert handshakes == {}  # every session was kept; none was started again


def test_a_check_on_a_live_mesh_pings_each_pair_once_without_warm_up(first, nodes, pool, messages):
    messages.reset()
    report = measure_latency(pool, nodes, count=2, interval_s=0.05)
    assert len(report.pairs) == 30 and all(p.received == p.sent == 2 for p in report.pairs)
    data = sum(n for k, n in messages.counted().items() if k[0] == "data")
    # 15 pairs x 2 echoes x (echo + reply); a keepalive or two may fall in the window.
    # Pinging each pair from both ends, or a warm-up echo per peer, would be 90 or more.
    assert 60 <= data <= 66, messages.counted()


def test_a_joining_node_makes_one_answered_handshake_with_each_peer(first, nodes, pool, network, messages):
    network.add("aws-3", "aws")
    newcomer = mesh_node(network, "aws-3", "aws", 7)
    messages.reset()  # the new host's address gets its counters too
    report = apply_mesh([*nodes, newcomer], pool, joining=["aws-3"])
    assert report.ok and report.started == ("aws-3",)
    one_handshake_per_pair(messages.counted(), {(newcomer.access.host, n.access.host) for n in nodes})
