"""Count the AWS API calls cast makes to create and to tear down a cluster of 1, 5 and 20
nodes, against a seeded moto server behind the counting proxy (calls as they reach the wire,
botocore's retries included). Prints a table.

    .venv/bin/python scripts/bench_aws_calls.py
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from provisioner.clouds.aws import Provider  # noqa: E402
from provisioner.clouds.base import CloudTarget, ClusterRef, VmRequest  # noqa: E402
from provisioner.plan import firewall_rules, node_name  # noqa: E402
from provisioner.regions import load_region_map  # noqa: E402
from provisioner.sandbox.aws_fault_proxy import FaultProxy  # noqa: E402
from provisioner.sandbox.aws_moto import MotoSandbox  # noqa: E402

REGION, ZONE = "us-east-1", "us-east-1a"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGn3w9V1z5i0a2bY0a9uL2V6XhkC0qk8b6wq3O0xkQ2j bench"


def target(name: str) -> CloudTarget:
    image = load_region_map().region("us-east").clouds["aws"].image
    return CloudTarget(ClusterRef(name, str(uuid.uuid4())), REGION, ZONE, "10.10.0.0/16",
                       "10.10.1.0/24", {r: firewall_rules(r, ["0.0.0.0/0"]) for r in
                                        ("master", "worker")}, image)


def vms(name: str, count: int) -> list[VmRequest]:
    masters = 1 if count < 5 else 3
    roles = ["master"] * masters + ["worker"] * (count - masters)
    index: Counter[str] = Counter()
    out = []
    for role in roles:
        index[role] += 1
        size = "m6i.large" if role == "master" else "t3.medium"
        out.append(VmRequest(node_name(name, "aws", role, index[role]), role, size, "#cloud-config\n"))
    return out


def main() -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_EC2_METADATA_DISABLED="true")
    rows = []
    with MotoSandbox([REGION], access_key="bench", secret_key="bench") as sandbox, \
            FaultProxy(sandbox.endpoint) as proxy:
        os.environ["AWS_ENDPOINT_URL"] = proxy.endpoint
        for count in (1, 5, 20):
            p, t = Provider(REGION, ZONE), target(f"bench{count}")
            proxy.clear()
            start = time.monotonic()
            p.ensure_network(t)
            p.ensure_subnet(t)
            p.ensure_firewall(t)
            p.ensure_ssh_key(t, KEY)
            p.ensure_vms(t, vms(t.cluster.name, count), KEY)
            create, create_s = Counter(proxy.calls), time.monotonic() - start
            proxy.clear()
            start = time.monotonic()
            p.teardown(t)
            teardown, teardown_s = Counter(proxy.calls), time.monotonic() - start
            rows.append((count, create, create_s, teardown, teardown_s))
    print(f"{'nodes':>5} {'create calls':>12} {'of which per-node':>18} {'teardown calls':>14}"
          f" {'create s':>9} {'teardown s':>10}")
    for count, create, create_s, teardown, teardown_s in rows:
        per_node = create["RunInstances"]
        print(f"{count:>5} {sum(create.values()):>12} {per_node:>18} {sum(teardown.values()):>14}"
              f" {create_s:>9.2f} {teardown_s:>10.2f}")
    print()
    for count, create, _, teardown, _ in rows:
        print(f"{count} nodes, create:   {dict(sorted(create.items()))}")
        print(f"{count} nodes, teardown: {dict(sorted(teardown.items()))}")


if __name__ == "__main__":
    main()
