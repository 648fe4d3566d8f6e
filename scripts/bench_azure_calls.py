#!/usr/bin/env python3
"""API calls and wall time of the Azure provider's create and teardown, against the emulator.

    .venv/bin/python scripts/bench_azure_calls.py [--nodes 1 5 20] [--retry-after 1] [--lro-polls 2] [--json]

For each node count (one master, the rest workers) it runs, on a fresh emulator over HTTP:
create = ensure_network, ensure_subnet, ensure_firewall, ensure_vms; then teardown. The emulator
answers every long-running operation InProgress `--lro-polls` times with `Retry-After`
seconds, so the times include the SDK pollers' waits the way ARM's pacing would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.clouds.base import CloudTarget, ClusterRef, VmRequest  # noqa: E402
from provisioner.plan import enforceable, firewall_rules  # noqa: E402
from provisioner.sandbox.azure_emulator import AzureEmulator  # noqa: E402

IMAGE = {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchKeyOnly bench@cast"


def _kind(route: str) -> str:
    """A short name for a counted route: polls, reads, writes and deletes."""
    method, path = route.split(" ", 1)
    if "/operations/" in path or "/operationresults/" in path:
        return "polls"
    return {"GET": "reads", "HEAD": "reads", "PUT": "writes", "DELETE": "deletes"}.get(method, method)


def _measure(emu: AzureEmulator, fn) -> dict:
    emu.calls.clear()
    started = time.monotonic()
    fn()
    seconds = time.monotonic() - started
    with emu.lock:
        calls = Counter(emu.calls)
    kinds = Counter()
    for route, n in calls.items():
        kinds[_kind(route)] += n
    return {"seconds": round(seconds, 2), "calls": sum(calls.values()), **dict(sorted(kinds.items()))}


def run(nodes: int, retry_after: int, lro_polls: int) -> dict:
    with AzureEmulator(lro_polls=lro_polls, retry_after=retry_after) as emu:
        assert isinstance(emu, AzureEmulator)
        os.environ["CAST_AZURE_ENDPOINT"] = emu.url
        from provisioner.clouds.azure import Provider

        provider = Provider("eastus", "1")
        cluster = ClusterRef(f"bench{nodes}", str(uuid.uuid4()))
        rules = enforceable({role: firewall_rules(role, ["0.0.0.0/0"]) for role in ("master", "worker")})
        target = CloudTarget(cluster, "eastus", "1", "10.20.0.0/16", "10.20.1.0/24", rules, IMAGE)
        vms = [VmRequest(f"{cluster.name}-az-m1", "master", "Standard_D2s_v5", "#cloud-config\n")]
        vms += [VmRequest(f"{cluster.name}-az-w{i}", "worker", "Standard_B2s", "#cloud-config\n")
                for i in range(1, nodes)]

        def create() -> None:
            provider.ensure_network(target)
            provider.ensure_subnet(target)
            provider.ensure_firewall(target)
            provider.ensure_vms(target, vms, KEY)

        created = _measure(emu, create)
        rerun = _measure(emu, create)
        torn = _measure(emu, lambda: provider.teardown(target))
        if emu.errors:
            raise SystemExit(f"specification violations: {emu.errors}")
        return {"nodes": nodes, "create": created, "rerun": rerun, "teardown": torn}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After (s) on long-running operations")
    parser.add_argument("--lro-polls", type=int, default=2, help="InProgress polls before an operation succeeds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [run(n, args.retry_after, args.lro_polls) for n in args.nodes]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"emulator: Retry-After {args.retry_after}s, {args.lro_polls} InProgress polls per operation")
    header = ("nodes", "phase", "seconds", "calls", "reads", "writes", "deletes", "polls")
    print("{:>5} {:<9} {:>8} {:>6} {:>6} {:>7} {:>8} {:>6}".format(*header))
    for r in results:
        for phase in ("create", "rerun", "teardown"):
            m = r[phase]
            print(f"{r['nodes']:>5} {phase:<9} {m['seconds']:>8.2f} {m['calls']:>6} {m.get('reads', 0):>6} "
                  f"{m.get('writes', 0):>7} {m.get('deletes', 0):>8} {m.get('polls', 0):>6}")


if __name__ == "__main__":
    main()
