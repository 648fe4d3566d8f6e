"""The sandbox's public address pools: one /24 per emulated cloud, all carved from one block the
user can choose (`cast sandbox up --pool CIDR`), and the check that the block holds no address
this machine uses.

The sandbox routes its pools into its own namespace, so while it runs every process on the
machine reaches those addresses in the sandbox instead. A /24 that holds the machine's own
address, a neighbour, a route (another sandbox's pools among them), or an address the machine
resolves for a host it depends on (its proxies, its package indexes, /etc/hosts) would cut the
machine off from it: such a /24 is never a pool, and a block without four others is refused
before anything starts, naming the addresses and where they were found.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
import socket
import subprocess
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import InputError

# RFC 2544's benchmarking range: reserved for tests, never routed on the internet.
DEFAULT_BLOCK = "198.18.0.0/15"
CLOUD_ORDER = ("aws", "gcp", "azure", "digitalocean")  # which /24 of the block each cloud takes
RESOLVE_TIMEOUT_S = 2.0  # a host that does not resolve this fast is left out, not waited for

PIP_DEFAULT_INDEX = ("https://pypi.org/simple", "https://files.pythonhosted.org")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                   "FTP_PROXY", "ALL_PROXY", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_PROXY")


def pools_of(block: str) -> dict[str, str]:
    """The /24 pool of each cloud inside `block` (the first /24 for the first cloud, and so
    on). InputError (--pool) when `block` is not an IPv4 network of at least four /24s."""
    try:
        network = ipaddress.IPv4Network(block, strict=False)
    except ValueError:
        raise InputError("--pool", f"{block!r} is not an IPv4 network",
                         f"a /22 or larger, e.g. {DEFAULT_BLOCK}") from None
    if network.prefixlen > 22:
        raise InputError("--pool", f"{block} is too small: the sandbox needs a /24 for each of 4 clouds",
                         f"a /22 or larger, e.g. {DEFAULT_BLOCK}")
    subnets = network.subnets(new_prefix=24)
    return {cloud: str(next(subnets)) for cloud in CLOUD_ORDER}


DEFAULT_POOLS = pools_of(DEFAULT_BLOCK)


def dns_address(pools: Mapping[str, str]) -> str:
    """The sandbox DNS server's address: the last host of the first cloud's pool, which that
    cloud's emulator never hands out (see aws_moto.PublicAddressPool)."""
    return str(ipaddress.IPv4Network(pools[CLOUD_ORDER[0]])[-2])


@dataclass(frozen=True)
class InUse:
    """An address (or network) this machine uses, and where that was found."""

    network: ipaddress.IPv4Network
    source: str


@dataclass(frozen=True)
class MachineConfig:
    """Where the machine's own addresses and the hosts it depends on are read from (the real
    files by default; tests give their own)."""

    environ: Mapping[str, str]
    hosts_file: Path = Path("/etc/hosts")
    pip_files: tuple[Path, ...] = ()
    apt_dirs: tuple[Path, ...] = (Path("/etc/apt"),)
    resolve: Callable[[str], list[str]] | None = None  # host -> IPv4 addresses
    run_ip: bool = True  # read `ip` routes, addresses and neighbours

    @classmethod
    def of_this_machine(cls) -> MachineConfig:
        env = os.environ
        home = Path(env.get("HOME", "/root"))
        pip_files = [Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"),
                     home / ".config/pip/pip.conf", home / ".pip/pip.conf"]
        if env.get("PIP_CONFIG_FILE"):
            pip_files.append(Path(env["PIP_CONFIG_FILE"]))
        if env.get("VIRTUAL_ENV"):
            pip_files.append(Path(env["VIRTUAL_ENV"]) / "pip.conf")
        return cls(environ=dict(env), pip_files=tuple(pip_files))


def check_block(block: str, machine: MachineConfig | None = None) -> dict[str, str]:
    """One /24 pool per cloud: the first four /24s of `block` that hold nothing this machine uses
    (a /24 that does is skipped: another sandbox's pools, a VPN's routes). InputError (--pool,
    exit 2) when fewer than four are free, naming what this machine uses and where it was found."""
    pools_of(block)  # InputError for a block that is not IPv4 or smaller than a /22
    network = ipaddress.IPv4Network(block, strict=False)
    used = [u for u in addresses_in_use(machine or MachineConfig.of_this_machine()) if u.network.overlaps(network)]
    free: list[str] = []
    for candidate in network.subnets(new_prefix=24):
        if not any(u.network.overlaps(candidate) for u in used):
            free.append(str(candidate))
            if len(free) == len(CLOUD_ORDER):
                return dict(zip(CLOUD_ORDER, free, strict=True))
    seen = "; ".join(f"{_show(u.network)} ({u.source})" for u in used[:3])
    raise InputError(
        "--pool",
        f"{network} has only {len(free)} /24s free of addresses this machine uses, and the sandbox needs "
        f"{len(CLOUD_ORDER)} (one per cloud): this machine uses {seen}{' and more' if len(used) > 3 else ''}; "
        "while the sandbox runs, the machine could not reach those",
        "a block with four /24s none of whose addresses the machine uses, e.g. --pool 100.64.0.0/16",
    )


