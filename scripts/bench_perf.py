"""cast measured the way its users feel it, against the limit, under two pacing profiles of
the sandbox (provisioner/sandbox/pacing.py): `flat` (every API request held --api-delay-ms,
every VM answering SSH --boot-delay-s after its create) and the clouds' own latencies per cloud
and kind of call, from published measurements, time-compressed (--cloud-pacing cloud:F, F=10
by default: every figure divided by F), driven through the `cast` command as a user would.

Needs root (the sandbox). Starts and stops its own sandbox in a temporary state directory,
after waiting until no other sandbox or node test holds network namespaces on this machine.

    sudo .venv/bin/python scripts/bench_perf.py [--api-delay-ms 100] [--boot-delay-s 3]
        [--cloud-pacing cloud:10|none] [--json FILE] [--quick] [--profile] [--region eu-frankfurt]

What it reports (a table, and the same figures as JSON with --json):
- create-cluster wall time for 4 clouds x 6 nodes next to its critical path; delete-cluster
  likewise;
- API calls per cloud, in total and per node, for clusters of 6, 24 and 48 nodes (create and
  delete), from the emulators' own counters (the AWS calls through the counting fault proxy);
- add-node time (one GCP worker) with 10, 25 and 50 nodes already in the cluster;
- check-latency time (5 pings 0.2 s apart) for 10, 25 and 50 nodes.
- under the cloud-like profile: the 24-node create and delete against their critical path;
- start-up to the first API call of each command measured.
With --profile, also where create and delete spend their time: each cloud's API calls merged
into waves (calls that overlap), the engine's steps from the journal, and the node phases; what
opening each cloud (its SDK) adds to starting cast; a one-cloud command's start-up per cloud.
--quick: the 24-node create and delete, and add-node and check-latency at 10 nodes only.
--add-node-only: only add-node at 10 and at 50 nodes (one cluster of 10, grown), with each
step's time, under the flat profile.

The critical path (the bound no provisioner can beat on the same clouds)
-------------------------------------------------------------------------
It is the longest chain of things that must happen one after another. Per cloud, the chain of
API calls that depend on each other, each costing the API delay d (calls that do not depend on
each other are one level: they can go at once), read from the providers' real dependencies
(provisioner/clouds/*) and from what the sandbox's clouds require (provisioner/sandbox/*):

create, up to the VM create call (the firewall in place before any VM, as the issue orders):
  AWS    lookup by tag (VPC, subnet, groups, key, instances, AMI parameter: one level)
         -> CreateVpc (with ImportKeyPair, CreateInternetGateway)
         -> CreateSubnet | CreateSecurityGroup (with AttachInternetGateway, CreateRouteTable)
         -> AuthorizeSecurityGroupIngress (with CreateRoute, AssociateRouteTable)
         -> RunInstances                                                        = 5 d
  GCP    lookup (networks, subnetworks, firewalls, instances)
         -> networks.insert -> wait (DONE after the emulator's operation time, at least op_min)
         -> subnetworks.insert | firewalls.insert -> wait
         -> instances.insert                                        = 4 d + 2 max(d, op_min)
  Azure  lookup (resource groups by tag) -> PUT resource group (synchronous)
         -> VNet with its subnet | NSG | public IP, each a long-running operation: PUT, the
            operation's time (the sandbox's operations work op seconds, polled or not), one look
         -> NIC (needs subnet, NSG, public IP), likewise -> PUT VM      = 3 d + 2 (d + op + d)
  DO     lookup (VPCs, firewalls, keys, droplets by tag)
         -> vpcs.create | tags.create | ssh_keys.create -> firewalls.create (needs the tag)
         -> droplets.create                                                     = 4 d
After its create call a VM answers SSH boot-delay later; the one read that sees it running
with its addresses (and the Azure VM's own operation polls) fit inside that delay. Then the
node phase, whose floor is measured here, on this machine, on the cluster just made, all nodes
at once: one SSH connection to every node; one round trip that reads the boot marker and makes
the WireGuard key; one that brings a WireGuard interface up (wireguard-go, as the mesh does);
one echo from every node to every peer over the mesh (the sessions work); and the create
flow's own latency check, count x interval (3 x 0.2 s).
  create bound = max over clouds (chain to the VM create) + boot delay + node floor

delete (after the safety check, which reads in the lookup level: it needs every instance in
the cluster's networks, one unfiltered list):
  AWS    lookup -> TerminateInstances -> one Describe that sees them terminated
         -> DetachInternetGateway | DeleteSubnet | DeleteSecurityGroup | DeleteRouteTable
         -> DeleteVpc                                                           = 5 d
  GCP    lookup -> instances.delete | firewalls.delete -> wait -> subnetworks.delete -> wait
         -> networks.delete -> wait                                 = 4 d + 3 max(d, op_min)
  Azure  lookup (groups by tag) -> safety check (every VM) -> DELETE resource group
         -> its operation (op, at least one look)                       = 3 d + max(op, d)
  DO     lookup -> droplets delete by tag | firewalls.delete | ssh_keys.delete
         -> vpcs.delete | tags.delete (after the droplets; members linger 0.05 s) = 3 d
  delete bound = max over clouds

Not in the bound, reported beside it: starting cast itself (the interpreter, cast and the four
cloud SDKs imported; of google-cloud-compute only the service modules cast calls, about half a
second, most of it the message types), measured here, and each command's time to its first API
call. Under the cloud-like profile each cloud's chain uses its own read, write, operation and
boot times (critical_paths).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.nodes.latency import REPLY_WAIT_S  # noqa: E402
from provisioner.nodes.ssh import NodeAccess, SshPool, load_private_key  # noqa: E402
from provisioner.nodes.wireguard import pinger_command, pinger_source  # noqa: E402
from provisioner.regions import load_region_map  # noqa: E402
from provisioner.retry import DeadlineError, wait_until  # noqa: E402
from provisioner.sandbox.emulator import CONTROL_TOKEN_ENV, CONTROL_TOKEN_HEADER  # noqa: E402
from provisioner.sandbox.hosts import BOOT_MARKER_PATH  # noqa: E402
from provisioner.sandbox.pacing import Pacing  # noqa: E402
from provisioner.sandbox.pacing import parse as parse_pacing  # noqa: E402
from provisioner.spec import build_spec  # noqa: E402
from provisioner.state import StateStore  # noqa: E402

CLOUDS = ("aws", "gcp", "azure", "digitalocean")
ENDPOINTS = {"aws": "AWS_ENDPOINT_URL", "gcp": "CAST_GCP_ENDPOINT", "azure": "CAST_AZURE_ENDPOINT",
             "digitalocean": "CAST_DIGITALOCEAN_ENDPOINT"}
LATENCY_COUNT, LATENCY_INTERVAL_S = 5, 0.2  # check-latency as measured (its defaults)
CREATE_CHECK = (3, 0.2)  # the create flow's own latency check: count, interval (latency_step.latency)
ADD_CLOUD = "gcp"
ADD_NODE_RATIO = 1.2  # issue 19: add-node with 50 nodes at most 1.2 times add-node with 10
PROGRESS = re.compile(r"^\[\s*([\d.]+)s\]\s+(\S+)\s+(\S+)\s+(start|done|fail|skip|info|warn)\b")


# --- the critical path model -------------------------------------------------------------


def critical_paths(pacing: Pacing, node_floor_s: float) -> dict[str, Any]:
    """The create and delete bounds of the module docstring under `pacing`, with each
    cloud's chain: r a read's round trip, w a mutation's, op an operation's time, boot a VM's
    boot to SSH (per cloud)."""
    aws, gcp, azure, do = (pacing.of(c) for c in CLOUDS)
    r, w = aws.read_s, aws.write_s
    run = aws.delay_s("RunInstances")
    gr, gw, gop = gcp.read_s, gcp.write_s, max(gcp.read_s, gcp.op_s[0])  # a wait returns when DONE
    zr, zw = azure.read_s, azure.write_s
    net = azure.op_by_namespace.get("Microsoft.Network", 0.0)
    vm_op = azure.op_by_namespace.get("Microsoft.Compute", 0.0)
    group_op = azure.op_by_namespace.get("Microsoft.Resources", 0.0)
    dr, dw = do.read_s, do.write_s
    # Each chain to the VM create call, then the cloud's own boot (GCP's starts when the
    # insert's operation is DONE; an Azure VM answers once its operation succeeded and booted).
    create = {
        "aws": (r + 3 * w + run, aws.boot_s, ["lookup", "CreateVpc", "CreateSubnet | CreateSecurityGroup",
                                              "AuthorizeSecurityGroupIngress", "RunInstances"]),
        "gcp": (gr + gw + gop + gw + gop + gw, gop + gcp.boot_s,
                ["lookup", "networks.insert", "wait", "subnetworks.insert | firewalls.insert", "wait",
                 "instances.insert", "(its operation)"]),
        "azure": (zr + zw + 2 * (zw + net + zr) + zw, max(vm_op, azure.boot_s),
                  ["lookup", "PUT resource group", "VNet+subnet | NSG | public IP (PUT, operation, one look)",
                   "NIC (PUT, operation, one look)", "PUT VM (its operation)"]),
        "digitalocean": (dr + 3 * dw, do.boot_s, ["lookup", "vpcs.create | tags.create | ssh_keys.create",
                                                  "firewalls.create", "droplets.create"]),
    }
    delete = {
        "aws": (r + 4 * w, ["lookup + safety check", "TerminateInstances", "DescribeInstances (terminated)",
                            "DetachInternetGateway | DeleteSubnet | DeleteSecurityGroup | DeleteRouteTable",
                            "DeleteVpc"]),
        "gcp": (gr + 3 * (gw + gop), ["lookup + safety check", "instances.delete | firewalls.delete", "wait",
                                      "subnetworks.delete", "wait", "networks.delete", "wait"]),
        "azure": (2 * zr + zw + max(group_op, zr), ["lookup", "safety check", "DELETE resource group",
                                                    "its operation (one poll)"]),
        "digitalocean": (dr + 2 * dw, ["lookup + safety check", "droplets delete by tag | firewalls.delete | "
                                       "ssh_keys.delete", "vpcs.delete | tags.delete"]),
    }
    ends = {c: api + boot for c, (api, boot, _) in create.items()}
    longest = max(ends, key=lambda c: ends[c])
    return {
        "assumptions": {"pacing": pacing.name, "compression": pacing.compression},
        "create": {
            "chains": {c: {"seconds": round(api, 3), "boot_s": round(boot, 3), "calls": chain}
                       for c, (api, boot, chain) in create.items()},
            "longest_cloud": longest,
            "api_s": round(create[longest][0], 3),
            "boot_s": round(create[longest][1], 3),
            "node_floor_s": round(node_floor_s, 3),
            "bound_s": round(ends[longest] + node_floor_s, 3),
        },
        "delete": {
            "chains": {c: {"seconds": round(t, 3), "calls": chain} for c, (t, chain) in delete.items()},
            "longest_cloud": max(delete, key=lambda c: delete[c][0]),
            "bound_s": round(max(t for t, _ in delete.values()), 3),
        },
    }


# --- the sandbox and the cast command ----------------------------------------------------


def wait_for_free_machine(limit_s: float) -> None:
    """Only one sandbox at a time: wait until no network namespace exists (another sandbox
    or a node test would share this machine's two cores and its address pools)."""
    listed: list[str] = []
    told: list[bool] = []

    def free() -> bool:
        listed[:] = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        if listed and not told:
            print(f"waiting: another sandbox or node test holds namespaces ({listed[0]} ...)", flush=True)
            told.append(True)
        return not listed

    try:
        wait_until(free, what="network namespaces to go", timeout_s=limit_s, initial=1.0, maximum=5.0)
    except DeadlineError:
        sys.exit(f"network namespaces still exist after {limit_s:.0f}s ({listed[0]} ...): "
                 "another sandbox or node test runs; try again later")


class Bench:
    """The cast command against this run's sandbox, and the emulators' control endpoints."""

    def __init__(self, home: str, region: str):
        self.home = home
        self.region = region
        self.env: dict[str, str] = {**os.environ, "CAST_HOME": home, "COLUMNS": "250"}

    def cast(self, *args: str) -> tuple[float, str, str]:
        """Run cast; (wall seconds, stdout, stderr). Exits the benchmark if cast fails."""
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "provisioner", *args], env=self.env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"cast {' '.join(args)} exited {done.returncode}:\n{done.stderr.strip()[-3000:]}")
        return wall, done.stdout, done.stderr

    def control(self, cloud: str, method: str, what: str) -> Any:
        request = urllib.request.Request(f"{self.env[ENDPOINTS[cloud]]}/_emulator/{what}", method=method,
                                         headers={CONTROL_TOKEN_HEADER: self.env[CONTROL_TOKEN_ENV]})
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def reset_counts(self) -> None:
        for cloud in CLOUDS:
            self.control(cloud, "DELETE", "calls")

    def counts(self) -> dict[str, dict[str, Any]]:
        return {cloud: self.control(cloud, "GET", "calls") for cloud in CLOUDS}

    def logs(self) -> dict[str, list[dict[str, Any]]]:
        return {cloud: self.control(cloud, "GET", "log") for cloud in CLOUDS}

    @contextmanager
    def measured(self) -> Iterator[dict[str, Any]]:
        """Count and log the API calls of the block; the result dict gets t0, calls, logs."""
        self.reset_counts()
        out: dict[str, Any] = {"t0": time.time()}
        yield out
        out["calls"] = self.counts()
        out["logs"] = self.logs()

    def journal(self, name: str) -> list[tuple[str, str, str, float]]:
        """(cloud, step, phase, unix time) of a cluster's journal, straight from the store."""
        with sqlite3.connect(Path(self.home) / "state.db", timeout=30) as conn:
            return conn.execute(
                "SELECT cloud, step, phase, at FROM journal WHERE cluster_uuid IN "
                "(SELECT uuid FROM clusters WHERE name = ?) ORDER BY id", (name,)).fetchall()


