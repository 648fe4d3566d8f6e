"""DigitalOcean API calls and wall time for create and teardown of 1, 5 and 20 nodes, through
the real pydo against the DigitalOcean emulator on loopback.

    .venv/bin/python scripts/bench_do_calls.py [--boot-delay 0.5] [--distinct-user-data]

Nodes are one master and the rest workers. By default every worker shares its cloud-init
text, so the workers go in one multi-create call; --distinct-user-data gives each node its
own (one create call per node, as when each node's cloud-init carries its own host keys).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.clouds.base import CloudTarget, ClusterRef, VmRequest  # noqa: E402
from provisioner.clouds.digitalocean import Provider  # noqa: E402
from provisioner.plan import firewall_rules  # noqa: E402
from provisioner.sandbox.do_emulator import DigitalOceanEmulator  # noqa: E402

REGION = "nyc1"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJlbmNoLWtleS1tYXRlcmlhbC0wMTIzNDU2Nzg5YWJj bench"


def requests(n: int, distinct: bool) -> list[VmRequest]:
    out = [VmRequest("bench-do-m1", "master", "s-2vcpu-8gb-amd", "#cloud-config\n# m1\n")]
    for i in range(1, n):
        text = f"#cloud-config\n# w{i}\n" if distinct else "#cloud-config\n# worker\n"
        out.append(VmRequest(f"bench-do-w{i}", "worker", "s-2vcpu-4gb", text))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--boot-delay", type=float, default=0.5, help="seconds a droplet stays 'new'")
    ap.add_argument("--distinct-user-data", action="store_true")
    args = ap.parse_args()

    # the account has a default VPC in the region already, so the cluster's VPC can be deleted
    em = DigitalOceanEmulator(boot_delay_s=args.boot_delay, droplet_limit=1000, default_vpc_regions=[REGION]).start()
    os.environ["CAST_DIGITALOCEAN_ENDPOINT"] = em.url
    os.environ["DIGITALOCEAN_TOKEN"] = "bench-token"
    print(f"boot delay {args.boot_delay}s, distinct user data: {args.distinct_user_data}, "
          f"OpenAPI check: {'on' if em.checker else 'off'}")
    print(f"{'nodes':>5} {'phase':<9} {'calls':>5} {'seconds':>8}  by route")
    try:
        for n in (1, 5, 20):
            em.reset()
            provider = Provider(REGION)
            provider.poll_initial_s = 0.1
            provider.poll_max_s = 1.0
            cluster = ClusterRef("bench", str(uuid.uuid4()))
            target = CloudTarget(cluster, REGION, None, "", "",
                                 {r: firewall_rules(r, ["0.0.0.0/0"]) for r in ("master", "worker")},
                                 {"slug": "ubuntu-24-04-x64"})
            started = time.monotonic()
            provider.ensure_network(target)
            provider.ensure_subnet(target)
            provider.ensure_firewall(target)
            provider.ensure_ssh_key(target, PUBLIC_KEY)
            provider.ensure_vms(target, requests(n, args.distinct_user_data), PUBLIC_KEY)
            report(n, "create", em, time.monotonic() - started)
            em.calls.clear()
            started = time.monotonic()
            provider.teardown(target)
            report(n, "teardown", em, time.monotonic() - started)
            assert not em.errors, em.errors
    finally:
        em.stop()


def report(n: int, phase: str, em: DigitalOceanEmulator, seconds: float) -> None:
    routes = ", ".join(f"{route} {count}" for route, count in sorted(em.calls.items()))
    print(f"{n:>5} {phase:<9} {sum(em.calls.values()):>5} {seconds:>8.2f}  {routes}")


if __name__ == "__main__":
    main()
