"""Wall time of the cluster lifecycle in the sandbox, through the `cast` command: create (with
mesh and latency check), check-latency, add-node and delete-cluster, for four-cloud clusters of
growing size. Needs root (the sandbox). Starts and stops its own sandbox in a temporary
state directory.

Usage: sudo .venv/bin/python scripts/bench_lifecycle.py [NODES_PER_CLOUD ...]   (default 1 2 4)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

REGION = "eu-frankfurt"
CLOUDS = ("aws", "gcp", "azure", "digitalocean")


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1, 2, 4]
    with tempfile.TemporaryDirectory(prefix="cast-bench-") as home:
        env = {**os.environ, "CAST_HOME": home}

        def cast(*args: str) -> tuple[float, str]:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "provisioner", *args], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"cast {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
            return time.perf_counter() - start, done.stdout

        cast("sandbox", "up", "--region", REGION)
        try:
            env.update(json.loads(cast("sandbox", "env", "--output", "json")[1]))
            print(
                f"{'nodes':>5} {'create s':>9} {'check-latency s':>16} {'worst ms':>9}"
                f" {'add-node s':>11} {'delete s':>9}"
            )
            for per_cloud in sizes:
                name = f"bench{per_cloud}"
                flags = [f"--cloud={c}:{1 if c == 'aws' else 0}:{per_cloud}" for c in CLOUDS]
                nodes = 1 + per_cloud * len(CLOUDS)
                # The sandbox runs every VM on this machine's cores: time is what is measured
                # here, so a loaded machine's latency must not end the run.
                create, _ = cast(
                    "create-cluster", name, "--region", REGION, *flags, "--quiet", "--latency-threshold-ms", "1000"
                )
                latency, out = cast(
                    "check-latency",
                    name,
                    "--count",
                    "5",
                    "--interval",
                    "0.2",
                    "--threshold-ms",
                    "1000",
                    "--output",
                    "json",
                )
                worst = max(
                    p["avg_ms"] or 0 for p in json.loads(out)["pairs"] if p["source_group"] != p["target_group"]
                )
                add, _ = cast("add-node", name, "--cloud", "gcp", "--quiet")
                delete, _ = cast("delete-cluster", name, "--yes", "--quiet")
                print(
                    f"{nodes:>5} {create:>9.1f} {latency:>16.1f} {worst:>9.1f} {add:>11.1f} {delete:>9.1f}", flush=True
                )
        finally:
            cast("sandbox", "down")


if __name__ == "__main__":
    main()
