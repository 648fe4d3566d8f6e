"""VM hosts: the sandbox's VMs as real virtual machines (QEMU guests of the image in
vm_image.py) instead of namespace hosts, booted by their own kernel and their own cloud-init.

A guest gets, like a cloud VM:
  * its user-data exactly as the cloud API received it, with a meta-data (a fresh
    instance-id: a first boot) and a network-config (its public IP, static, on the NIC with
    its MAC) on a NoCloud seed (an ISO labelled `cidata`, the second disk);
  * a copy-on-write overlay of the image as its first disk, and a small swap disk (a cloud
    image's swap, which cast's cloud-init must turn off);
  * its NIC on a tap device, a port of its cloud's bridge in the sandbox's internet namespace
    (hosts.py): the same addresses, routes and delay lines as namespace hosts. The bridge also
    answers on the pool's first address, the guests' gateway (no cloud hands that one out).

The accelerator is KVM when a tiny guest really runs under it (the image's kernel, up to its
first userspace process), else QEMU's software emulation (TCG): a /dev/kvm that cannot run a
guest (a nested or software hypervisor) is not trusted. Everything a guest has lives in its
folder under the hosts' run directory, and qemu runs in the internet namespace: LocalHosts'
close() and cleanup_leftovers() end and remove it all, as they do for namespace hosts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .hosts import HostError, LocalHosts, _end_recorded, _ip, _record
from .vm_image import SWAP_LABEL, GuestImage, overlay

QEMU = "qemu-system-x86_64"
KERNEL_ARGS = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet loglevel=3 mitigations=off"
PROBE_TIMEOUT_S = 20.0  # a working KVM reaches the first userspace process in a second or two
MEMORY_MB = 768


@dataclass(frozen=True)
class Accel:
    """How guests run: `name` is "kvm" or "tcg"; `why` says how that was decided."""

    name: str
    why: str

    def qemu_args(self) -> list[str]:
        if self.name == "kvm":
            return ["-accel", "kvm", "-cpu", "host"]
        return ["-accel", "tcg,thread=multi", "-cpu", "max"]


def missing_tools() -> list[str]:
    """The programs VM hosts need that this machine lacks."""
    return [t for t in (QEMU, "qemu-img", "genisoimage", "mkswap") if shutil.which(t) is None]


def probe_accel(image: GuestImage, work: Path) -> Accel:
    """KVM if the image's kernel, run under KVM, gets as far as starting its first userspace
    process (then powers off) within PROBE_TIMEOUT_S; TCG otherwise, saying why."""
    if not Path("/dev/kvm").exists():
        return Accel("tcg", "no /dev/kvm")
    work.mkdir(parents=True, exist_ok=True)
    serial = work / "kvm-probe.log"
    args = [QEMU, "-accel", "kvm", "-cpu", "host", "-M", "pc", "-m", "256", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-serial", f"file:{serial}", "-kernel", str(image.kernel),
            "-initrd", str(image.initrd), "-append", "console=ttyS0 panic=-1 rdinit=/bin/poweroff"]
    started = time.monotonic()
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Accel("tcg", f"a KVM guest did not reach userspace within {PROBE_TIMEOUT_S:g}s")
    text = serial.read_text(errors="replace") if serial.exists() else ""
    if "as init process" in text:
        return Accel("kvm", f"a KVM guest reached userspace in {time.monotonic() - started:.1f}s")
    # qemu's first complaint names the cause (e.g. "error: failed to set MSR 0x10a to 0x69")
    err = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0].removeprefix(f"{QEMU}: ")
    return Accel("tcg", f"a KVM guest failed: {err[:160]}")


@dataclass
class Guest:
    """One running VM."""

    name: str
    group: str
    public_ip: str
    mac: str
    tap: str
    directory: Path
    started_at: float  # wall clock, when qemu started
    process: subprocess.Popen[bytes] | None = None

    @property
    def serial_log(self) -> Path:
        return self.directory / "serial.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def mac_of(name: str) -> str:
    """A stable locally administered MAC for a guest (QEMU's 52:54:00 prefix)."""
    digest = hashlib.sha256(name.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def gateway_of(network: ipaddress.IPv4Network) -> str:
    """The guests' gateway in a pool: its first address (the pools hand out from the second on)."""
    return str(network.network_address + 1)


def network_config(mac: str, public_ip: str, network: ipaddress.IPv4Network) -> str:
    """NoCloud network-config (v2): the public IP, static, on the NIC with `mac`, named eth0."""
    config = {"version": 2, "ethernets": {"eth0": {
        "match": {"macaddress": mac}, "set-name": "eth0",
        "addresses": [f"{public_ip}/{network.prefixlen}"], "gateway4": gateway_of(network)}}}
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class VmHosts:
    """The sandbox's VM hosts, on the network of `hosts` (whose groups must exist first)."""

    hosts: LocalHosts
    image: GuestImage
    accel: Accel
    smp: int = 1
    memory_mb: int = MEMORY_MB
    guests: dict[str, Guest] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = 0
        self.directory = self.hosts.directory / "vms"
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def start(self, name: str, group: str, public_ip: str, user_data: str, instance_id: str | None = None) -> Guest:
        """Boot VM `name` in `group` with `public_ip` and `user_data` (as its cloud received it);
        return at once, qemu started (SSH answers once the guest's cloud-init has run its
        ssh module: a minute or two under TCG). Raises HostError."""
        with self._lock:
            if name in self.guests:
                raise HostError(f"VM {name} exists already")
            group_net = self.hosts.groups[group].network
            self._counter += 1
            guest = Guest(name, group, public_ip, mac_of(name), f"t{self._counter}", self.directory / name,
                          time.time())
            self.guests[name] = guest
        try:
            self._prepare(guest, group_net, user_data, instance_id or name)
            self._launch(guest)
        except BaseException:
            self.stop(name)
            raise
        return guest

    def _prepare(self, guest: Guest, net: ipaddress.IPv4Network, user_data: str, instance_id: str) -> None:
        d = guest.directory
        d.mkdir(mode=0o700)
        seed = d / "seed"
        seed.mkdir(mode=0o700)
        (seed / "user-data").write_text(user_data)
        (seed / "meta-data").write_text(yaml.safe_dump({"instance-id": instance_id, "local-hostname": guest.name}))
        (seed / "network-config").write_text(network_config(guest.mac, guest.public_ip, net))
        _check("seed", ["genisoimage", "-quiet", "-output", str(d / "seed.iso"), "-volid", "cidata", "-joliet",
                        "-rock", str(seed / "user-data"), str(seed / "meta-data"), str(seed / "network-config")])
        shutil.rmtree(seed)  # the user-data holds the host key: only the seed keeps it
        overlay(self.image, d / "disk.qcow2")
        _check("swap disk", ["qemu-img", "create", "-q", "-f", "raw", str(d / "swap.raw"), "64M"])
        _check("swap disk", ["mkswap", "-L", SWAP_LABEL, str(d / "swap.raw")])
        inet, bridge = self.hosts.inet, self.hosts.groups[guest.group].bridge
        # the guests' gateway; already there once a guest of this group ran (replace: idempotent)
        _ip(inet, "addr", "replace", f"{gateway_of(net)}/32", "dev", bridge)
        # a cloud reuses a deleted VM's address: forget the old MAC for it
        _ip(inet, "neigh", "flush", "to", guest.public_ip, check=False)
        _ip(inet, "tuntap", "add", "dev", guest.tap, "mode", "tap")
        _ip(inet, "link", "set", guest.tap, "master", bridge, "up")

    def _launch(self, guest: Guest) -> None:
        d = guest.directory
        args = ["ip", "netns", "exec", self.hosts.inet, QEMU, "-name", guest.name, *self.accel.qemu_args(),
                "-M", "pc", "-m", str(self.memory_mb), "-smp", str(self.smp), "-nodefaults", "-no-user-config",
                "-display", "none", "-serial", f"file:{d / 'serial.log'}",
                "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd), "-append", KERNEL_ARGS,
                "-drive", f"file={d / 'disk.qcow2'},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
                "-drive", f"file={d / 'seed.iso'},if=virtio,format=raw,readonly=on",
                "-drive", f"file={d / 'swap.raw'},if=virtio,format=raw,cache=unsafe",
                "-netdev", f"tap,id=n0,ifname={guest.tap},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=n0,mac={guest.mac}",
                "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0"]
        with open(d / "qemu.log", "wb") as log:
            guest.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True)
        guest.started_at = time.time()
        # ip netns exec execs qemu in place: the pid is qemu's (its /proc entry is there from the fork)
        _record(d / "qemu.pid", guest.process.pid)
        try:  # a qemu that refuses its arguments exits at once: say so here, not at the SSH deadline
            guest.process.wait(timeout=0.3)
        except subprocess.TimeoutExpired:
            return
        raise HostError(f"VM {guest.name}: qemu exited: {(d / 'qemu.log').read_text(errors='replace')[-500:]}")

    def stop(self, name: str) -> None:
        """Stop VM `name` (its qemu: the guest is gone at once, like a terminated instance) and
        remove its tap and files. Stopping an unknown VM does nothing."""
        with self._lock:
            guest = self.guests.pop(name, None)
        if guest is None:
            return
        _end_recorded(guest.directory / "qemu.pid")
        if guest.process is not None:
            try:
                guest.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                guest.process.kill()
                guest.process.wait()
        _ip(self.hosts.inet, "link", "del", guest.tap, check=False)
        shutil.rmtree(guest.directory, ignore_errors=True)

    def close(self) -> None:
        """Stop every VM."""
        for name in list(self.guests):
            self.stop(name)


def _check(step: str, args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise HostError(f"{step}: `{' '.join(args[:2])}` failed: {done.stderr.strip()[-300:]}")