def cloud_flags(total: int) -> tuple[list[str], dict[str, int]]:
    """--cloud flags for `total` nodes over the four clouds (one AWS master, the rest workers,
    spread as evenly as possible), and the nodes per cloud."""
    per = {c: total // 4 + (1 if i < total % 4 else 0) for i, c in enumerate(CLOUDS)}
    flags = [f"--cloud={c}:{1 if c == 'aws' else 0}:{per[c] - (1 if c == 'aws' else 0)}" for c in CLOUDS]
    return flags, per


# --- measurements ------------------------------------------------------------------------


def startup_floor(clouds: tuple[str, ...] = CLOUDS) -> float:
    """Starting cast and opening `clouds` through the registry (each cloud's SDK modules, as a
    command imports them), in a fresh interpreter (best of 3)."""
    code = ("import provisioner.cli, provisioner.engine\nfrom provisioner.clouds import load_cloud\n"
            + "".join(f"load_cloud({c!r})\n" for c in clouds))
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
        runs.append(time.perf_counter() - start)
    return min(runs)


def import_costs() -> dict[str, float]:
    """Per cloud: what opening it adds to starting cast (best of 3 each, fresh interpreters)."""
    base = startup_floor(())
    return {"cast_alone_s": round(base, 3),
            **{f"{c}_s": round(max(0.0, startup_floor((c,)) - base), 3) for c in CLOUDS}}


def first_call_s(timeline: dict[str, Any]) -> float | None:
    """Seconds from starting `cast` to its first API call on any cloud (None: no call)."""
    firsts = [t["first_call_s"] for t in timeline.values() if t["first_call_s"] is not None]
    return min(firsts) if firsts else None


def one_cloud_starts(bench: Bench) -> dict[str, float | None]:
    """Per cloud: a one-cloud command's start-up to its first API call: `delete-cluster` of a
    one-cloud cluster known to the state and holding nothing on the cloud (its lookups are
    its first calls; nothing is made, so the figure is cast's own start-up)."""
    store = StateStore(Path(bench.home))
    out: dict[str, float | None] = {}
    for cloud in CLOUDS:
        name = f"start{cloud[:3]}"
        flag = f"{cloud}:1:0"
        spec = build_spec(load_region_map(), name=name, region=bench.region, cloud_flags=[flag])
        store.create_cluster(str(uuid.uuid4()), name, spec.region, spec.to_dict())
        with bench.measured() as m:
            bench.cast("delete-cluster", name, "--yes", "--quiet")
        out[cloud] = first_call_s(timeline(m))
    return out


def node_floor(home: str, name: str) -> dict[str, float]:
    """The node phase's floor on this machine, measured on the cluster's nodes, all at once:
    SSH connect, one round trip (boot marker + WireGuard key), a WireGuard interface brought
    up with wireguard-go, one echo to every peer over the mesh, and the create flow's latency
    check (count x interval)."""
    store = StateStore(Path(home))
    row = store.cluster(name)
    assert row is not None
    nodes = [n for n in store.nodes(row.uuid) if n.public_ip]
    access = {n.name: NodeAccess(n.name, str(n.public_ip), n.host_key) for n in nodes}
    peers = {n.name: [m.mesh_ip for m in nodes if m.name != n.name] for n in nodes}
    key = load_private_key(str(store.secrets_dir(row.uuid, create=False) / "ssh_key"))
    up = ('set -e; d=$(mktemp -d); printf "[Interface]\\nAddress = 10.255.0.1/32\\nPrivateKey = %s\\n" '
          '"$(wg genkey)" > "$d/wgf.conf"; WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up '
          '"$d/wgf.conf" >/dev/null 2>&1; echo "$d"')
    figures: dict[str, float] = {}
    with SshPool(key) as pool:
        def timed(what: str, work: Callable[[NodeAccess], Any]) -> dict[str, Any]:
            start = time.perf_counter()
            result = pool.map(list(access.values()), work)
            figures[what] = round(time.perf_counter() - start, 3)
            return result

        timed("ssh_connect_s", pool.client)
        key_round = f"cat {BOOT_MARKER_PATH} >/dev/null && wg genkey | wg pubkey"
        timed("marker_and_key_s", lambda a: pool.check(a, key_round))
        dirs = timed("wireguard_up_s", lambda a: pool.check(a, f"bash -c {shlex.quote(up)}").strip())
        down = "wg-quick down {0}/wgf.conf >/dev/null 2>&1; rm -rf {0}"
        pool.map(list(access.values()), lambda a: pool.check(a, down.format(dirs[a.name])))
        timed("echo_every_peer_s", lambda a: pool.check(
            a, pinger_command(peers[a.name], 1, 0.2, REPLY_WAIT_S, time.time()), stdin=pinger_source()))
    count, interval = CREATE_CHECK
    figures["latency_check_s"] = round(count * interval, 3)
    figures["total_s"] = round(sum(figures.values()), 3)
    return figures


def per_cloud_calls(calls: dict[str, dict[str, Any]], per: dict[str, int]) -> dict[str, Any]:
    out = {}
    for cloud in CLOUDS:
        total = calls[cloud]["total"]
        out[cloud] = {"nodes": per[cloud], "total": total, "per_node": round(total / max(1, per[cloud]), 2),
                      "by_route": dict(sorted(calls[cloud]["by_route"].items()))}
    return out


def waves(log: list[dict[str, Any]], t0: float) -> list[dict[str, Any]]:
    """A cloud's calls merged into waves: calls that overlap in time are one wave."""
    out: list[dict[str, Any]] = []
    for call in sorted(log, key=lambda c: c["start"]):
        if out and call["start"] <= out[-1]["end"]:
            wave = out[-1]
            wave["end"] = max(wave["end"], call["end"])
        else:
            wave = {"start": call["start"], "end": call["end"], "routes": Counter()}
            out.append(wave)
        wave["routes"][call["route"]] += 1
    return [{"from_s": round(w["start"] - t0, 3), "to_s": round(w["end"] - t0, 3),
             "calls": sum(w["routes"].values()), "routes": dict(w["routes"])} for w in out]


def timeline(measure: dict[str, Any]) -> dict[str, Any]:
    """Per cloud: first and last call, API-busy time, number of waves, and the waves."""
    t0 = measure["t0"]
    out = {}
    for cloud, log in measure["logs"].items():
        ws = waves(log, t0)
        busy = sum(w["to_s"] - w["from_s"] for w in ws)
        out[cloud] = {"first_call_s": ws[0]["from_s"] if ws else None, "last_call_s": ws[-1]["to_s"] if ws else None,
                      "calls": sum(w["calls"] for w in ws), "waves": len(ws), "api_busy_s": round(busy, 3),
                      "timeline": ws}
    return out


def steps(bench: Bench, name: str, t0: float) -> dict[str, dict[str, float]]:
    """The engine's steps of the last command on `name`, from the journal: (cloud/step) ->
    begin and end, seconds after t0."""
    out: dict[str, dict[str, float]] = {}
    for cloud, step, phase, at in bench.journal(name):
        if at < t0:
            continue
        entry = out.setdefault(f"{cloud}/{step}", {})
        entry["begin" if phase == "begin" else "end"] = round(at - t0, 3)
    return out


def create(bench: Bench, name: str, total: int) -> dict[str, Any]:
    flags, per = cloud_flags(total)
    with bench.measured() as m:
        wall, _, err = bench.cast("create-cluster", name, "--region", bench.region, *flags,
                                  "--latency-threshold-ms", "1000")
    seen = timeline(m)
    return {"nodes": total, "per_cloud_nodes": per, "wall_s": round(wall, 3), "first_call_s": first_call_s(seen),
            "calls": per_cloud_calls(m["calls"], per), "timeline": seen, "steps": steps(bench, name, m["t0"]),
            "progress": [line for line in err.splitlines() if PROGRESS.match(line)]}


def delete(bench: Bench, name: str, per: dict[str, int]) -> dict[str, Any]:
    with bench.measured() as m:
        wall, _, err = bench.cast("delete-cluster", name, "--yes")
    seen = timeline(m)
    return {"wall_s": round(wall, 3), "first_call_s": first_call_s(seen), "calls": per_cloud_calls(m["calls"], per),
            "timeline": seen,
            "progress": [line for line in err.splitlines() if PROGRESS.match(line)]}


def check_latency(bench: Bench, name: str) -> float:
    wall, _, _ = bench.cast("check-latency", name, "--count", str(LATENCY_COUNT), "--interval",
                            str(LATENCY_INTERVAL_S), "--threshold-ms", "1000", "--output", "json")
    return round(wall, 3)


def add_node(bench: Bench, name: str, cloud: str = ADD_CLOUD, count: int = 1) -> dict[str, Any]:
    with bench.measured() as m:
        wall, _, _ = bench.cast("add-node", name, "--cloud", cloud, "--count", str(count))
    return {"wall_s": round(wall, 3), "first_call_s": first_call_s(timeline(m)),
            "calls": {c: m["calls"][c]["total"] for c in CLOUDS},
            "steps": steps(bench, name, m["t0"])}


def grow(bench: Bench, name: str, have: int, want: int) -> None:
    """Add workers (spread over the clouds, not timed) until the cluster has `want` nodes."""
    _, before = cloud_flags(have)
    _, after = cloud_flags(want)
    for cloud in CLOUDS:
        if after[cloud] > before[cloud]:
            bench.cast("add-node", name, "--cloud", cloud, "--count", str(after[cloud] - before[cloud]), "--quiet")


# --- the run -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"settings": {"api_delay_ms": args.api_delay_ms, "boot_delay_s": args.boot_delay_s,
                                           "region": args.region, "quick": args.quick, "cpus": os.cpu_count()}}
    result["startup_s"] = round(startup_floor(), 3)
    if args.profile:
        result["import_costs"] = import_costs()
    with tempfile.TemporaryDirectory(prefix="cast-perf-") as home:
        bench = Bench(home, args.region)
        bench.cast("sandbox", "up", "--region", args.region, "--api-delay-ms", str(args.api_delay_ms),
                   "--boot-delay-s", str(args.boot_delay_s))
        try:
            bench.env.update(json.loads(bench.cast("sandbox", "env", "--output", "json")[1]))
            measure(bench, args, result)
        finally:
            bench.cast("sandbox", "down")
    if args.cloud_pacing != "none":
        result["cloud"] = run_cloud_like(args)
    return result


