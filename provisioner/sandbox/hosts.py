"""Local hosts: the substrate the sandbox boots emulated VMs on (Linux, root).

A host is a network namespace whose sshd runs with a root filesystem, processes, hostname
and capabilities of its own (hostroot.py: a session on it sees nothing of this machine but a
read-only /usr), with a host key and an authorized key given by the caller (root, key only).
Like a cloud VM whose cloud-init has finished, a booted host has a boot marker,
/var/lib/cast/boot-done, saying that Kubernetes cannot run on it (`kubernetes=unsupported`)
and why.

A host can be booted in two steps, like a VM whose kernel is up before its sshd: `add_host`
with serve=False makes all of it (its network, its root) but holds its sshd at a gate (its
address answers, port 22 refuses), and `serve_ssh` opens the gate: sshd starts and listens
within a few milliseconds, so that a host can answer SSH at the moment it is due however many
are being made at once.

    root namespace (cast) --veth <prefix>-up--> internet namespace <prefix>-inet
        one bridge per group ("cloud"), a public range per group, forwarding between groups;
        no default route: nothing outside the public ranges is reachable
    host namespace <prefix>-h-<name>: eth0 on its group's bridge, one public /32 address,
        routes, all through the gateway (its only neighbour), to the public ranges in use and to
        cast's link address only

A delay line between two groups sends their traffic through a TUN device in the internet
namespace, read by a forwarder process (delayline.py) that holds each packet.

Everything is named with a per-run prefix and removed by `close()`; `cleanup_leftovers(prefix)`
removes what a crashed run left. Processes are ended by pid, and only ours: each pid is
recorded with its start time in the run directory (for a host: the first process of its PID
namespace, whose end ends every process of the host), and the only other processes ended
are those inside network namespaces carrying our prefix.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..cloudinit import BOOT_MARKER as BOOT_MARKER_PATH
from ..errors import CastError
from ..nodes.boot import UNSUPPORTED
from ..retry import wait_until
from . import hostroot

RUN_ROOT = Path("/run/cast-hosts")
OWNER_FILE = "owner"  # in a run's directory: the pid and start time of the process that made the run
GATEWAY = "169.254.0.1"  # the internet namespace's address on every group bridge
LINK_BLOCK = ipaddress.IPv4Network("169.254.128.0/17")  # root <-> internet link, a /30 per run
PROCESS_EXIT_S = 5.0
READY_S = 10.0
BOOT_MARKER = (  # what a host says of itself where a node's cloud-init leaves its marker
    f"kubernetes={UNSUPPORTED}\n"
    "reason=sandbox host: a network-namespace host cannot run a kubelet "
    "(no systemd, no cgroup or kernel of its own)\n"
)


class HostError(CastError):
    """Setting up or tearing down a local host failed; the message names the host or group."""


TOOLS = ("ip", "unshare", "pivot_root", "setpriv", "/usr/sbin/sshd", "wireguard-go", "wg",
         "wg-quick", "ping")


@dataclass(frozen=True)
class SupportCheck:
    """One thing local hosts need: whether this machine has it, and where or why not."""

    name: str
    ok: bool
    detail: str


def support_checks() -> list[SupportCheck]:
    """Everything local hosts need, checked without changing anything: root, each tool,
    the kernel's TUN device and its network, mount and PID namespaces."""
    root = os.geteuid() == 0
    checks = [SupportCheck("root", root, "running as root" if root
                           else "local hosts need root (network and mount namespaces)")]
    for tool in TOOLS:
        found = shutil.which(tool)
        why = f"local hosts need {tool}, which is not installed"
        checks.append(SupportCheck(tool, found is not None, found or why))
    for name, path, what in (("tun", "/dev/net/tun", "the kernel's TUN device"),
                             ("netns", "/proc/self/ns/net", "network namespaces in the kernel"),
                             ("mntns", "/proc/self/ns/mnt", "mount namespaces in the kernel"),
                             ("pidns", "/proc/self/ns/pid", "PID namespaces in the kernel")):
        present = Path(path).exists()
        checks.append(SupportCheck(name, present, path if present else f"local hosts need {what} ({path})"))
    return checks


def require_support() -> str | None:
    """Why local hosts cannot run here, or None when they can (see support_checks)."""
    return next((c.detail for c in support_checks() if not c.ok), None)


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise HostError(f"`{' '.join(args)}` failed: {done.stderr.strip()}")
    return done


