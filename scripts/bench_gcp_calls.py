"""API calls and wall time of the GCP provider's create and teardown, against the emulator.

Usage: .venv/bin/python scripts/bench_gcp_calls.py [--nodes 1 5 20]
Starts a GCP emulator on 127.0.0.1 (default operation delays), points CAST_GCP_ENDPOINT at
it, and for each node count runs the create flow (network, subnet, firewalls, VMs) and the
teardown, reading the call counts from /_emulator/calls. Prints a table (or --json).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.request
import uuid

import google.cloud.compute_v1  # noqa: F401  (imported before timing: measure API time, not import time)

from provisioner.clouds.base import CloudTarget, ClusterRef, VmRequest
from provisioner.clouds.gcp import Provider
from provisioner.plan import firewall_rules
from provisioner.sandbox.gcp_emulator import GcpEmulator

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJlbmNoLWtleS1ub3QtcmVhbC1hdC1hbGwtYXQtYWxs bench"


def control(emu: GcpEmulator, method: str, what: str) -> dict:
    req = urllib.request.Request(f"{emu.url}/_emulator/{what}", method=method)
    with urllib.request.urlopen(req) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else {}


def run(emu: GcpEmulator, nodes: int) -> dict:
    cluster = ClusterRef("bench", str(uuid.uuid4()))
    target = CloudTarget(cluster=cluster, region="us-central1", zone="us-central1-a",
                         network_cidr="10.0.0.0/16", subnet_cidr="10.0.0.0/24",
                         firewall={r: firewall_rules(r, ["0.0.0.0/0"]) for r in ("master", "worker")},
                         image={"project": "ubuntu-os-cloud", "family": "ubuntu-2404-lts-amd64"})
    vms = [VmRequest(f"bench-gcp-{'m' if i == 0 else 'w'}{i + 1}", "master" if i == 0 else "worker",
                     "e2-standard-2", "#cloud-config\n") for i in range(nodes)]
    p = Provider("us-central1", "us-central1-a")
    p.poll_initial_s, p.poll_max_s = 0.1, 1.0
    control(emu, "DELETE", "calls")
    start = time.monotonic()
    p.ensure_network(target)
    p.ensure_subnet(target)
    p.ensure_firewall(target)
    p.ensure_vms(target, vms, KEY)
    create_s = time.monotonic() - start
    create = control(emu, "GET", "calls")
    control(emu, "DELETE", "calls")
    start = time.monotonic()
    p.teardown(target)
    teardown_s = time.monotonic() - start
    teardown = control(emu, "GET", "calls")
    return {"nodes": nodes, "create_calls": create["total"], "create_s": round(create_s, 2),
            "teardown_calls": teardown["total"], "teardown_s": round(teardown_s, 2),
            "create_by_route": create["by_route"], "teardown_by_route": teardown["by_route"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    args = parser.parse_args()
    with GcpEmulator() as emu:
        os.environ["CAST_GCP_ENDPOINT"] = emu.url
        results = [run(emu, n) for n in args.nodes]
        violations = control(emu, "GET", "violations")
    if args.json:
        print(json.dumps({"results": results, "violations": violations}, indent=2))
        return
    print(f"{'nodes':>5} {'create calls':>12} {'create s':>9} {'teardown calls':>14} {'teardown s':>10}")
    for r in results:
        print(f"{r['nodes']:>5} {r['create_calls']:>12} {r['create_s']:>9} {r['teardown_calls']:>14} "
              f"{r['teardown_s']:>10}")
    for r in results:
        print(f"\n{r['nodes']} node(s), create: {json.dumps(r['create_by_route'], sort_keys=True)}")
        print(f"{r['nodes']} node(s), teardown: {json.dumps(r['teardown_by_route'], sort_keys=True)}")
    print(f"\ndiscovery-document violations: {len(violations)}")


if __name__ == "__main__":
    main()