def run_cloud_like(args: argparse.Namespace) -> dict[str, Any]:
    """The 24-node create and delete on a sandbox with the clouds' own latencies (compressed):
    its wall times against the critical path under the same pacing."""
    say = print if args.verbose else (lambda *a, **k: None)
    pacing = parse_pacing(args.cloud_pacing)
    out: dict[str, Any] = {"pacing": args.cloud_pacing, "compression": pacing.compression}
    with tempfile.TemporaryDirectory(prefix="cast-perf-cloud-") as home:
        bench = Bench(home, args.region)
        bench.cast("sandbox", "up", "--region", args.region, "--pacing", args.cloud_pacing)
        try:
            bench.env.update(json.loads(bench.cast("sandbox", "env", "--output", "json")[1]))
            say(f"create 24 ({args.cloud_pacing}) ...", flush=True)
            made = create(bench, "cloud24", 24)
            out["node_floor"] = node_floor(bench.home, "cloud24")
            out["create_24"] = made
            say(f"delete 24 ({args.cloud_pacing}) ...", flush=True)
            out["delete_24"] = delete(bench, "cloud24", made["per_cloud_nodes"])
        finally:
            bench.cast("sandbox", "down")
    out["critical_path"] = critical_paths(pacing, out["node_floor"]["total_s"])
    for what in ("create", "delete"):
        wall, bound = out[f"{what}_24"]["wall_s"], out["critical_path"][what]["bound_s"]
        out[f"{what}_ratio"] = round(wall / bound, 2)
    return out


