"""The sandbox supervisor: the moto server for AWS and our GCP, Azure and DigitalOcean
emulators on loopback, and a loop that boots every VM an emulator reports running as a
local host (provisioner/sandbox/hosts.py) with that VM's public IP, and with an sshd holding
the host key and authorized key from the VM's cloud-init user-data. Only those two things are
read from user-data; nothing in it is executed. A VM that is gone loses its host. Hosts are
grouped by cloud, with delay lines between clouds set from the region map's expected RTTs.

Run it with `cast sandbox up` (which starts `python -m provisioner.sandbox.supervisor` in the
background); it writes sandbox.json in its directory once it is ready and removes everything
it made when it gets SIGTERM (`cast sandbox down`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..cloudinit import read_bootstrap
from ..errors import CastError
from ..preflight import check_pairs
from ..regions import load_region_map
from . import aws_moto, azure_emulator, do_emulator, gcp_emulator
from .emulator import EmulatedVm, EmulatorServer

LOG = logging.getLogger("cast.sandbox")
STATE_FILE = "sandbox.json"
POLL_S = 0.5  # how often the supervisor looks for VMs to boot or remove
# Public address pools, one per cloud: documentation (RFC 5737) and benchmarking (RFC 2544)
# ranges, never routed on the internet. 192.0.2.0/24 is left out: machines of this
# workplace use it for their own uplink. `check_pools` refuses any pool the host routes.
POOLS = {
    "aws": aws_moto.PUBLIC_POOL,  # 198.18.0.0/24
    "gcp": gcp_emulator.PUBLIC_POOL,  # 198.51.100.0/24
    "azure": azure_emulator.PUBLIC_POOL,  # 203.0.113.0/24
    "digitalocean": do_emulator.PUBLIC_POOL,  # 198.18.1.0/24
}
SANDBOX_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "CAST_GCP_PROJECT": "cast-sandbox",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "DIGITALOCEAN_TOKEN": "sandbox",
}


def moto_running_vms(regions: list[str]) -> list[EmulatedVm]:
    """The running instances of the in-process moto server in `regions`, as the sandbox needs them."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    vms = []
    for region in regions:
        for instance in ec2_backends[DEFAULT_ACCOUNT_ID][region].all_instances():
            if instance.state != "running":
                continue
            raw = instance.user_data  # moto keeps it base64-encoded
            text = raw.decode() if raw is not None else ""
            vms.append(EmulatedVm(instance.id, instance.id, instance.public_ip, instance.private_ip, text))
    return vms


