"""The sandbox supervisor: the moto server for AWS and our GCP, Azure and DigitalOcean
emulators on loopback, and a loop that boots every VM an emulator reports running as a
local host (provisioner/sandbox/hosts.py) with that VM's public IP, and with an sshd holding
the host key and authorized key from the VM's cloud-init user-data. Only those two things are
read from user-data; nothing in it is executed. A VM that is gone loses its host. Hosts are
grouped by cloud, with delay lines between clouds set from the region map's expected RTTs.

Cloud-like pacing, both off by default: every API request to any emulated cloud waits
`api_delay_ms` before it is answered (AWS through the counting fault proxy in front of moto),
and a VM's host answers SSH `boot_delay_s` after the cloud accepted the VM's create, neither
earlier nor later: the whole host (its network, its root, its sshd held at a gate) is made as
soon as the VM runs (its address answers, port 22 refuses, like a VM whose kernel is up), and
at creation + boot delay, on a timed wait for the earliest such moment, its gate opens (sshd
starts in milliseconds; on a pool of its own, never queued behind hosts still being made).
API calls that start or delete VMs wake the supervisor at once; changes that come with time
alone are seen within POLL_S.

Run it with `cast sandbox up` (which starts `python -m provisioner.sandbox.supervisor` in the
background); it writes sandbox.json in its directory once it is ready and removes everything
it made when it gets SIGTERM (`cast sandbox down`).
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cloudinit import read_bootstrap
from ..errors import CastError
from ..preflight import check_pairs
from ..private_files import trusted_dir, write_private_file
from ..processes import process_start
from ..regions import load_region_map
from ..retry import backoff_delays
from .aws_fault_proxy import FaultProxy
from .emulator import CONTROL_TOKEN_ENV, EmulatedVm, EmulatorServer
from .pacing import Pacing, flat
from .pacing import parse as parse_pacing
from .pools import CLOUD_ORDER, DEFAULT_BLOCK, dns_address, pools_of, routed

LOG = logging.getLogger("cast.sandbox")
STATE_FILE = "sandbox.json"
POLL_S = 0.1  # how often the supervisor looks for VMs to boot or remove, at the longest
INGRESS_POLL_S = 1.0  # how often it reads the load balancers and zones, at the longest
INGRESS_GAP_S = 0.2  # and at the most often
BOOT_WORKERS = 8  # making hosts (processes to start: bounded by this machine's CPUs)
OPEN_WORKERS = 16  # opening their gates at their due time (mostly waiting for sshd to listen)


def run_credentials() -> dict[str, str]:
    """Fresh credentials for one run of the sandbox, which every emulator and its control routes
    require: a local user who cannot read the (root-only) sandbox state cannot drive them."""
    import secrets
    import string

    key_id = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
    return {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
        "CAST_GCP_PROJECT": "cast-sandbox",
        "CAST_GCP_TOKEN": secrets.token_urlsafe(32),
        "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "CAST_AZURE_TOKEN": secrets.token_urlsafe(32),
        "DIGITALOCEAN_TOKEN": f"dop_v1_{secrets.token_hex(32)}",
        CONTROL_TOKEN_ENV: secrets.token_urlsafe(32),
    }


def moto_running_vms(regions: list[str]) -> list[EmulatedVm]:
    """The running instances of the in-process moto server in `regions`, as the sandbox needs them."""
    from datetime import UTC

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    vms = []
    for region in regions:
        for instance in ec2_backends[DEFAULT_ACCOUNT_ID][region].all_instances():
            if instance.state != "running":
                continue
            raw = instance.user_data  # moto keeps it base64-encoded
            text = raw.decode() if raw is not None else ""
            launched = instance.launch_time.replace(tzinfo=UTC).timestamp()  # moto: naive UTC
            vms.append(EmulatedVm(instance.id, instance.id, instance.public_ip, instance.private_ip, text,
                                  created_at=launched))
    return vms


@dataclass
class _Boot:
    """A VM's host on its way up: wired once the VM runs, serving SSH from `due` on."""

    cloud: str
    vm: EmulatedVm
    due: float  # monotonic time its sshd is to answer: the VM's creation plus the boot delay
    phase: str = "wiring"  # wiring (the host being made) -> wired (made, gate shut) -> serving -> up