def measure(bench: Bench, args: argparse.Namespace, result: dict[str, Any]) -> None:
    say = print if args.verbose else (lambda *a, **k: None)
    if args.profile:
        say("one-cloud start-ups ...", flush=True)
        result["one_cloud_first_call_s"] = one_cloud_starts(bench)
    say("create 24 ...", flush=True)
    made = create(bench, "perf24", 24)
    result["node_floor"] = node_floor(bench.home, "perf24")
    result["create_24"] = made
    say("delete 24 ...", flush=True)
    result["delete_24"] = delete(bench, "perf24", made["per_cloud_nodes"])
    result["calls"] = {"24": {"create": made["calls"], "delete": result["delete_24"]["calls"]}}
    walls = {"create": [made["wall_s"]], "delete": [result["delete_24"]["wall_s"]]}
    for run in range(1, args.repeat):  # the machine is noisy: the figure is the median of the runs
        say(f"create and delete 24, run {run + 1} ...", flush=True)
        walls["create"].append(create(bench, f"perf24r{run}", 24)["wall_s"])
        walls["delete"].append(delete(bench, f"perf24r{run}", made["per_cloud_nodes"])["wall_s"])
    for what, runs in walls.items():
        result[f"{what}_24"]["runs_s"] = runs
        result[f"{what}_24"]["median_s"] = round(statistics.median(runs), 3)
    if not args.quick:
        for total in (6, 48):
            say(f"create {total} ...", flush=True)
            name = f"perf{total}"
            made = create(bench, name, total)
            result["calls"][str(total)] = {"create": made["calls"]}
            if total == 48:
                grow_and_time(bench, name, 48, [50], result)
            result["calls"][str(total)]["delete"] = delete(bench, name, made["per_cloud_nodes"])["calls"]
    say("create 10 ...", flush=True)
    create(bench, "perf10", 10)
    grow_and_time(bench, "perf10", 10, [10] if args.quick else [10, 25], result)
    delete(bench, "perf10", cloud_flags(10)[1])
    result["critical_path"] = critical_paths(parse_pacing("flat", args.api_delay_ms / 1000, args.boot_delay_s),
                                             result["node_floor"]["total_s"])


