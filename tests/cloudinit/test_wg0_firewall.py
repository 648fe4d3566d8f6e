"""The host firewall on the mesh interface (issue 21, item 5): from peers over wg0 only what
Kubernetes needs is accepted. The rules as rendered, checked by nft itself where it can be run
(root), and applied in a scratch network namespace to see what passes and what is dropped."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.cloudinit import WG0_RULES
from provisioner.regions import CLOUDS

from .conftest import Render

MASTERS = ["10.4.0.1", "10.4.0.5"]


def rules(text: str) -> str:
    data: dict[str, Any] = yaml.safe_load(text)
    found = [f["content"] for f in data["write_files"] if f["path"] == WG0_RULES]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_node_gets_the_wg0_rules_and_loads_them_at_boot(render: Render, cloud: str) -> None:
    text = render("worker", cloud)
    body = rules(text)
    assert 'iifname != "wg0" accept' in body  # only the mesh interface is filtered here
    for needed in ("tcp dport { 10250, 6443 } accept", "udp dport 8472 accept", "ct state established,related accept",
                   "meta l4proto { icmp, ipv6-icmp } accept", "th dport 30000-32767 accept"):
        assert needed in body
    assert body.rstrip().splitlines()[-3].strip() == "drop"  # everything else from a peer
    assert "2379" not in body  # a worker runs no etcd
    data = yaml.safe_load(text)
    assert any("systemctl enable --now cast-wg0-firewall.service" in e[2] for e in data["runcmd"])
    assert "nftables" in data["packages"]


def test_etcd_is_open_on_a_master_to_the_masters_only(render: Render) -> None:
    body = rules(render("master", "aws", master_mesh_ips=MASTERS))
    assert "ip saddr { 10.4.0.1, 10.4.0.5 } tcp dport 2379-2380 accept" in body


def _root_with_nft() -> str | None:
    if os.geteuid() != 0:
        return "needs root (a scratch network namespace)"
    if not shutil.which("nft") or not shutil.which("ip"):
        return "nft and ip are not installed"
    return None


@pytest.mark.skipif(_root_with_nft() is not None, reason=_root_with_nft() or "")
def test_applied_rules_pass_kubernetes_and_ping_and_drop_the_rest(render: Render, tmp_path: Path) -> None:
    # Two namespaces joined by a veth pair whose node end is named wg0, as the mesh is.
    path = tmp_path / "wg0.nft"
    path.write_text(rules(render("master", "aws", master_mesh_ips=["10.99.0.2"])))
    tag = uuid.uuid4().hex[:6]
    node, peer = f"castfw-n-{tag}", f"castfw-p-{tag}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", node)
    ip("netns", "add", peer)
    try:
        ip("link", "add", f"cfw{tag}", "netns", node, "type", "veth", "peer", "name", "p0", "netns", peer)
        ip("-n", node, "link", "set", f"cfw{tag}", "name", "wg0")
        ip("-n", node, "addr", "add", "10.99.0.1/24", "dev", "wg0")
        ip("-n", peer, "addr", "add", "10.99.0.2/24", "dev", "p0")
        for ns, dev in ((node, "wg0"), (peer, "p0")):
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", node, "nft", "-f", str(path)], check=True, capture_output=True)
        subprocess.run(["ip", "netns", "exec", node, "nft", "-f", str(path)], check=True,
                       capture_output=True)  # loading twice is harmless (the boot unit may run again)

        listeners = [subprocess.Popen(["ip", "netns", "exec", node, "python3", "-c", _LISTEN, str(port)],
                                      stdout=subprocess.PIPE) for port in (10250, 2379, 22)]
        try:
            for listener in listeners:
                assert listener.stdout is not None and listener.stdout.readline().strip() == b"ready"
            ping = subprocess.run(["ip", "netns", "exec", peer, "ping", "-c", "1", "-W", "2", "10.99.0.1"],
                                  capture_output=True)
            assert ping.returncode == 0  # the latency check's ICMP
            assert _reaches(peer, 10250) and _reaches(peer, 2379)  # kubelet; etcd from a master
            assert not _reaches(peer, 22)  # nothing else from a peer
        finally:
            for listener in listeners:
                listener.kill()
                listener.wait()
    finally:
        subprocess.run(["ip", "netns", "del", node], capture_output=True)
        subprocess.run(["ip", "netns", "del", peer], capture_output=True)


_LISTEN = ("import socket, sys\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
           "s.bind(('10.99.0.1', int(sys.argv[1]))); s.listen(8); print('ready', flush=True)\n"
           "while True: s.accept()[0].close()\n")


def _reaches(ns: str, port: int) -> bool:
    probe = ("import socket, sys\ntry:\n    socket.create_connection(('10.99.0.1', int(sys.argv[1])), timeout=1)\n"
             "except OSError:\n    sys.exit(1)\n")
    return subprocess.run(["ip", "netns", "exec", ns, "python3", "-c", probe, str(port)]).returncode == 0