class Sandbox:
    """The emulated clouds and their hosts. start(), then sync() repeatedly (or serve()), then stop().
    `api_delay_s` holds every cloud API request that long; `boot_delay_s` is how long after
    its create a VM's host answers SSH."""

    def __init__(self, directory: Path, region: str = "us-east", *, api_delay_s: float = 0.0,
                 boot_delay_s: float = 0.0, pool: str = DEFAULT_BLOCK, pacing: Pacing | None = None,
                 host_kind: str = "namespace", pools: Mapping[str, str] | None = None):
        self.directory = directory
        # one public /24 per cloud: the ones `cast sandbox up` chose (pools.check_block), else carved from `pool`
        self.pools = dict(pools) if pools else pools_of(pool)
        self.prefix = hosts_prefix(directory)
        self.region = region
        # per cloud and kind of call (sandbox.pacing); flat: api_delay_s and boot_delay_s for all
        self.pacing = pacing or flat(api_delay_s, boot_delay_s)
        self.emulators: dict[str, EmulatorServer] = {}
        self.moto: Any = None
        self.proxy: FaultProxy | None = None
        self.hosts: Any = None
        self.host_kind = host_kind  # "namespace" (hosts.py) or "vm" (QEMU guests: vm_guest.py)
        self.vms: Any = None
        self.accel = ""
        self.boots: dict[str, _Boot] = {}  # host name -> its boot, until its VM is gone
        self.failed: set[str] = set()  # VMs with no cast host key: never booted
        # host name -> (when to try again, its backoff delays) after a failed boot
        self.retry_at: dict[str, tuple[float, Iterator[float]]] = {}
        self._busy: set[str] = set()  # hosts with a job (wire, serve, remove) under way
        self._seen_running: set[str] = set()  # the hosts whose VM ran at the last pass's look
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=BOOT_WORKERS, thread_name_prefix="boot")
        self._open_pool = ThreadPoolExecutor(max_workers=OPEN_WORKERS, thread_name_prefix="open")
        self.dns = dns_address(self.pools)  # the sandbox DNS server's address
        self.frontends: Any = None  # the load balancers and the DNS server, run for real (frontends.py)
        self._ingress_wake = threading.Event()
        self._ingress_stop = threading.Event()
        self._ingress_thread: threading.Thread | None = None

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
        trusted_dir(self.directory)  # root writes here: nobody else may
        self.hosts = LocalHosts(self.prefix)  # removes what a crashed run with this prefix left
        check_pools(self.pools.values())  # `cast sandbox up` checked more; this catches a race
        for cloud, pool in self.pools.items():
            self.hosts.add_group(cloud, pool)
        self._set_delays()
        if self.host_kind == "vm":
            self._start_vms()
        credentials = run_credentials()
        self.moto = MotoSandbox(public_pool=self.pools["aws"], access_key=credentials["AWS_ACCESS_KEY_ID"],
                                secret_key=credentials["AWS_SECRET_ACCESS_KEY"])
        self.proxy = FaultProxy(self.moto.start())  # counts AWS calls by action, and paces them
        self.proxy.control_token = credentials[CONTROL_TOKEN_ENV]
        self.proxy.pacing = self.pacing.of("aws")
        self.proxy.listeners.append(self.wake)
        aws_endpoint = self.proxy.start()
        self.emulators = {
            "gcp": GcpEmulator(public_pool=self.pools["gcp"], token=credentials["CAST_GCP_TOKEN"],
                               op_delay=self.pacing.of("gcp").op_s),
            # operations that take their time whether polled or not, as ARM's do
            "azure": AzureEmulator(abandoned_after_s=2.0, public_pool=self.pools["azure"], lro_polls=0,
                                   token=credentials["CAST_AZURE_TOKEN"]),
            # an account that has used DigitalOcean's regions has a default VPC in each (where
            # there is none, cast makes one before its own: see the provider)
            "digitalocean": DigitalOceanEmulator(public_pool=self.pools["digitalocean"],
                                                 default_vpc_regions=_digitalocean_regions(),
                                                 token=credentials["DIGITALOCEAN_TOKEN"]),
        }
        azure = self.emulators["azure"]
        assert isinstance(azure, AzureEmulator)
        azure.op_by_namespace = dict(self.pacing.of("azure").op_by_namespace)
        for emulator in self.emulators.values():
            emulator.control_token = credentials[CONTROL_TOKEN_ENV]
            emulator.pacing = self.pacing.of(emulator.cloud)
            emulator.listeners.append(self.wake)
            emulator.start()
        self._start_ingress(credentials[CONTROL_TOKEN_ENV])
        return {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "CAST_GCP_ENDPOINT": self.emulators["gcp"].url,
            "CAST_AZURE_ENDPOINT": self.emulators["azure"].url,
            "CAST_DIGITALOCEAN_ENDPOINT": self.emulators["digitalocean"].url,
            **credentials,
        }

    def _start_vms(self) -> None:
        from .vm_guest import VmHosts, probe_accel
        from .vm_image import ensure_image, image_cache

        image = ensure_image(image_cache(self.directory))  # `cast sandbox up` built it already
        accel = probe_accel(image, self.hosts.directory)
        self.accel = f"{accel.name}: {accel.why}"
        LOG.info("VM hosts: image %s, accelerator %s", image.key, self.accel)
        self.vms = VmHosts(self.hosts, image, accel)

    def _set_delays(self) -> None:
        """A delay line between every two clouds: the region's expected RTT (the published
        figure where there is one, else the physical bound)."""
        region = load_region_map().region(self.region)
        for pair in check_pairs(region, region.clouds, threshold_ms=1e9):
            if pair.expected_ms >= 0.1:
                self.hosts.set_delay(pair.clouds[0], pair.clouds[1], pair.expected_ms)

    def _start_ingress(self, token: str) -> None:
        """The DNS server, and a loop that serves the load balancers and zones the APIs report."""
        from .frontends import Frontends
        from .ingress_view import MotoView, collect

        self.frontends = Frontends(self.hosts, self.directory, self.pools, self.dns, CLOUD_ORDER[0])
        self.frontends.start()
        view = MotoView(self.moto)

        def serve() -> None:
            while not self._ingress_stop.is_set():
                self._ingress_wake.clear()
                try:
                    self.frontends.sync(*collect(view, self.emulators, token))
                except Exception:
                    LOG.exception("sandbox ingress pass failed")
                if not self._ingress_stop.wait(INGRESS_GAP_S):  # a burst of API calls: one pass per gap
                    self._ingress_wake.wait(INGRESS_POLL_S)

        self._ingress_thread = threading.Thread(target=serve, name="ingress", daemon=True)
        self._ingress_thread.start()

    def stop(self) -> None:
        """Stop the emulators and remove every host, delay line and namespace."""
        self._ingress_stop.set()
        self._ingress_wake.set()
        if self._ingress_thread is not None:
            self._ingress_thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._open_pool.shutdown(wait=True, cancel_futures=True)
        for emulator in self.emulators.values():
            emulator.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if self.moto is not None:
            self.moto.stop()
        if self.vms is not None:
            self.vms.close()
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

    def wake(self) -> None:
        """Look again now (an API call may have started or deleted a VM, or changed a load
        balancer or a record)."""
        self._wake.set()
        self._ingress_wake.set()

    def sync(self) -> None:
        """One pass: open the gates of hosts whose boot is due (first: reading what runs
        takes a while), make hosts for new VMs, remove hosts of VMs that are gone. The work
        runs on the pools; this returns at once."""
        with self._lock:
            now = time.monotonic()
            # A VM deleted since the last look is not opened (it would answer SSH a moment).
            due = [n for n, b in self.boots.items() if b.phase == "wired" and b.due <= now
                   and n not in self._busy and n in self._seen_running]
            for name in due:
                self.boots[name].phase = "serving"
            self._busy.update(due)
        for name in due:
            self._submit(self._serve, name, self._open_pool)
        running = self.running()
        now, wall = time.monotonic(), time.time()
        with self._lock:
            self._seen_running = set(running)
            gone = [n for n in self.boots if n not in running and n not in self._busy]
            for name in gone:
                del self.boots[name]
            self.failed &= running.keys()
            self.retry_at = {n: r for n, r in self.retry_at.items() if n in running}
            new = [
                n for n in running
                if n not in self.boots and n not in self._busy and n not in self.failed
                and (n not in self.retry_at or self.retry_at[n][0] <= now)
            ]
            for name in new:
                cloud, vm = running[name]
                created = vm.created_at or wall
                boot_s = self.pacing.of(cloud).boot_s
                self.boots[name] = _Boot(cloud, vm, now + max(0.0, created + boot_s - wall))
            self._busy.update(gone + new)
        for name in gone:
            self._submit(self._remove, name)
        for name in new:
            self._submit(self._wire, name)

    def _submit(self, job: Callable[[str], None], name: str, pool: ThreadPoolExecutor | None = None) -> None:
        def run() -> None:
            try:
                job(name)
            except Exception:  # a bug in one job must not leave its host busy for good
                LOG.exception("sandbox job %s for %s failed", job.__name__, name)
                with self._lock:
                    self._busy.discard(name)

        (pool or self._pool).submit(run)

    def _next_wait(self) -> float:
        """Seconds until the earliest wired host is due (at most POLL_S)."""
        with self._lock:
            dues = [b.due for n, b in self.boots.items() if b.phase == "wired" and n not in self._busy]
        return max(0.0, min([POLL_S, *(d - time.monotonic() for d in dues)]))

    def _wire(self, name: str) -> None:
        with self._lock:
            b = self.boots[name]
        if self.vms is not None:
            self._boot_vm(name, b)
            return
        boot = read_bootstrap(b.vm.user_data)
        if boot is None or not boot.authorized_keys:
            LOG.info("VM %s (%s) has no cast host key in its user-data: not booted", b.vm.id, b.cloud)
            with self._lock:
                self.boots.pop(name, None)
                self.failed.add(name)
                self._busy.discard(name)
            return
        started = time.monotonic()
        try:
            self.hosts.add_host(name, b.cloud, b.vm.public_ip, boot.host_key_private, "\n".join(boot.authorized_keys),
                                serve=False)
        except Exception as exc:  # one bad VM must not stop the supervisor: try it again later
            self._boot_failed(name, b, exc)
            return
        made = time.monotonic()
        LOG.info("made %s in %.3fs; its SSH is due in %.3fs", name, made - started, b.due - made)
        with self._lock:
            if b.due <= time.monotonic():
                b.phase = "serving"  # due already: go on in this job
            else:
                b.phase = "wired"
                self._busy.discard(name)
        if b.phase == "serving":
            self._serve(name)
        else:
            self.wake()  # the loop's timed wait must now include this host's due time

    def _boot_vm(self, name: str, b: _Boot) -> None:
        """Start the VM's guest, which boots on its own (its cloud-init, its sshd)."""
        try:
            self.vms.start(name, b.cloud, b.vm.public_ip, b.vm.user_data, instance_id=b.vm.id)
        except Exception as exc:
            self._boot_failed(name, b, exc)
            return
        with self._lock:
            b.phase = "up"
            self._busy.discard(name)
        LOG.info("started guest %s: %s VM %s at %s (%s)", name, b.cloud, b.vm.id, b.vm.public_ip, self.accel)

    def _serve(self, name: str) -> None:
        with self._lock:
            b = self.boots[name]
        try:
            self.hosts.serve_ssh(name)
        except Exception as exc:
            self._boot_failed(name, b, exc)
            return
        with self._lock:
            b.phase = "up"
            self._busy.discard(name)
        late = time.time() - ((b.vm.created_at or 0.0) + self.pacing.of(b.cloud).boot_s)
        LOG.info("booted %s: %s VM %s at %s (SSH %.3fs after creation + boot delay)", name, b.cloud, b.vm.id,
                 b.vm.public_ip, late)

    def _boot_failed(self, name: str, b: _Boot, exc: Exception) -> None:
        with self._lock:
            delays = self.retry_at[name][1] if name in self.retry_at else backoff_delays(2.0, 30.0)
            backoff = next(delays)
            self.boots.pop(name, None)
            self._busy.discard(name)
            self.retry_at[name] = (time.monotonic() + backoff, delays)
        LOG.error("cannot boot %s (%s VM %s), retrying in %.0fs: %s", name, b.cloud, b.vm.id, backoff, exc)

    def _remove(self, name: str) -> None:
        LOG.info("VM gone: removing host %s", name)
        try:
            if self.vms is not None:
                self.vms.stop(name)
            else:
                self.hosts.remove_host(name)
        finally:
            with self._lock:
                self._busy.discard(name)

    def serve(self, stop: threading.Event) -> None:
        """Supervise until `stop` is set (call wake() after setting it, to be quick)."""
        while not stop.is_set():
            self._wake.clear()  # before the pass: a wake during it makes the wait return at once
            try:
                self.sync()
            except Exception:
                LOG.exception("supervision pass failed")
            self._wake.wait(self._next_wait())