def run_add_node_only(args: argparse.Namespace) -> dict[str, Any]:
    """add-node (one GCP worker) at 10 and at 50 nodes in one cluster, grown in between."""
    say = print if args.verbose else (lambda *a, **k: None)
    out: dict[str, Any] = {"settings": {"api_delay_ms": args.api_delay_ms, "boot_delay_s": args.boot_delay_s,
                                        "region": args.region, "cpus": os.cpu_count()}}
    with tempfile.TemporaryDirectory(prefix="cast-perf-add-") as home:
        bench = Bench(home, args.region)
        bench.cast("sandbox", "up", "--region", args.region, "--api-delay-ms", str(args.api_delay_ms),
                   "--boot-delay-s", str(args.boot_delay_s))
        try:
            bench.env.update(json.loads(bench.cast("sandbox", "env", "--output", "json")[1]))
            say("create 10 ...", flush=True)
            create(bench, "perf10", 10)
            adds: dict[str, Any] = {}
            say("add-node at 10 ...", flush=True)
            adds["10"] = add_node(bench, "perf10")
            say("grow to 50 ...", flush=True)
            grow(bench, "perf10", 11, 50)
            say("add-node at 50 ...", flush=True)
            adds["50"] = add_node(bench, "perf10")
            out["add_node"] = adds
            delete(bench, "perf10", cloud_flags(52)[1])
        finally:
            bench.cast("sandbox", "down")
    ratio = out["add_node"]["50"]["wall_s"] / out["add_node"]["10"]["wall_s"]
    out["verdicts"] = {"add_node": {"ratio_50_to_10": round(ratio, 2), "met": ratio <= ADD_NODE_RATIO}}
    return out


