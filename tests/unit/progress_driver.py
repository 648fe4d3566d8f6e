"""A small real run of Progress for the terminal tests: a cluster, two clouds whose VM wait
reports counts through report(), a long detail, remote text with markup and an escape, the
mesh and Kubernetes rows, then the result on stdout once the live view has ended.
Run as `python -m tests.unit.progress_driver [--fail]`."""

from __future__ import annotations

import sys
import threading
import time

from provisioner.progress import Progress, report
from provisioner.terminal import console

LONG_DETAIL = "create VPC cast-demo-b3a120c1 " + "with-a-very-long-detail-" * 12 + "end"
REMOTE = "wg: Unable to modify interface [/etc/wireguard/wg0.conf] [link=http://x] \x1b[31mred\r"
DURING = "a line on stdout while the view is live"
PAUSE_S = 0.15  # long enough for the live view to draw each state at least once


def cloud(progress: Progress, name: str, vms: int) -> None:
    progress.line(name, "network", "start")
    time.sleep(PAUSE_S)
    progress.line(name, "network", "done", LONG_DETAIL if name == "aws" else "in place")
    progress.line(name, "vms", "start")
    with progress.reporting(name, "vms"):
        for running in range(vms + 1):
            report(f"{running}/{vms} running")
            time.sleep(PAUSE_S)
    progress.line(name, "vms", "done", f"{vms} running")


def main() -> None:
    fail = "--fail" in sys.argv
    with Progress(console(stderr=True)) as progress:
        progress.line("cluster", "state", "done", "demo uuid 1234")
        clouds = [threading.Thread(target=cloud, args=(progress, "aws", 3)),
                  threading.Thread(target=cloud, args=(progress, "gcp", 2))]
        for t in clouds:
            t.start()
        for t in clouds:
            t.join()
        print(DURING, flush=True)  # stdout while the view is live: above the rows, or down its pipe
        progress.line("mesh", "wireguard", "start")
        time.sleep(PAUSE_S)
        if fail:
            progress.line("mesh", "wireguard", "fail", REMOTE)
        else:
            progress.line("mesh", "wireguard", "done", "5 brought up; 5 nodes in mesh")
            progress.line("kubernetes", "bootstrap", "skip", "the sandbox's hosts cannot run a kubelet")
            progress.line("cluster", "done", "done", "5 nodes on 2 clouds")
    console().print("RESULT demo ready")


if __name__ == "__main__":
    main()
