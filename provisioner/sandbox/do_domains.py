"""The DigitalOcean emulator's domains and domain records (/v2/domains).

- Domains: create (the API adds the zone's three NS records, and an A record at the apex
  when `ip_address` is given), get (with its `zone_file`), list, delete. A name that is not
  a domain, or one the account already has, gets the API's 422.
- Records: list (filtered by `type` and by `name`, the fully qualified name, as the API
  reference says), create, get, update (PUT and PATCH), delete. Names are kept as the API
  keeps them, relative to the zone ("@" for the apex); an A record's data must be an IPv4
  address and a TTL at least 30 s. Every record shows all its fields (null where unused).
- `zones_for_sandbox` is what the control route GET /_emulator/dns-zones shows: each zone's
  record sets by absolute name and type, for the sandbox's DNS server.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from typing import Any

from .do_wire import not_found, page, unprocessable
from .emulator import Request, Response

DEFAULT_TTL = 1800
MIN_TTL = 30
NAME_SERVERS = ("ns1.digitalocean.com", "ns2.digitalocean.com", "ns3.digitalocean.com")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_RECORD_FIELDS = ("priority", "port", "weight", "flags", "tag")


class Domains:
    """A mixin of the emulator, which provides `domains` (name -> {record id -> record}),
    `url` and `_ids` (the emulator's id counter)."""

    domains: dict[str, dict[int, dict[str, Any]]]
    url: str
    _ids: itertools.count[int]

    # --- domains -----------------------------------------------------------------------

    def _zone_file(self, name: str) -> str:
        lines = [f"$ORIGIN {name}.", f"$TTL {DEFAULT_TTL}",
                 f"{name}. IN SOA {NAME_SERVERS[0]}. hostmaster.{name}. 1415982609 10800 3600 604800 1800"]
        for r in self.domains[name].values():
            owner = f"{name}." if r["name"] == "@" else f"{r['name']}.{name}."
            data = {"TXT": f'"{r["data"]}"', "NS": f"{r['data']}.", "CNAME": f"{r['data']}.",
                    "MX": f"{r['priority']} {r['data']}."}.get(r["type"], r["data"])
            lines.append(f"{owner} {r['ttl']} IN {r['type']} {data}")
        return "\n".join(lines) + "\n"

    def _domain_json(self, name: str, *, zone_file: bool = True) -> dict[str, Any]:
        return {"name": name, "ttl": DEFAULT_TTL, "zone_file": self._zone_file(name) if zone_file else None}

    def _add_record(self, domain: str, fields: dict[str, Any]) -> dict[str, Any]:
        record = {"id": next(self._ids), "type": fields["type"], "name": fields["name"], "data": fields.get("data", ""),
                  **{f: fields.get(f) for f in _RECORD_FIELDS}, "ttl": int(fields.get("ttl", DEFAULT_TTL))}
        self.domains[domain][record["id"]] = record
        return record

    def _post_domains(self, request: Request, body: dict[str, Any]) -> Response:
        name = str(body["name"]).lower().rstrip(".")
        if not _DOMAIN.match(name):
            return unprocessable("Name Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)")
        if name in self.domains:
            return unprocessable("Name already exists")
        if "ip_address" in body and _ipv4(str(body["ip_address"])) is None:
            return unprocessable("IP address is not a valid IPv4 address.")
        self.domains[name] = {}
        for server in NAME_SERVERS:
            self._add_record(name, {"type": "NS", "name": "@", "data": server})
        if "ip_address" in body:
            self._add_record(name, {"type": "A", "name": "@", "data": body["ip_address"]})
        return Response(201, {"domain": self._domain_json(name, zone_file=False)})

    def _get_domains(self, request: Request, body: Any) -> Response:
        return page(request, self.url, "domains", [self._domain_json(n) for n in sorted(self.domains)])

    def _get_domains_id(self, request: Request, body: Any, name: str) -> Response:
        name = name.lower()
        return Response(200, {"domain": self._domain_json(name)}) if name in self.domains else not_found()

    def _delete_domains_id(self, request: Request, body: Any, name: str) -> Response:
        if self.domains.pop(name.lower(), None) is None:
            return not_found()
        return Response(204)

    # --- records -----------------------------------------------------------------------

    @staticmethod
    def _relative(domain: str, name: str) -> str:
        """A record name as the API keeps it: relative to the zone, "@" for the apex (an
        absolute name, with its trailing dot, inside the zone is made relative)."""
        name = name.lower()
        if name.endswith("."):
            absolute = name.rstrip(".")
            if absolute == domain:
                return "@"
            if absolute.endswith(f".{domain}"):
                return absolute[: -len(domain) - 1]
        return name

    @staticmethod
    def _record_refusal(fields: dict[str, Any]) -> str | None:
        if fields.get("type") in ("A", "AAAA", "CNAME", "TXT", "NS", "MX") and not fields.get("data"):
            return "Data needs to be set."
        if fields.get("type") == "A" and _ipv4(str(fields.get("data"))) is None:
            return "IP address did not match IPv4 format (e.g. 127.0.0.1)."
        if "ttl" in fields and int(fields["ttl"]) < MIN_TTL:
            return f"TTL must be at least {MIN_TTL} seconds."
        if not str(fields.get("name") or ""):
            return "Name needs to be set."
        return None

    def _get_domains_id_records(self, request: Request, body: Any, domain: str) -> Response:
        domain = domain.lower()
        if domain not in self.domains:
            return not_found()
        kind, name = request.arg("type"), request.arg("name")
        wanted = None if name is None else self._relative(domain, name.rstrip(".") + ".")
        found = [r for r in self.domains[domain].values()
                 if (kind is None or r["type"] == kind) and (wanted is None or r["name"] == wanted)]
        return page(request, self.url, "domain_records", found)

    def _post_domains_id_records(self, request: Request, body: dict[str, Any], domain: str) -> Response:
        domain = domain.lower()
        if domain not in self.domains:
            return not_found()
        refused = self._record_refusal(body)
        if refused:
            return unprocessable(refused)
        record = self._add_record(domain, {**body, "name": self._relative(domain, str(body["name"]))})
        return Response(201, {"domain_record": record})

    def _record(self, domain: str, record_id: str) -> dict[str, Any] | None:
        records = self.domains.get(domain.lower())
        if records is None or not record_id.isdigit():
            return None
        return records.get(int(record_id))

    def _get_domains_id_records_id(self, request: Request, body: Any, domain: str, record_id: str) -> Response:
        record = self._record(domain, record_id)
        return Response(200, {"domain_record": record}) if record else not_found()

    def _put_domains_id_records_id(self, request: Request, body: dict[str, Any], domain: str,
                                   record_id: str) -> Response:
        record = self._record(domain, record_id)
        if record is None:
            return not_found()
        changed = {k: v for k, v in body.items() if k in ("name", "data", "ttl", *_RECORD_FIELDS)}
        if "name" in changed:
            changed["name"] = self._relative(domain.lower(), str(changed["name"]))
        refused = self._record_refusal({**record, **changed})
        if refused:
            return unprocessable(refused)
        record.update(changed)
        return Response(200, {"domain_record": record})

    _patch_domains_id_records_id = _put_domains_id_records_id  # the API updates what is given, both ways

    def _delete_domains_id_records_id(self, request: Request, body: Any, domain: str, record_id: str) -> Response:
        record = self._record(domain, record_id)
        if record is None:
            return not_found()
        del self.domains[domain.lower()][record["id"]]
        return Response(204)

    # --- the sandbox's view ------------------------------------------------------------

    def zones_for_sandbox(self) -> list[dict[str, Any]]:
        """Every zone's record sets (GET /_emulator/dns-zones): absolute names, TXT unquoted."""
        zones = []
        for name in sorted(self.domains):
            sets: dict[tuple[str, str], dict[str, Any]] = {}
            for r in self.domains[name].values():
                owner = name if r["name"] == "@" else f"{r['name']}.{name}"
                entry = sets.setdefault((owner, r["type"]), {"name": owner, "type": r["type"], "ttl": r["ttl"],
                                                             "values": []})
                entry["values"].append(r["data"])
            zones.append({"zone": name, "records": list(sets.values())})
        return zones


def _ipv4(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        return None