class Sandbox:
    """The emulated clouds and their hosts. start(), then sync() repeatedly (or serve()), then stop()."""

    def __init__(self, directory: Path, region: str = "us-east"):
        self.directory = directory
        self.prefix = hosts_prefix(directory)
        self.region = region
        self.emulators: dict[str, EmulatorServer] = {}
        self.moto: Any = None
        self.hosts: Any = None
        self.booted: dict[str, str] = {}  # host name -> cloud
        self.failed: set[str] = set()  # VMs with no cast host key: never booted
        self.retry_at: dict[str, tuple[float, float]] = {}  # host name -> (when, backoff) after a failed boot
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="boot")

    # --- start and stop ----------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Start every emulator and the host substrate; return the environment that points
        cast at them."""
        from .aws_moto import MotoSandbox
        from .azure_emulator import AzureEmulator
        from .do_emulator import DigitalOceanEmulator
        from .gcp_emulator import GcpEmulator
        from .hosts import LocalHosts

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.hosts = LocalHosts(self.prefix)  # removes what a crashed run with this prefix left
        check_pools(POOLS.values())
        for cloud, pool in POOLS.items():
            self.hosts.add_group(cloud, pool)
        self._set_delays()
        self.moto = MotoSandbox(public_pool=POOLS["aws"])
        aws_endpoint = self.moto.start()
        self.emulators = {
            "gcp": GcpEmulator().start(),
            "azure": AzureEmulator(abandoned_after_s=2.0).start(),
            "digitalocean": DigitalOceanEmulator().start(),
        }
        return {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "CAST_GCP_ENDPOINT": self.emulators["gcp"].url,
            "CAST_AZURE_ENDPOINT": self.emulators["azure"].url,
            "CAST_DIGITALOCEAN_ENDPOINT": self.emulators["digitalocean"].url,
            **SANDBOX_CREDENTIALS,
        }

    def _set_delays(self) -> None:
        """A delay line between every two clouds: the region's expected RTT (the published
        figure where there is one, else the physical bound)."""
        region = load_region_map().region(self.region)
        for pair in check_pairs(region, region.clouds, threshold_ms=1e9):
            if pair.expected_ms >= 0.1:
                self.hosts.set_delay(pair.clouds[0], pair.clouds[1], pair.expected_ms)

    def stop(self) -> None:
        """Stop the emulators and remove every host, delay line and namespace."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for emulator in self.emulators.values():
            emulator.stop()
        if self.moto is not None:
            self.moto.stop()
        if self.hosts is not None:
            self.hosts.close()

    # --- supervision -------------------------------------------------------------------

    def running(self) -> dict[str, tuple[str, EmulatedVm]]:
        """Every running VM with a public IP, by host name: `<cloud>-<id>`."""
        found: dict[str, tuple[str, EmulatedVm]] = {}
        sources = [("aws", moto_running_vms(self.moto.regions))]
        sources += [(cloud, e.running_vms()) for cloud, e in self.emulators.items()]
        for cloud, vms in sources:
            for vm in vms:
                if vm.public_ip:
                    found[_host_name(cloud, vm.id)] = (cloud, vm)
        return found

    def sync(self) -> None:
        """One pass: boot hosts for new VMs, remove hosts of VMs that are gone."""
        running = self.running()
        for name in [n for n in self.booted if n not in running]:
            LOG.info("VM gone: removing host %s", name)
            self.hosts.remove_host(name)
            del self.booted[name]
        self.failed &= running.keys()
        self.retry_at = {n: r for n, r in self.retry_at.items() if n in running}
        now = time.monotonic()
        new = [
            (n, c, vm)
            for n, (c, vm) in running.items()
            if n not in self.booted and n not in self.failed and self.retry_at.get(n, (0.0, 0.0))[0] <= now
        ]
        self.booted.update({name: cloud for name, cloud, _ in new})
        list(self._pool.map(lambda item: self._boot(*item), new))

    def _boot(self, name: str, cloud: str, vm: EmulatedVm) -> None:
        boot = read_bootstrap(vm.user_data)
        if boot is None or not boot.authorized_keys:
            LOG.info("VM %s (%s) has no cast host key in its user-data: not booted", vm.id, cloud)
            self.booted.pop(name, None)
            self.failed.add(name)
            return
        try:
            self.hosts.add_host(name, cloud, vm.public_ip, boot.host_key_private, "\n".join(boot.authorized_keys))
            LOG.info("booted %s: %s VM %s at %s", name, cloud, vm.id, vm.public_ip)
            self.retry_at.pop(name, None)
        except Exception as exc:  # one bad VM must not stop the supervisor: try it again later
            backoff = min(30.0, 2 * self.retry_at.get(name, (0.0, 1.0))[1])
            LOG.error("cannot boot %s (%s VM %s), retrying in %.0fs: %s", name, cloud, vm.id, backoff, exc)
            self.booted.pop(name, None)
            self.retry_at[name] = (time.monotonic() + backoff, backoff)

    def serve(self, stop: threading.Event) -> None:
        """Supervise until `stop` is set."""
        while not stop.is_set():
            try:
                self.sync()
            except Exception:
                LOG.exception("supervision pass failed")
            stop.wait(POLL_S)


def check_pools(pools: Iterable[str]) -> None:
    """Refuse to start when this machine already routes a pool (its own network): the
    sandbox would take that traffic over."""
    import ipaddress
    import subprocess

    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True, check=True).stdout
    for line in routes.splitlines():
        destination = line.split()[0]
        if destination == "default":
            continue
        network = ipaddress.IPv4Network(destination, strict=False)
        for pool in pools:
            if network.overlaps(ipaddress.IPv4Network(pool)):
                raise SandboxPoolError(
                    f"this machine already routes {network} ({line.strip()}): another sandbox runs, "
                    f"or the machine's own network uses it; the sandbox's pool {pool} would take it over"
                )


class SandboxPoolError(CastError):
    """A sandbox address pool collides with this machine's own network."""


def hosts_prefix(directory: Path) -> str:
    """The name prefix of a sandbox's namespaces and links: one per sandbox directory, so a
    test's sandbox never touches a user's."""
    return "cs" + hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:6]


def _host_name(cloud: str, vm_id: str) -> str:
    # namespace and link names are short: keep the host name short and unique
    short = {"aws": "a", "gcp": "g", "azure": "z", "digitalocean": "d"}[cloud]
    return short + hashlib.sha256(f"{cloud}/{vm_id}".encode()).hexdigest()[:8]


def main(argv: list[str] | None = None) -> None:
    """`python -m provisioner.sandbox.supervisor DIRECTORY [--region R]`: run until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--region", default="us-east")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sandbox = Sandbox(args.directory, args.region)
    state = args.directory / STATE_FILE
    try:
        env = sandbox.start()
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "region": args.region, "started_at": time.time(), "env": env}))
        tmp.replace(state)
        LOG.info("sandbox ready")
        sandbox.serve(stop)
    finally:
        state.unlink(missing_ok=True)
        sandbox.stop()
        LOG.info("sandbox stopped")


if __name__ == "__main__":
    main()