def check_pools(pools: Iterable[str]) -> None:
    """Refuse to start when this machine already routes a pool (another sandbox that started
    since `cast sandbox up` checked the whole block): the sandbox would take that traffic over."""
    in_use = routed()
    for pool in pools:
        for used in in_use:
            if used.network.overlaps(ipaddress.IPv4Network(pool)):
                raise SandboxPoolError(f"{used.source}: another sandbox runs, or the machine's own network "
                                       f"uses it; the sandbox's pool {pool} would take it over")


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



def _digitalocean_regions() -> list[str]:
    """DigitalOcean's regions in the region map."""
    regions = (r.clouds.get("digitalocean") for r in load_region_map().regions.values())
    return sorted({c.region for c in regions if c is not None})


def main(argv: list[str] | None = None) -> None:
    """`python -m provisioner.sandbox.supervisor DIRECTORY [--region R] [--api-delay-ms N]
    [--boot-delay-s S] [--pool CIDR]`: run until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--region", default="us-east")
    parser.add_argument("--api-delay-ms", type=float, default=0.0)
    parser.add_argument("--boot-delay-s", type=float, default=0.0)
    parser.add_argument("--pool", default=DEFAULT_BLOCK)
    parser.add_argument("--pools", default="", help="cloud=CIDR,...: each cloud's /24 (default: the block's first 4)")
    parser.add_argument("--pacing", default="flat", help="flat (the delays above), cloud or cloud:F (sandbox.pacing)")
    parser.add_argument("--hosts", choices=("namespace", "vm"), default="namespace")
    args = parser.parse_args(argv)
    if args.api_delay_ms < 0 or args.boot_delay_s < 0:
        parser.error("delays cannot be negative")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    stop = threading.Event()
    pacing = parse_pacing(args.pacing, args.api_delay_ms / 1000, args.boot_delay_s)
    sandbox = Sandbox(args.directory, args.region, api_delay_s=args.api_delay_ms / 1000,
                      boot_delay_s=args.boot_delay_s, pool=args.pool, pacing=pacing, host_kind=args.hosts,
                      pools=dict(item.split("=", 1) for item in args.pools.split(",") if item))

    def finish(*_: object) -> None:
        stop.set()
        sandbox.wake()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    state = args.directory / STATE_FILE
    try:
        env = sandbox.start()
        # pid, start time and uid: what `cast sandbox` checks the supervisor by (control.is_supervisor)
        write_private_file(state, json.dumps({
            "pid": os.getpid(), "proc_start": process_start(os.getpid()), "uid": os.geteuid(),
            "region": args.region, "started_at": time.time(), "api_delay_ms": args.api_delay_ms,
            "boot_delay_s": args.boot_delay_s, "pacing": args.pacing, "pool": args.pool, "pools": sandbox.pools,
            "dns": sandbox.dns, "env": env, "hosts": args.hosts, "accel": sandbox.accel}).encode())
        LOG.info("sandbox ready")
        sandbox.serve(stop)
    finally:
        state.unlink(missing_ok=True)
        sandbox.stop()
        LOG.info("sandbox stopped")


if __name__ == "__main__":
    main()