def print_add_node_only(r: dict[str, Any]) -> None:
    adds, v = r["add_node"], r["verdicts"]["add_node"]
    print(f"add-node (1 GCP worker): 10 nodes {adds['10']['wall_s']:.2f} s, 50 nodes {adds['50']['wall_s']:.2f} s"
          f"  -> 50/10 = {v['ratio_50_to_10']:.2f} (target {ADD_NODE_RATIO}): {'met' if v['met'] else 'missed'}")
    names = sorted({step for a in adds.values() for step in a["steps"]},
                   key=lambda step: adds["50"]["steps"].get(step, {}).get("begin", 0.0))
    print(f"{'step (begin-end, s after the command started)':<46} {'10 nodes':>13} {'50 nodes':>13}")
    for step in names:
        cells = [adds[n]["steps"].get(step, {}) for n in ("10", "50")]
        print(f"{step:<46} " + " ".join(f"{c.get('begin', 0):>6.2f}-{c.get('end', 0):<6.2f}" for c in cells))


def grow_and_time(bench: Bench, name: str, have: int, sizes: list[int], result: dict[str, Any]) -> None:
    """For each size: grow the cluster to it, time check-latency, then time one add-node."""
    for size in sizes:
        grow(bench, name, have, size)
        result.setdefault("check_latency", {})[str(size)] = check_latency(bench, name)
        result.setdefault("add_node", {})[str(size)] = add_node(bench, name)
        have = size + 1


# --- the report --------------------------------------------------------------------------


