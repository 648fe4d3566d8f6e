#!/usr/bin/env python3
"""Benchmark: WireGuard mesh bring-up and check-latency on 10, 25, 50 and 100 local hosts.

Needs root (network namespaces, sshd, wireguard-go). Uses 198.19.1.0/24, apart from the
tests (198.19.0.0/24) and the sandbox's pools. Run:

    sudo .venv/bin/python scripts/bench_mesh.py [--sizes 10,25,50,100] [--count 5] [--interval 0.2]

Both phases open fresh SSH connections, as a command would. Targets: both grow no faster
than linearly with the node count (from 50 to 100 hosts at most 2.2x, issue 19);
check-latency for 50 nodes within count x interval + 5 s.

Each phase also shows the CPU it cost, which does not depend on how busy the machine is:
cast's own (this process, every thread) and the hosts' wireguard-go processes'. cast's work
grows with the nodes; WireGuard's with the pairs (a handshake per pair on bring-up,
count x 2 packets per pair on check-latency), n^2 on one machine for all the nodes. The
router counts the WireGuard messages by type (nftables), so a wasted initiation (one
without a response) or a repeated handshake shows as a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import subprocess
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


def wireguard_cpu_s(hosts: LocalHosts) -> float:
    """CPU seconds (user + system) the wireguard-go processes of `hosts` have used so far."""
    ours = set()
    for name in hosts.hosts:
        with contextlib.suppress(OSError):
            ours.add(f"net:[{os.stat(f'/run/netns/{hosts.netns_of(name)}').st_ino}]")
    total = 0
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or (entry / "comm").read_text().strip() != "wireguard-go":
                continue
            if os.readlink(entry / "ns" / "net") in ours:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


# WireGuard's message types (the first byte of its UDP payload), counted as the router forwards them.
MESSAGES = {1: "init", 2: "resp", 3: "cookie", 4: "data"}


def count_messages(hosts: LocalHosts) -> None:
    """Count every WireGuard message the hosts send each other, by type, in nftables
    counters on the router namespace's forward hook (every packet between hosts crosses it)."""
    rules = ["add table ip castbench", "add chain ip castbench counted { type filter hook forward priority 0 ; }"]
    rules += [f"add rule ip castbench counted udp dport {51820} @th,64,8 {kind} counter comment \"{name}\""
              for kind, name in MESSAGES.items()]
    subprocess.run(["ip", "netns", "exec", hosts.inet, "nft", "-f", "-"], input="\n".join(rules) + "\n",
                   text=True, check=True)


def messages(hosts: LocalHosts) -> dict[str, int]:
    """The WireGuard messages counted so far (count_messages), by type name."""
    out = subprocess.run(["ip", "netns", "exec", hosts.inet, "nft", "list", "chain", "ip", "castbench", "counted"],
                         capture_output=True, text=True, check=True).stdout
    found = {name: 0 for name in MESSAGES.values()}
    for line in out.splitlines():
        words = line.split()
        if "packets" in words and "comment" in words:
            found[words[-1].strip('"')] = int(words[words.index("packets") + 1])
    return found


def cast_cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far, every thread."""
    return sum(os.times()[:2])


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

        count_messages(hosts)
        started, cast, wireguard = time.monotonic(), cast_cpu_s(), wireguard_cpu_s(hosts)
        with SshPool(load_private_key(str(key_path))) as pool:
            report = apply_mesh(nodes, pool, handshake_timeout_s=60)
        bring_up = time.monotonic() - started
        up_cpu = {"up_cast": cast_cpu_s() - cast, "up_wg": wireguard_cpu_s(hosts) - wireguard}
        up_messages = messages(hosts)
        if not report.ok:
            print(f"  {n} nodes: pairs without handshake: {report.missing_handshakes}")

        started, cast, wireguard = time.monotonic(), cast_cpu_s(), wireguard_cpu_s(hosts)
        with SshPool(load_private_key(str(key_path))) as pool:
            latency = measure_latency(pool, nodes, count=count, interval_s=interval)
        check = time.monotonic() - started
        lost = sum(1 for p in latency.pairs if p.loss)
        total = messages(hosts)
        counted = {f"up_{k}": float(v) for k, v in up_messages.items()}
        counted.update({f"check_{k}": float(total[k] - v) for k, v in up_messages.items()})
        return {"setup": setup, "bring_up": bring_up, "check": check, **up_cpu,
                "check_cast": cast_cpu_s() - cast, "check_wg": wireguard_cpu_s(hosts) - wireguard,
                "pairs": len(latency.pairs), "lossy": lost, "handshakes_ok": float(report.ok), **counted}


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
    print("load average before: {:.2f} {:.2f} {:.2f} ({} CPUs)".format(*os.getloadavg(), os.cpu_count()))
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
    print(f"\nCPU seconds per phase (cast: this process; wg: the hosts' wireguard-go)\n"
          f"{'nodes':>5} {'bring-up cast':>13} {'wg':>7} {'check cast':>10} {'wg':>7}")
    for n in sizes:
        r = results[n]
        print(f"{n:>5} {r['up_cast']:>13.2f} {r['up_wg']:>7.2f} {r['check_cast']:>10.2f} {r['check_wg']:>7.2f}")
    print("\nWireGuard messages between the hosts per phase (init: handshake initiations, resp: "
          "responses; an initiation without a response was wasted)")
    print(f"{'nodes':>5} {'pairs':>5} " + " ".join(f"{'up ' + k:>9}" for k in MESSAGES.values())
          + " " + " ".join(f"{'check ' + k:>11}" for k in MESSAGES.values()))
    for n in sizes:
        r = results[n]
        print(f"{n:>5} {int(r['pairs']) // 2:>5} " + " ".join(f"{int(r['up_' + k]):>9}" for k in MESSAGES.values())
              + " " + " ".join(f"{int(r['check_' + k]):>11}" for k in MESSAGES.values()))
    if 50 in results and 100 in results:
        a, b = results[50], results[100]
        print(f"100 / 50 hosts: nodes 2.00x, pairs {b['pairs'] / a['pairs']:.2f}x; CPU of cast "
              f"{b['up_cast'] / a['up_cast']:.2f}x (bring-up) {b['check_cast'] / a['check_cast']:.2f}x (check), "
              f"of wireguard-go {b['up_wg'] / max(a['up_wg'], 0.01):.2f}x (bring-up) "
              f"{b['check_wg'] / max(a['check_wg'], 0.01):.2f}x (check)")
        for n, r in ((50, a), (100, b)):
            packets = int(r["check_data"]) or 1  # as counted at the router: echoes, replies, keepalives
            print(f"{n} hosts: wireguard-go CPU {r['up_wg'] / (r['pairs'] / 2) * 1e3:.2f} ms per pair "
                  f"on bring-up, {r['check_wg'] / packets * 1e6:.0f} us per packet on check "
                  f"({packets} packets in about {args.count * args.interval:g} s)")
        print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
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