def _ip(ns: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("ip", *(("-n", ns) if ns else ()), *args, check=check)


def _batch(ns: str, commands: list[str]) -> None:
    """Run `ip` commands (each a line of `ip` arguments) in namespace `ns`, in one process;
    the first that fails stops the rest (HostError)."""
    done = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="".join(f"{c}\n" for c in commands),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise HostError(f"`ip -n {ns} -batch` failed: {done.stderr.strip()}")


def _sysctl(ns: str, key: str, value: str) -> None:
    _run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}")


# --- processes: recorded by pid and start time, ended only if still the same process ------


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def _record(pidfile: Path, pid: int) -> None:
    pidfile.write_text(f"{pid} {_start_time(pid)}\n")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _end(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL whatever has not exited within PROCESS_EXIT_S."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not any(_alive(p) for p in pids), what="processes to exit",
                   timeout_s=PROCESS_EXIT_S, initial=0.01, maximum=0.2)
    except CastError:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def recorded_pid(pidfile: Path) -> int | None:
    """The pid recorded in `pidfile` (`pid start-time`, see _record) while it is still that
    process and has not exited; None otherwise."""
    try:
        pid_text, started = pidfile.read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    return pid if _start_time(pid) == started and _alive(pid) else None


def _end_recorded(pidfile: Path) -> None:
    """End the process recorded in `pidfile` if it is still the one we started."""
    pid = recorded_pid(pidfile)
    if pid is not None:
        _end([pid])
    pidfile.unlink(missing_ok=True)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue
            if int(ppid) == pid:
                children.append(int(entry.name))
    return children


def namespaces() -> list[str]:
    """The names of this machine's network namespaces."""
    return [line.split()[0] for line in _run("ip", "netns", "list", check=False).stdout.splitlines() if line.split()]


def namespace_pids(ns: str) -> list[int]:
    """The processes running in network namespace `ns`."""
    done = _ip(None, "netns", "pids", ns, check=False)
    return [int(p) for p in done.stdout.split()]


def _reap(popen: subprocess.Popen[bytes] | None) -> None:
    if popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=PROCESS_EXIT_S)


# --- the network ----------------------------------------------------------------------


@dataclass
class Group:
    name: str
    network: ipaddress.IPv4Network
    bridge: str


@dataclass
class Host:
    name: str
    group: str
    public_ip: str
    ssh_port: int
    netns: str
    link: str  # its veth's name in the internet namespace
    directory: Path
    sshd: subprocess.Popen[bytes] | None = None
    private: tuple[str, ...] = ()  # more paths of this machine the host gets its own copy of
    gate: int | None = None  # the write end of the pipe its boot waits on before it execs sshd


@dataclass
class DelayLine:
    groups: tuple[str, str]
    rtt_ms: float
    device: str
    table: int
    pidfile: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass
class LocalHosts:
    """A private internet of namespace hosts, named by `prefix` (1 to 12 characters of
    [a-z0-9]; one prefix per run). Use as a context manager, or call close().

    Groups first (`add_group`), then hosts (`add_host`). add_host and remove_host are
    thread-safe: many hosts can be added or removed at once from a thread pool."""

    prefix: str
    run_root: Path = RUN_ROOT
    groups: dict[str, Group] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)
    delays: dict[frozenset[str], DelayLine] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9]{1,12}", self.prefix):
            # No dash: cleanup_leftovers matches "<prefix>-", which must not match another run.
            raise ValueError("prefix: 1 to 12 lower-case letters or digits")
        reason = require_support()
        if reason:
            raise HostError(reason)
        self._lock = threading.Lock()
        self._template_lock = threading.Lock()
        self._counter = 0
        self.directory = self.run_root / self.prefix
        self.inet = f"{self.prefix}-inet"
        self.uplink = f"{self.prefix}-up"
        cleanup_leftovers(self.prefix, self.run_root)
        self.directory.mkdir(parents=True, mode=0o700)
        # who made this run (not a .pid file: cleanup ends those): while it lives, the run is alive
        _record(self.directory / OWNER_FILE, os.getpid())
        try:
            self._make_internet()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> LocalHosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _make_internet(self) -> None:
        self.link_root, self.link_inet = _free_link(self.prefix)
        _ip(None, "netns", "add", self.inet)
        _ip(self.inet, "link", "set", "lo", "up")
        # No redirects (all and every bridge made from default): the router forwards traffic
        # between hosts of one group back onto their bridge, and a redirect would make the
        # host learn its peer as a neighbour again (see _wire).
        for key in ("net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter",
                    "net.ipv4.conf.default.rp_filter", "net.ipv4.conf.all.send_redirects",
                    "net.ipv4.conf.default.send_redirects"):
            _sysctl(self.inet, key, "1" if key.endswith("ip_forward") else "0")
        _ip(None, "link", "add", self.uplink, "type", "veth", "peer", "name", "up0",
            "netns", self.inet)
        _ip(None, "addr", "add", f"{self.link_root}/30", "dev", self.uplink)
        _ip(None, "link", "set", self.uplink, "up")
        _ip(self.inet, "addr", "add", f"{self.link_inet}/30", "dev", "up0")
        _ip(self.inet, "link", "set", "up0", "up")

    # --- groups ---------------------------------------------------------------------------

    def add_group(self, name: str, network: str) -> None:
        """Add a group ("cloud") whose hosts take public addresses from `network`. The root
        namespace gets a route for exactly that range; no two groups may overlap."""
        net = ipaddress.IPv4Network(network)
        with self._lock:
            if name in self.groups:
                raise HostError(f"group {name} exists already")
            for other in self.groups.values():
                if other.network.overlaps(net):
                    raise HostError(f"group {name}: {net} overlaps group {other.name}")
            group = Group(name, net, f"b{len(self.groups) + 1}")
            self.groups[name] = group
            hosts = list(self.hosts.values())
        _ip(self.inet, "link", "add", group.bridge, "type", "bridge")
        _ip(self.inet, "addr", "add", f"{GATEWAY}/32", "dev", group.bridge)
        _ip(self.inet, "link", "set", group.bridge, "up")
        _ip(self.inet, "route", "add", str(net), "dev", group.bridge)
        _ip(None, "route", "add", str(net), "via", self.link_inet, "dev", self.uplink)
        for host in hosts:
            _ip(host.netns, "route", "add", str(net), "via", GATEWAY)

    # --- hosts ----------------------------------------------------------------------------

    def add_host(self, name: str, group: str, public_ip: str, host_key: str,
                 authorized_key: str, ssh_port: int = 22, *, serve: bool = True,
                 private: tuple[str, ...] = ()) -> Host:
        """Boot host `name` in `group` with `public_ip` (inside the group's range): a network
        namespace with sshd on public_ip:ssh_port in a root of its own, using the OpenSSH private
        `host_key` and accepting root with `authorized_key` (one or more public key lines,
        newline-separated) only, and the boot marker written. Blocks until sshd accepts
        connections from the root namespace. With serve=False the host is made, its root
        too, but its sshd waits (the address answers, port 22 refuses) until `serve_ssh`
        lets it start. Each existing
        directory or file of this machine named in `private` is the host's own: an empty
        tmpfs for a directory, a copy for a file (what the host writes there stays its own;
        needed under /usr only, which the host sees read-only: the rest of its root is its
        own already). Raises HostError."""
        address = ipaddress.IPv4Address(public_ip)
        with self._lock:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", name):
                raise HostError(f"host {name!r}: use lower-case letters, digits and dashes")
            if name in self.hosts:
                raise HostError(f"host {name} exists already")
            if group not in self.groups:
                raise HostError(f"host {name}: no group {group}")
            if address not in self.groups[group].network:
                raise HostError(f"host {name}: {public_ip} is outside group {group}'s range")
            if any(h.public_ip == public_ip for h in self.hosts.values()):
                raise HostError(f"host {name}: {public_ip} is taken")
            self._counter += 1
            host = Host(name, group, public_ip, ssh_port, f"{self.prefix}-h-{name}",
                        f"h{self._counter}", self.directory / "hosts" / name, private=private)
            self.hosts[name] = host
            others = [g for g in self.groups.values() if g.name != group]
        try:
            self._wire(host, self.groups[group], others)
            self._write_sshd_files(host, host_key, authorized_key)
            self._boot(host)
            if serve:
                self._open(host)
        except BaseException:
            self.remove_host(name)
            raise
        return host

    def add_endpoint(self, name: str, group: str, public_ip: str) -> Host:
        """Wire host `name` in `group` with `public_ip` and nothing else: no sshd, no root of its
        own; for the sandbox's own services (a load balancer, the DNS server), started in it by
        `run_in`. Removed like any host (remove_host, close). Raises HostError."""
        address = ipaddress.IPv4Address(public_ip)
        with self._lock:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", name) or name in self.hosts:
                raise HostError(f"endpoint {name!r}: a new name of lower-case letters, digits and dashes")
            if group not in self.groups or address not in self.groups[group].network:
                raise HostError(f"endpoint {name}: {public_ip} is outside group {group}'s range")
            if any(h.public_ip == public_ip for h in self.hosts.values()):
                raise HostError(f"endpoint {name}: {public_ip} is taken")
            self._counter += 1
            host = Host(name, group, public_ip, 0, f"{self.prefix}-h-{name}", f"h{self._counter}",
                        self.directory / "hosts" / name)
            self.hosts[name] = host
            others = [g for g in self.groups.values() if g.name != group]
        try:
            self._wire(host, self.groups[group], others)
            host.directory.mkdir(parents=True, mode=0o700)
        except BaseException:
            self.remove_host(name)
            raise
        return host

    def run_in(self, name: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start `argv` in host `name`'s network namespace (this machine's files, PYTHONPATH
        set to cast's), output to `log`; its pid is recorded, so remove_host, close and
        cleanup_leftovers end it."""
        with self._lock:
            host = self.hosts[name]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        with open(log, "ab") as out:
            process = subprocess.Popen(["ip", "netns", "exec", host.netns, *argv], stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=out, env=env, start_new_session=True)
        _record(host.directory / f"run-{process.pid}.pid", process.pid)
        return process

    def serve_ssh(self, name: str) -> None:
        """Finish booting host `name` (added with serve=False): open its gate, so that its
        sshd starts; block until sshd accepts connections. Raises HostError (the host is
        then removed)."""
        with self._lock:
            host = self.hosts.get(name)
        if host is None:
            raise HostError(f"host {name} does not exist")
        try:
            self._open(host)
        except BaseException:
            self.remove_host(name)
            raise

    def _wire(self, host: Host, group: Group, others: list[Group]) -> None:
        _ip(None, "netns", "add", host.netns)
        # One `ip -batch` per namespace, not a process per command: 24 hosts made at once
        # share this machine's CPUs with cast and the emulators.
        _batch(self.inet, [
            # A cloud reuses the public address of a deleted VM: the router must forget the old
            # host's MAC for it, or it keeps sending there (or holds a FAILED entry) for minutes.
            f"neigh flush to {host.public_ip}",
            f"link add {host.link} type veth peer name eth0 netns {host.netns}",
            f"link set {host.link} master {group.bridge} up",
        ])
        # Like a cloud VM, a host reaches every public address, its own group's too, through
        # the gateway, never on-link: its only neighbour is the gateway. On-link peers made a
        # neighbour entry per pair in a group, and the kernel's neighbour table is one for all
        # namespaces (gc_thresh3, 1024 by default): at 100 hosts it overflowed, and packets
        # to peers without an entry were dropped (no WireGuard session formed).
        routes = [group.network, *(g.network for g in others), f"{self.link_root}/32"]
        _batch(host.netns, [
            "link set lo up",
            f"addr add {host.public_ip}/32 dev eth0",
            "link set eth0 up",
            f"route add {GATEWAY} dev eth0",
            *(f"route add {net} via {GATEWAY}" for net in routes),
        ])

    def _template(self) -> Path:
        """The part of a root every host has alike (hostroot.write_common) with the boot
        marker, written on first use."""
        template = self.directory / "template"
        with self._template_lock:
            if not template.is_dir():  # made whole under another name, then renamed: never half
                partial = self.directory / "template.new"
                shutil.rmtree(partial, ignore_errors=True)
                try:
                    hostroot.write_common(partial)
                    hostroot.write_file(partial, BOOT_MARKER_PATH, BOOT_MARKER)
                except BaseException:
                    shutil.rmtree(partial, ignore_errors=True)
                    raise
                os.rename(partial, template)
        return template

    def _write_sshd_files(self, host: Host, host_key: str, authorized_key: str) -> None:
        host.directory.mkdir(parents=True, mode=0o700)
        (host.directory / "root").mkdir(mode=0o700)
        hostroot.write_skeleton(host.directory / "skeleton", name=host.name, host_key=host_key,
                                authorized_key=authorized_key, listen=host.public_ip, port=host.ssh_port)

    def _boot(self, host: Host) -> None:
        """Start the host's first process: it builds the host's root, then waits at the gate
        (its standard input, a pipe whose write end only this process holds) before it
        execs sshd."""
        d = host.directory
        # sshd, and every session it starts, lives in the host's own PID, mount, UTS and IPC
        # namespaces, under a root of its own (hostroot.py) holding the boot marker.
        template = self._template()
        read_end, host.gate = os.pipe()
        try:
            script = hostroot.boot_script(d, host.name, host.private, gated=True, template=template)
            with open(d / "sshd.log", "wb") as log:
                # A cloud VM has CPUs of its own; here every host shares this machine's. Ahead of
                # cast and the emulators, the host's processes (sshd and what its sessions start,
                # wireguard-go among them) behave more like a VM's.
                host.sshd = subprocess.Popen(
                    ["nice", "-n", "-10", "ip", "netns", "exec", host.netns, "unshare", "--mount",
                     "--pid", "--uts", "--ipc", "--fork", "--kill-child", "--propagation", "private",
                     "sh", "-c", script],
                    stdin=read_end, stdout=log, stderr=log, start_new_session=True)
        except ValueError as exc:
            raise HostError(f"host {host.name}: {exc}") from None
        finally:
            os.close(read_end)  # the host holds it now; were it to die, the gate closes with it
        # unshare waits for the host's first process, ignoring SIGTERM: that process (sshd,
        # once the root is built) is the one recorded, and its end ends the whole host.
        _record(d / "sshd.pid", self._first_process(host))

    def _open(self, host: Host) -> None:
        """Open the host's gate and block until its sshd accepts connections."""
        d = host.directory
        with self._lock:
            gate, host.gate = host.gate, None
        if gate is not None:
            try:
                os.write(gate, b"open\n")
            except BrokenPipeError:
                pass  # the boot ended before the gate: the wait below says why
            finally:
                os.close(gate)

        def listening() -> bool:
            if host.sshd is not None and host.sshd.poll() is not None:
                raise HostError(f"host {host.name}: sshd exited: {(d / 'sshd.log').read_text()}")
            try:
                socket.create_connection((host.public_ip, host.ssh_port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_until(listening, what=f"sshd on host {host.name}", timeout_s=READY_S,
                   initial=0.005, maximum=0.1)

    @staticmethod
    def _first_process(host: Host) -> int:
        """The pid (here) of the first process of the host's PID namespace: unshare's child."""
        assert host.sshd is not None
        parent = host.sshd.pid
        found: list[int] = []

        def forked() -> bool:
            if host.sshd is not None and host.sshd.poll() is not None:
                raise HostError(f"host {host.name}: sshd exited: {(host.directory / 'sshd.log').read_text()}")
            found[:] = _children(parent)
            return bool(found)

        wait_until(forked, what=f"the first process of host {host.name}", timeout_s=READY_S,
                   initial=0.005, maximum=0.1)
        return found[0]

    def remove_host(self, name: str) -> None:
        """Stop every process of host `name` (sshd, wireguard-go) and remove its namespaces
        and files. Removing an unknown host does nothing."""
        with self._lock:
            host = self.hosts.pop(name, None)
            gate = host.gate if host is not None else None
            if host is not None:
                host.gate = None
        if host is None:
            return
        if gate is not None:
            os.close(gate)  # a host removed before it served: its boot ends at the gate
        _end_recorded(host.directory / "sshd.pid")
        _reap(host.sshd)
        _end(namespace_pids(host.netns))
        _ip(None, "netns", "del", host.netns, check=False)
        _ip(self.inet, "link", "del", host.link, check=False)
        shutil.rmtree(host.directory, ignore_errors=True)

    def netns_of(self, name: str) -> str:
        """The network namespace of host `name` (for tests: `ip netns exec`)."""
        return self.hosts[name].netns

    # --- delay lines ----------------------------------------------------------------------

    def set_delay(self, group_a: str, group_b: str, rtt_ms: float) -> None:
        """Add `rtt_ms` of round-trip delay to all traffic between two groups (both ways),
        or change the delay of an existing line. Traffic with cast is never delayed."""
        if group_a == group_b or group_a not in self.groups or group_b not in self.groups:
            raise HostError(f"delay line: {group_a} and {group_b} must be two known groups")
        if rtt_ms <= 0:
            self.remove_delay(group_a, group_b)
            return
        key = frozenset((group_a, group_b))
        line = self.delays.get(key)
        if line is None:
            n = self._next()
            line = DelayLine((group_a, group_b), rtt_ms, f"d{n}", 100 + n,
                             self.directory / f"delay-{n}.pid")
            self.delays[key] = line
            self._route_through(line)
        else:
            _end_recorded(line.pidfile)
            _reap(line.process)
            line.rtt_ms = rtt_ms
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        line.process = subprocess.Popen(
            ["ip", "netns", "exec", self.inet, sys.executable, "-m",
             "provisioner.sandbox.delayline", "--dev", line.device, "--hold-ms", str(rtt_ms / 2)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True)
        _record(line.pidfile, line.process.pid)

        def attached() -> bool:  # a TUN device has carrier once the forwarder holds it
            if line.process is not None and line.process.poll() is not None:
                raise HostError(f"delay line {line.device}: the forwarder exited")
            return "LOWER_UP" in _ip(self.inet, "link", "show", line.device).stdout

        wait_until(attached, what=f"delay line {line.device}", timeout_s=READY_S,
                   initial=0.01, maximum=0.2)

    def _route_through(self, line: DelayLine) -> None:
        a, b = (self.groups[g] for g in line.groups)
        _ip(self.inet, "tuntap", "add", "dev", line.device, "mode", "tun")
        _sysctl(self.inet, f"net.ipv4.conf.{line.device}.rp_filter", "0")
        _sysctl(self.inet, f"net.ipv4.conf.{line.device}.accept_local", "1")
        _ip(self.inet, "link", "set", line.device, "up")
        _ip(self.inet, "route", "add", "default", "dev", line.device, "table", str(line.table))
        # Packets the forwarder writes back arrive with iif <tun>: no rule matches them, so
        # they follow the main table to the other group's bridge.
        for src, dst in ((a, b), (b, a)):
            _ip(self.inet, "rule", "add", "iif", src.bridge, "to", str(dst.network),
                "lookup", str(line.table), "pref", str(line.table))

    def remove_delay(self, group_a: str, group_b: str) -> None:
        """Remove the delay line between two groups (nothing if there is none)."""
        line = self.delays.pop(frozenset((group_a, group_b)), None)
        if line is None:
            return
        _end_recorded(line.pidfile)
        _reap(line.process)
        while _ip(self.inet, "rule", "del", "pref", str(line.table), check=False).returncode == 0:
            pass
        _ip(self.inet, "link", "del", line.device, check=False)

    # --- teardown -------------------------------------------------------------------------

    def close(self) -> None:
        """Remove every host, delay line and namespace of this run, and its run directory."""
        for key in list(self.delays):
            self.remove_delay(*sorted(key))
        for name in list(self.hosts):
            self.remove_host(name)
        cleanup_leftovers(self.prefix, self.run_root)


def _free_link(prefix: str) -> tuple[str, str]:
    """A /30 from LINK_BLOCK, picked by the prefix's hash, that no root-namespace address
    uses yet: (root side, internet side)."""
    used = _run("ip", "-4", "-o", "addr", "show").stdout
    slots = LINK_BLOCK.num_addresses // 4
    start = int(hashlib.sha256(prefix.encode()).hexdigest(), 16) % slots
    for i in range(slots):
        base = LINK_BLOCK.network_address + 4 * ((start + i) % slots)
        root, inet = str(base + 1), str(base + 2)
        if f" {root}/" not in used and f" {inet}/" not in used:
            return root, inet
    raise HostError(f"no free link network in {LINK_BLOCK}")


def cleanup_leftovers(prefix: str, run_root: Path = RUN_ROOT) -> None:
    """Remove what a run with `prefix` left behind: the processes it recorded (if still the
    same processes), every process inside a namespace named `<prefix>-…`, those namespaces,
    the root namespace's uplink, and the run directory. Safe to call when nothing is left."""
    directory = run_root / prefix
    if directory.is_dir():
        for pidfile in directory.rglob("*.pid"):
            _end_recorded(pidfile)
    ours = [ns for ns in namespaces() if ns.startswith(f"{prefix}-")]
    for ns in ours:
        _end(namespace_pids(ns))
    for ns in ours:
        _ip(None, "netns", "del", ns, check=False)
    _ip(None, "link", "del", f"{prefix}-up", check=False)
    shutil.rmtree(directory, ignore_errors=True)
    _remove_run_root(run_root)


def _remove_run_root(run_root: Path) -> None:
    """Remove `run_root` once no run is left under it."""
    with contextlib.suppress(OSError):
        run_root.rmdir()