def verdicts(r: dict[str, Any]) -> dict[str, Any]:
    cp = r["critical_path"]
    start = r["startup_s"]
    out: dict[str, Any] = {}
    for what, measured, bound in (("create", r["create_24"]["median_s"], cp["create"]["bound_s"]),
                                  ("delete", r["delete_24"]["median_s"], cp["delete"]["bound_s"])):
        out[what] = {"wall_s": measured, "critical_path_s": bound, "ratio": round(measured / bound, 2),
                     "ratio_with_startup": round(measured / (bound + start), 2),
                     "met": measured <= 1.3 * bound, "met_with_startup": measured <= 1.3 * (bound + start)}
    adds = r.get("add_node", {})
    if "10" in adds and "50" in adds:
        ratio = adds["50"]["wall_s"] / adds["10"]["wall_s"]
        out["add_node"] = {"ratio_50_to_10": round(ratio, 2), "met": ratio <= ADD_NODE_RATIO}
    checks = r.get("check_latency", {})
    if "50" in checks:
        limit = LATENCY_COUNT * LATENCY_INTERVAL_S + 5
        out["check_latency"] = {"wall_50_s": checks["50"], "limit_s": limit, "met": checks["50"] <= limit}
    calls = r["calls"]
    if "6" in calls and "48" in calls:
        growth = {}
        for cloud in CLOUDS:
            small, big = calls["24"]["create"][cloud], calls["48"]["create"][cloud]
            growth[cloud] = round((big["total"] - small["total"]) / max(1, big["nodes"] - small["nodes"]), 2)
        worst = {c: max(calls[s]["create"][c]["per_node"] for s in ("6", "24", "48")) for c in CLOUDS}
        out["calls_per_node"] = {"marginal_create_calls_per_node_24_to_48": growth,
                                 "met": all(calls["48"]["create"][c]["per_node"] <= worst[c] for c in CLOUDS)}
    return out


def print_report(r: dict[str, Any], profile: bool) -> None:
    s, cp, v = r["settings"], r["critical_path"], r["verdicts"]
    print(f"\nsandbox: API delay {s['api_delay_ms']:g} ms per call, boot delay {s['boot_delay_s']:g} s, "
          f"{s['cpus']} CPUs; starting cast with its four SDKs takes {r['startup_s']:.2f} s (not in the bounds)")
    print_paths(cp, r["node_floor"])
    print(f"\n{'':<26}{'wall s':>8}{'bound s':>9}{'ratio':>7}{'+startup':>9}  target 1.3x   (wall: median of "
          f"{len(r['create_24']['runs_s'])} runs)")
    for what in ("create", "delete"):
        x = v[what]
        print(f"{what + '-cluster (24 nodes)':<26}{x['wall_s']:>8.2f}{x['critical_path_s']:>9.2f}{x['ratio']:>7.2f}"
              f"{x['ratio_with_startup']:>9.2f}  {'met' if x['met'] else 'missed'}"
              f"{'' if x['met'] else (' (met with start-up)' if x['met_with_startup'] else '')}"
              f"   runs: {', '.join(f'{t:.2f}' for t in r[what + '_24']['runs_s'])}")
    print(f"\nAPI calls (create / delete){'':<5}" + "".join(f"{c:>22}" for c in CLOUDS))
    for size, phases in sorted(r["calls"].items(), key=lambda kv: int(kv[0])):
        for phase in ("create", "delete"):
            if phase in phases:
                cells = "".join(f"{p['total']:>7} ({p['per_node']:5.1f}/node)" for p in
                                (phases[phase][c] for c in CLOUDS))
                print(f"  {size + ' nodes, ' + phase:<30}{cells}")
    if "calls_per_node" in v:
        g = v["calls_per_node"]
        print("  marginal create calls per added node (24 -> 48): "
              + ", ".join(f"{c} {n:g}" for c, n in g["marginal_create_calls_per_node_24_to_48"].items())
              + f"  -> per node bounded: {'met' if g['met'] else 'missed'}")
    if r.get("add_node"):
        print("\nadd-node (1 GCP worker) with N nodes in the cluster: "
              + ", ".join(f"{n}: {a['wall_s']:.2f} s" for n, a in _by_size(r["add_node"]))
              + (f"  -> 50/10 = {v['add_node']['ratio_50_to_10']:.2f} (target {ADD_NODE_RATIO}): "
                 f"{'met' if v['add_node']['met'] else 'missed'}" if "add_node" in v else ""))
    if r.get("check_latency"):
        print(f"check-latency ({LATENCY_COUNT} x {LATENCY_INTERVAL_S} s): "
              + ", ".join(f"{n} nodes {t:.2f} s" for n, t in _by_size(r["check_latency"]))
              + (f"  -> 50 within {v['check_latency']['limit_s']:.1f} s: "
                 f"{'met' if v['check_latency']['met'] else 'missed'}" if "check_latency" in v else ""))
    print_startup(r)
    if profile:
        print_profile(r)
    if "cloud" in r:
        print_cloud_like(r["cloud"], profile)


def print_paths(cp: dict[str, Any], nf: dict[str, float]) -> None:
    print("\ncritical path (create): chain to the VM create call per cloud, then its boot, then the node floor")
    for cloud, chain in cp["create"]["chains"].items():
        print(f"  {cloud:<13} {chain['seconds']:5.2f} s + boot {chain['boot_s']:5.2f} s  {' -> '.join(chain['calls'])}")
    print("  node floor    " + ", ".join(f"{k.removesuffix('_s')} {val:.2f}" for k, val in nf.items()))
    c = cp["create"]
    print(f"  bound = {c['api_s']:.2f} ({c['longest_cloud']}) + {c['boot_s']:.2f} boot + {c['node_floor_s']:.2f} "
          f"nodes = {c['bound_s']:.2f} s")
    print("critical path (delete):")
    for cloud, chain in cp["delete"]["chains"].items():
        print(f"  {cloud:<13} {chain['seconds']:5.2f} s  {' -> '.join(chain['calls'])}")


