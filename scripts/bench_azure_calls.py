#!/usr/bin/env python3
"""API calls and wall time of the Azure provider's create and teardown, against the emulator.

    .venv/bin/python scripts/bench_azure_calls.py [--nodes 1 5 20] [--retry-after 1] [--lro-polls 2]
        [--op-seconds 0] [--json]

For each node count (one master, the rest workers) it runs, on a fresh emulator over HTTP:
create = the provider's creation steps, in the order they are declared (each after the steps it
needs: the engine's order, one at a time); then the calls of
`cast delete-cluster` on Azure, on a fresh provider as the command has it: the credential check
(`check`), the foreign-VM safety check (`safety`), the deletion (`delete`), and their sum
(`delete-all`, per cluster). Every
long-running operation works `--op-seconds` (polled or not, as on ARM) and, when polled,
answers InProgress at least `--lro-polls` times, with a Retry-After of at least `--retry-after`
seconds (the time it still needs), so the times include the waits the way ARM's pacing would.
Target (issue 19): at most 6 calls per node on create, at most 2 per cluster on delete.
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

from provisioner.clouds.base import CloudTarget, ClusterRef, StepInputs, VmRequest  # noqa: E402
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


def run(nodes: int, retry_after: int, lro_polls: int, op_seconds: float = 0.0) -> dict:
    with AzureEmulator(lro_polls=lro_polls, retry_after=retry_after, op_seconds=op_seconds) as emu:
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

        inputs = StepInputs(public_key=KEY, nodes=tuple(v.name for v in vms),
                            requests=lambda names: [v for v in vms if v.name in names])

        def create() -> None:
            for step in provider.creation_steps():  # as the engine runs them: each after its needs
                step.ensure(target, inputs)

        created = _measure(emu, create)
        rerun = _measure(emu, create)
        # delete-cluster opens a provider of its own: nothing remembered from the create.
        deleter = Provider("eastus", "1")
        check = _measure(emu, deleter.check_credentials)
        found: list = []
        safety = _measure(emu, lambda: found.extend(deleter.find_foreign_vms(target)))
        if found:
            raise SystemExit(f"foreign VMs found: {found}")
        delete = _measure(emu, lambda: deleter.delete_resources(cluster))
        if emu.errors:
            raise SystemExit(f"specification violations: {emu.errors}")
        created["per_node"] = round(created["calls"] / nodes, 2)
        total = {k: sum(m.get(k, 0) for m in (check, safety, delete)) for k in {*check, *safety, *delete}}
        total["seconds"] = round(total["seconds"], 2)
        return {"nodes": nodes, "create": created, "rerun": rerun, "check": check, "safety": safety,
                "delete": delete, "delete-all": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After (s) on long-running operations")
    parser.add_argument("--lro-polls", type=int, default=2, help="InProgress polls before an operation succeeds")
    parser.add_argument("--op-seconds", type=float, default=0.0, help="how long each operation works")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [run(n, args.retry_after, args.lro_polls, args.op_seconds) for n in args.nodes]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"emulator: operations work {args.op_seconds:g}s, Retry-After at least {args.retry_after}s, "
          f"at least {args.lro_polls} InProgress polls per polled operation")
    header = ("nodes", "phase", "seconds", "calls", "reads", "writes", "deletes", "polls", "/node")
    print("{:>5} {:<10} {:>8} {:>6} {:>6} {:>7} {:>8} {:>6} {:>6}".format(*header))
    for r in results:
        for phase in ("create", "rerun", "check", "safety", "delete", "delete-all"):
            m = r[phase]
            per = f"{m['calls'] / r['nodes']:>6.2f}" if phase in ("create", "rerun") else "     -"
            print(f"{r['nodes']:>5} {phase:<10} {m['seconds']:>8.2f} {m['calls']:>6} {m.get('reads', 0):>6} "
                  f"{m.get('writes', 0):>7} {m.get('deletes', 0):>8} {m.get('polls', 0):>6} {per}")


if __name__ == "__main__":
    main()
