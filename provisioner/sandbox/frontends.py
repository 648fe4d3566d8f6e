"""The sandbox's load balancers and DNS server, run for real: each load balancer the clouds'
APIs report (ingress_view) gets an endpoint host (hosts.LocalHosts.add_endpoint) at its public
address on its cloud's bridge, running lb_forwarder.py; the DNS server runs dns_server.py on
its own endpoint at pools.dns_address. Their configuration files live in the sandbox's
directory under ingress/ and are rewritten only when what the APIs report changes. Everything
here goes with its hosts (remove_host, LocalHosts.close, cleanup_leftovers).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..private_files import write_private_file

LOG = logging.getLogger("cast.sandbox")
DNS_HOST = "dns"


def balancer_host(cloud: str, balancer_id: str) -> str:
    """A load balancer's host name: short (namespace and link names are) and unique."""
    return "l" + hashlib.sha256(f"{cloud}/{balancer_id}".encode()).hexdigest()[:8]


def _write(path: Path, document: Any) -> bool:
    """Write `document` as JSON to `path` atomically; False when it already holds just that."""
    text = json.dumps(document, sort_keys=True)
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    write_private_file(path, text.encode())
    return True


class Frontends:
    """The load balancers and the DNS server of one sandbox, on `hosts`."""

    def __init__(self, hosts: Any, directory: Path, pools: Mapping[str, str], dns_address: str, dns_group: str):
        self.hosts = hosts
        self.directory = directory / "ingress"
        self.pools = {cloud: ipaddress.IPv4Network(pool) for cloud, pool in pools.items()}
        self.dns_address = dns_address
        self.dns_group = dns_group
        self.balancers: dict[str, dict[str, Any]] = {}  # host name -> the balancer it serves
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.zones: dict[str, list[dict[str, Any]]] = {}  # cloud -> its zones, as last read

    def start(self) -> None:
        """The DNS server, serving no zone yet."""
        self.directory.mkdir(mode=0o700, exist_ok=True)
        config = self.directory / "dns.json"
        _write(config, {"address": self.dns_address, "zones": []})
        self.hosts.add_endpoint(DNS_HOST, self.dns_group, self.dns_address)
        self._run(DNS_HOST, "provisioner.sandbox.dns_server", config)

    def _run(self, host: str, module: str, config: Path) -> None:
        self.processes[host] = self.hosts.run_in(host, [sys.executable, "-m", module, str(config)],
                                                 self.directory / f"{host}.log")

    def sync(self, balancers: Iterable[dict[str, Any]], zones: Iterable[dict[str, Any]], failed: set[str]) -> None:
        """Serve exactly `balancers` and `zones` (those of a cloud in `failed`, which could not be
        read this time, stay as they were)."""
        wanted: dict[str, dict[str, Any]] = {}
        for b in balancers:
            address, pool = b.get("address"), self.pools.get(b.get("cloud", ""))
            if not address or pool is None or ipaddress.IPv4Address(address) not in pool:
                continue  # only the cloud's own pool: never an address of this machine's
            wanted[balancer_host(b["cloud"], b["id"])] = b
        for name, b in self.balancers.items():
            if name not in wanted and b["cloud"] in failed:
                wanted[name] = b
        moved = [n for n in self.balancers if n not in wanted or wanted[n]["address"] != self.balancers[n]["address"]]
        for name in moved:
            LOG.info("load balancer %s (%s) gone: removing its endpoint", self.balancers[name]["id"], name)
            self.hosts.remove_host(name)
            self.processes.pop(name, None)
            self.balancers.pop(name)
            for leftover in self.directory.glob(f"{name}.json*"):
                leftover.unlink(missing_ok=True)
        for name, b in wanted.items():
            config = self.directory / f"{name}.json"
            backends = sorted(x["public_ip"] for x in b.get("backends", []) if x.get("public_ip"))
            _write(config, {"address": b["address"], "forwards": b.get("forwards", []),
                            "health": b.get("health", {}), "backends": backends, "cloud": b["cloud"], "id": b["id"]})
            if name not in self.balancers:
                try:
                    self.hosts.add_endpoint(name, b["cloud"], b["address"])
                except Exception as exc:  # e.g. the address is a VM's: try again next pass
                    LOG.error("cannot serve load balancer %s at %s: %s", b["id"], b["address"], exc)
                    continue
                self._run(name, "provisioner.sandbox.lb_forwarder", config)
                LOG.info("serving %s load balancer %s at %s (%s)", b["cloud"], b["id"], b["address"], name)
            self.balancers[name] = b
        for process in self.processes.values():
            process.poll()  # reap what ended
        fresh: dict[str, list[dict[str, Any]]] = {}
        for zone in zones:
            fresh.setdefault(zone.get("cloud", ""), []).append(zone)
        self.zones = {**{c: z for c, z in self.zones.items() if c in failed}, **fresh}
        served = [{"zone": z["zone"], "records": z.get("records", [])} for c in sorted(self.zones)
                  for z in self.zones[c]]
        _write(self.directory / "dns.json", {"address": self.dns_address, "zones": served})

    def health(self) -> dict[str, dict[str, Any]]:
        """What each load balancer's health checks found: {address: {"up": [...], "down": [...]}}."""
        out = {}
        for name, b in self.balancers.items():
            try:
                out[b["address"]] = json.loads((self.directory / f"{name}.json.health").read_text())
            except (OSError, ValueError):
                out[b["address"]] = {"up": [], "down": []}
        return out