def print_cloud_like(c: dict[str, Any], profile: bool) -> None:
    """The second profile: the clouds' own latencies, compressed."""
    print(f"\n=== profile {c['pacing']}: the clouds' measured latencies (provisioner/sandbox/pacing.py), "
          f"time compressed {c['compression']:g}x ===")
    print_paths(c["critical_path"], c["node_floor"])
    print(f"\n{'':<26}{'wall s':>8}{'bound s':>9}{'ratio':>7}  target 1.15x")
    for what in ("create", "delete"):
        wall, bound = c[f"{what}_24"]["wall_s"], c["critical_path"][what]["bound_s"]
        ratio = c[f"{what}_ratio"]
        print(f"{what + '-cluster (24 nodes)':<26}{wall:>8.2f}{bound:>9.2f}{ratio:>7.2f}  "
              f"{'met' if ratio <= 1.15 else 'missed'}   first API call {c[what + '_24']['first_call_s']} s")
    if profile:
        for what in ("create_24", "delete_24"):
            print(f"--- {c['pacing']} {what.replace('_', ' ')} nodes ---")
            for cloud, t in c[what]["timeline"].items():
                print(f"{cloud}: {t['calls']} calls in {t['waves']} waves, first {t['first_call_s']} s, last "
                      f"{t['last_call_s']} s")
            for key, times in c[what].get("steps", {}).items():
                print(f"   {key:<24} {times.get('begin', float('nan')):6.2f} -> {times.get('end', float('nan')):6.2f}")


def print_startup(r: dict[str, Any]) -> None:
    """Start-up to the first API call of each command measured (and, with --profile, what each
    cloud's SDK adds to starting cast, and a one-cloud command's start-up per cloud)."""
    firsts = [("create 24", r["create_24"].get("first_call_s")), ("delete 24", r["delete_24"].get("first_call_s"))]
    firsts += [(f"add-node at {n}", a.get("first_call_s")) for n, a in _by_size(r.get("add_node", {}))]
    print("\nstart-up to the first API call: "
          + ", ".join(f"{what} {t:.2f} s" for what, t in firsts if t is not None) + "  (target four-cloud 1.2 s)")
    if "one_cloud_first_call_s" in r:
        print("  one-cloud delete-cluster: " + ", ".join(
            f"{c} {t:.2f} s" for c, t in r["one_cloud_first_call_s"].items() if t is not None) + "  (target 0.6 s)")
    if "import_costs" in r:
        costs = r["import_costs"]
        print(f"  starting cast alone {costs['cast_alone_s']:.2f} s; opening a cloud adds: "
              + ", ".join(f"{c} {costs[c + '_s']:.2f} s" for c in CLOUDS))


def _by_size(figures: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted(figures.items(), key=lambda kv: int(kv[0]))


def print_profile(r: dict[str, Any]) -> None:
    for what in ("create_24", "delete_24"):
        print(f"\n--- profile: {what.replace('_', ' ')} nodes (seconds after `cast` started) ---")
        for cloud, t in r[what]["timeline"].items():
            print(f"{cloud}: {t['calls']} calls in {t['waves']} waves, first {t['first_call_s']} s, last "
                  f"{t['last_call_s']} s, API busy {t['api_busy_s']} s")
            for w in t["timeline"]:
                routes = ", ".join(f"{k}x{n}" if n > 1 else k for k, n in w["routes"].items())
                print(f"   {w['from_s']:6.2f}-{w['to_s']:6.2f}  {routes[:150]}")
        if "steps" in r[what]:
            print("engine steps (journal):")
            for key, times in r[what]["steps"].items():
                print(f"   {key:<24} {times.get('begin', float('nan')):6.2f} -> {times.get('end', float('nan')):6.2f}")
        else:
            print("progress:\n   " + "\n   ".join(r[what]["progress"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-delay-ms", type=float, default=100.0)
    parser.add_argument("--boot-delay-s", type=float, default=3.0)
    parser.add_argument("--region", default="eu-frankfurt")
    parser.add_argument("--cloud-pacing", default="cloud:10", help="the second profile: cloud:F (the clouds' "
                        "measured latencies, F times faster; sandbox.pacing), or none")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--quick", action="store_true", help="24-node create/delete, add-node and check at 10")
    parser.add_argument("--add-node-only", action="store_true", help="only add-node at 10 and 50 nodes, by step")
    parser.add_argument("--profile", action="store_true", help="print where create and delete spend their time")
    parser.add_argument("--repeat", type=int, help="create and delete runs at 24 nodes (median; default 3, quick 1)")
    parser.add_argument("--wait-free-s", type=float, default=1800, help="how long to wait for another sandbox")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("the sandbox needs root: run this as root")
    args.repeat = args.repeat or (1 if args.quick else 3)
    wait_for_free_machine(args.wait_free_s)
    started = time.monotonic()
    if args.add_node_only:
        only = run_add_node_only(args)
        print_add_node_only(only)
        print(f"\n(benchmark ran {time.monotonic() - started:.0f} s)")
        if args.json:
            args.json.write_text(json.dumps(only, indent=2, default=str))
        return
    result = run(args)
    result["verdicts"] = verdicts(result)
    result["bench_s"] = round(time.monotonic() - started, 1)
    print_report(result, args.profile)
    print(f"\n(benchmark ran {result['bench_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
