#!/usr/bin/env python3
"""Benchmark: WireGuard mesh bring-up and check-latency on 10, 25, 50 and 100 local hosts.

Needs root (network namespaces, sshd, wireguard-go). Uses 198.19.1.0/24, apart from the
tests (198.19.0.0/24) and the sandbox's pools. Run:

    sudo .venv/bin/python scripts/bench_mesh.py [--sizes 10,25,50,100] [--count 5] [--interval 0.2]

Both phases open fresh SSH connections, as a command would. Targets: both grow no faster
than linearly with the node count (from 50 to 100 hosts at most 2.2x, issue 19);
check-latency for 50 nodes within count x interval + 5 s.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from provisioner.keys import new_ed25519
from provisioner.nodes.latency import measure_latency  # noqa: E402
from provisioner.nodes.ssh import NodeAccess, SshPool, load_private_key  # noqa: E402
from provisioner.nodes.wireguard import MeshNodeAccess, apply_mesh  # noqa: E402
from provisioner.sandbox.hosts import LocalHosts, require_support  # noqa: E402

GROUPS = {"aws": "198.19.1.0/26", "gcp": "198.19.1.64/26", "azure": "198.19.1.128/26",
          "digitalocean": "198.19.1.192/26"}


def keypair() -> tuple[str, str]:
    """An ed25519 key pair: (OpenSSH private key text, OpenSSH public key line)."""
    pair = new_ed25519("cast-test")
    return pair.private.decode(), pair.public


def run_size(n: int, key_path: Path, ssh_public: str, count: int, interval: float) -> dict[str, float]:
    groups = list(GROUPS)
    with LocalHosts(f"bm{os.getpid() % 100000}n{n}") as hosts:
        for group, net in GROUPS.items():
            hosts.add_group(group, net)
        specs = []
        for i in range(n):
            group = groups[i % len(groups)]
            ip = str(ipaddress.IPv4Network(GROUPS[group]).network_address + 10 + i // len(groups))
            private, public = keypair()
            specs.append((f"{group}-{i // len(groups) + 1}", group, ip, private, public, i + 1))
        started = time.monotonic()
        with ThreadPoolExecutor(16) as workers:
            list(workers.map(lambda s: hosts.add_host(s[0], s[1], s[2], s[3], ssh_public), specs))
        setup = time.monotonic() - started
        nodes = [MeshNodeAccess(NodeAccess(name, ip, public), group, f"10.4.0.{index}")
                 for name, group, ip, _, public, index in specs]

        started = time.monotonic()
        with SshPool(load_private_key(str(key_path))) as pool:
            report = apply_mesh(nodes, pool, handshake_timeout_s=60)
        bring_up = time.monotonic() - started
        if not report.ok:
            print(f"  {n} nodes: pairs without handshake: {report.missing_handshakes}")

        started = time.monotonic()
        with SshPool(load_private_key(str(key_path))) as pool:
            latency = measure_latency(pool, nodes, count=count, interval_s=interval)
        check = time.monotonic() - started
        lost = sum(1 for p in latency.pairs if p.loss)
        return {"setup": setup, "bring_up": bring_up, "check": check,
                "pairs": len(latency.pairs), "lossy": lost, "handshakes_ok": float(report.ok)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,25,50,100")
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args()
    reason = require_support()
    if reason:
        sys.exit(f"bench_mesh: {reason}")
    sizes = [int(s) for s in args.sizes.split(",")]
    private, public = keypair()
    with tempfile.TemporaryDirectory() as tmp:
        key_path = Path(tmp) / "key"
        key_path.touch(mode=0o600)
        key_path.write_text(private)
        results = {n: run_size(n, key_path, public, args.count, args.interval) for n in sizes}
    limit = args.count * args.interval + 5
    base = sizes[0]
    print(f"\ncount={args.count} interval={args.interval}s; check-latency limit {limit:.1f}s\n")
    print(f"{'nodes':>5} {'pairs':>5} {'hosts s':>8} {'bring-up s':>10} {'x':>5} "
          f"{'check s':>8} {'x':>5} {'nodes x':>7} {'lossy':>5} {'handshakes':>10}")
    for n in sizes:
        r = results[n]
        print(f"{n:>5} {int(r['pairs']):>5} {r['setup']:>8.2f} {r['bring_up']:>10.2f} "
              f"{r['bring_up'] / results[base]['bring_up']:>5.2f} {r['check']:>8.2f} "
              f"{r['check'] / results[base]['check']:>5.2f} {n / base:>7.2f} "
              f"{int(r['lossy']):>5} {'all' if r['handshakes_ok'] else 'MISSING':>10}")
    if 50 in results and 100 in results:
        for phase in ("bring_up", "check"):
            ratio = results[100][phase] / results[50][phase]
            ok = ratio <= 2.2 and results[100]["handshakes_ok"] and not results[100]["lossy"]
            print(f"{phase.replace('_', '-')} 100 / 50 hosts: {ratio:.2f}x (target 2.2x, every pair working): "
                  f"{'met' if ok else 'missed'}")
    biggest = results[sizes[-1]]
    print(f"\ncheck-latency for {sizes[-1]} nodes: {biggest['check']:.2f}s "
          f"({'within' if biggest['check'] <= limit else 'OVER'} the {limit:.1f}s limit)")


if __name__ == "__main__":
    main()