def _show(network: ipaddress.IPv4Network) -> str:
    return str(network.network_address) if network.prefixlen == 32 else str(network)


def addresses_in_use(machine: MachineConfig) -> list[InUse]:
    """Every address or network this machine uses: its routes (not the default), interface
    addresses and neighbours, the addresses in /etc/hosts, and what the hosts named in its
    proxy variables, pip configuration and apt sources resolve to."""
    found: list[InUse] = []
    if machine.run_ip:
        found += routed()
    hosts: dict[str, str] = {}  # host name -> where it was named
    found += _from_hosts_file(machine.hosts_file, hosts)
    for name in PROXY_VARIABLES:
        for url in machine.environ.get(name, "").split():
            _note_host(hosts, url, f"${name}")
    index_named = bool(machine.environ.get("PIP_INDEX_URL"))
    for path in machine.pip_files:
        for key, url in _pip_urls(path):
            _note_host(hosts, url, str(path))
            index_named = index_named or key == "index-url"
    if not index_named:
        for url in PIP_DEFAULT_INDEX:
            _note_host(hosts, url, "pip's default index (no index-url is configured)")
    for directory in machine.apt_dirs:
        for path, url in _apt_urls(directory):
            _note_host(hosts, url, str(path))
    found += _resolved(hosts, machine.resolve or _resolve_ipv4)
    return found


def _ipv4_network(text: str) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        return None


_ROUTE_TYPES = {"local", "broadcast", "unicast", "multicast", "anycast", "blackhole", "unreachable", "prohibit",
                "throw", "nat"}


def routed() -> list[InUse]:
    """This machine's routes (not the default), interface addresses and neighbours, as `ip` shows them."""
    found: list[InUse] = []
    commands = {
        ("ip", "-4", "route", "show", "table", "all"): "a route",
        ("ip", "-4", "-o", "addr", "show"): "an address of this machine",
        ("ip", "-4", "neigh", "show"): "a neighbour",
    }
    for command, what in commands.items():
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for line in out.splitlines():
            words = line.split()
            if not words:
                continue
            if "addr" in command:
                candidate = words[words.index("inet") + 1] if "inet" in words else ""
                candidate = candidate.split("/")[0]
            else:
                candidate = words[1] if words[0] in _ROUTE_TYPES and len(words) > 1 else words[0]
            network = _ipv4_network(candidate) if candidate not in {"default", "0.0.0.0/0"} else None
            if network is not None and not network.is_loopback:
                found.append(InUse(network, f"{what}: `{' '.join(command)}` shows {line.strip()!r}"))
    return found


def _from_hosts_file(path: Path, hosts: dict[str, str]) -> list[InUse]:
    found: list[InUse] = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return found
    for number, line in enumerate(lines, 1):
        words = line.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        network = _ipv4_network(words[0])
        if network is not None and not network.is_loopback:
            found.append(InUse(network, f"{path} line {number}: {' '.join(words)}"))
    return found


def _note_host(hosts: dict[str, str], url: str, where: str) -> None:
    url = url.strip().strip("\"'")
    if not url or url.startswith("file:"):
        return
    host = urlsplit(url if "//" in url else f"//{url}").hostname
    if host and host not in hosts and host != "localhost":
        hosts[host] = where


def _pip_urls(path: Path) -> list[tuple[str, str]]:
    """(key, URL or host) for every index, proxy and trusted host a pip configuration file names."""
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except (configparser.Error, OSError):
        return []
    urls: list[tuple[str, str]] = []
    for section in parser.sections():
        for key in ("index-url", "extra-index-url", "proxy", "trusted-host", "find-links"):
            urls += [(key, url) for url in parser.get(section, key, fallback="").split()]
    return urls


_APT_URL = re.compile(r"\b(?:https?|ftp)://[^\s\"';\]]+")


def _apt_urls(directory: Path) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    if not directory.is_dir():
        return found
    for path in sorted(directory.rglob("*")):
        if not path.is_file() or path.suffix not in {".list", ".sources", ".conf", ""}:
            continue
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if line.lstrip().startswith(("#", "//")):
                continue
            found += [(path, url) for url in _APT_URL.findall(line)]
    return found


def _resolve_ipv4(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _resolved(hosts: dict[str, str], resolve: Callable[[str], list[str]]) -> list[InUse]:
    """What each host resolves to, all looked up at once; a host that does not resolve within
    RESOLVE_TIMEOUT_S is left out (it cannot be reached anyway)."""
    found: list[InUse] = []
    if not hosts:
        return found
    pool = ThreadPoolExecutor(max_workers=min(8, len(hosts)), thread_name_prefix="resolve")
    futures = {host: pool.submit(resolve, host) for host in hosts}
    for host, future in futures.items():
        try:
            addresses = future.result(timeout=RESOLVE_TIMEOUT_S)
        except (FutureTimeout, OSError, UnicodeError):
            continue
        for address in addresses:
            network = _ipv4_network(address)
            if network is not None and not network.is_loopback:
                found.append(InUse(network, f"{host}, named in {hosts[host]}, resolves to it"))
    pool.shutdown(wait=False, cancel_futures=True)
    return found
