"""The sandbox's DNS server: authoritative for the zones the DNS emulators hold (moto's Route 53,
and the GCP, Azure and DigitalOcean emulators' zones), answering over UDP and TCP on port 53 of
its own sandbox address, with dnslib's server. One process inside its own network namespace.

The supervisor writes the zones to a JSON file and rewrites it (atomically) when they change;
the server reads it again when it changes:
  {"address": "198.18.0.254", "zones": [{"zone": "example.test",
     "records": [{"name": "apps.example.test", "type": "A", "ttl": 60, "values": ["198.18.0.9"]}]}]}
A name inside a zone with no record of the asked type gets an empty answer (NXDOMAIN when the
name has no record at all); a name in no zone is REFUSED, as an authoritative-only server does.

`python -m provisioner.sandbox.dns_server CONFIG` (run by the supervisor in the namespace).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

RELOAD_S = 0.2
PORT = 53


def _name(text: str) -> str:
    return text.rstrip(".").lower()


class Zones:
    """The zones of a configuration file, read again whenever it changes."""

    def __init__(self, path: Path):
        self.path = path
        self.mtime = 0.0
        self.lock = threading.Lock()
        self.zones: dict[str, list[dict[str, Any]]] = {}

    def reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
            if mtime == self.mtime:
                return
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        self.mtime = mtime
        with self.lock:
            self.zones = {_name(z["zone"]): list(z.get("records", [])) for z in data.get("zones", [])}

    def lookup(self, name: str) -> tuple[str | None, list[dict[str, Any]]]:
        """The zone holding `name` (the longest suffix) and the records at `name`."""
        name = _name(name)
        with self.lock:
            holding = [z for z in self.zones if name == z or name.endswith("." + z)]
            if not holding:
                return None, []
            zone = max(holding, key=len)
            return zone, [r for r in self.zones[zone] if _name(r["name"]) == name]


def resolver(zones: Zones) -> Any:
    """A dnslib resolver answering from `zones`."""
    from dnslib import QTYPE, RCODE, RR, TXT, A, DNSLabel
    from dnslib.server import BaseResolver

    class ZoneResolver(BaseResolver):
        def resolve(self, request: Any, handler: Any) -> Any:
            reply = request.reply(ra=0)  # authoritative only: no recursion
            qname = str(request.q.qname)
            qtype = QTYPE[request.q.qtype]
            zone, records = zones.lookup(qname)
            if zone is None:
                reply.header.rcode = RCODE.REFUSED
                return reply
            reply.header.aa = 1
            if not records:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            for record in records:
                if record["type"] != qtype and qtype != "ANY":
                    continue
                for value in record.get("values", []):
                    if record["type"] == "A":
                        rdata: Any = A(value)
                    elif record["type"] == "TXT":
                        rdata = TXT(value.strip('"'))
                    else:
                        continue
                    reply.add_answer(RR(DNSLabel(qname), getattr(QTYPE, record["type"]), rdata=rdata,
                                        ttl=int(record.get("ttl", 60))))
            return reply

    return ZoneResolver()


def main(argv: list[str] | None = None) -> None:
    from dnslib.server import DNSLogger, DNSServer

    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        sys.exit("usage: python -m provisioner.sandbox.dns_server CONFIG")
    path = Path(args[0])
    zones = Zones(path)
    zones.reload()
    address = json.loads(path.read_text())["address"]
    quiet = DNSLogger(log="-request,-reply,-truncated,-data", prefix=False)
    servers = [DNSServer(resolver(zones), address=address, port=PORT, tcp=tcp, logger=quiet) for tcp in (False, True)]
    for server in servers:
        server.start_thread()
    while True:
        zones.reload()
        time.sleep(RELOAD_S)  # a poll of the configuration file, not a wait for an event


if __name__ == "__main__":
    main()
