"""The user's DigitalOcean DNS zone (balancing.DnsZone), through pydo's domains API (do_client).

DigitalOcean keeps one record per value, named relative to its domain ("@" for the apex); a
record set here is every record of one type at one name. The zone is the account's domain
with the longest name that is the wanted domain or a suffix of it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from ..errors import InputError, NotFoundError
from .balancing import DnsZone, RecordSet
from .balancing import zone_for as balancing_zone_for
from .do_client import DoApi

PROVIDER = "digitalocean"


def zone_for(domain: str, zones: Iterable[str]) -> str | None:
    """The longest of `zones` that is `domain` itself or a suffix of it (by whole labels)."""
    found = balancing_zone_for(domain, zones)
    return found.lower().rstrip(".") if found is not None else None


class Zone(DnsZone):
    """The DigitalOcean domain holding `domain`. InputError (exit 2) naming the domain and the
    provider when the account has none."""

    provider = PROVIDER

    def __init__(self, domain: str):
        self.api = DoApi()
        names = [str(d.get("name", "")) for d in self.api.pages("list domains", lambda c: c.domains.list, "domains")]
        zone = zone_for(domain, names)
        if zone is None:
            raise InputError("ingress.domain", f"no DigitalOcean domain of this account holds {domain}",
                             ", ".join(sorted(names)) or "none: add the domain under Networking > Domains first")
        self.zone = zone

    def _relative(self, name: str) -> str:
        name = name.lower().rstrip(".")
        if name == self.zone:
            return "@"
        if not name.endswith(f".{self.zone}"):
            raise InputError("ingress.domain", f"{name} is not inside the DigitalOcean domain {self.zone}")
        return name[: -len(self.zone) - 1]

    def _records(self, name: str, kind: str | None = None) -> list[dict[str, Any]]:
        self._relative(name)  # refuses a name outside the zone
        params = {"name": name.lower().rstrip(".")}
        if kind:
            params["type"] = kind
        return list(self.api.pages(f"list records of {name}", lambda c: c.domains.list_records, "domain_records",
                                   domain_name=self.zone, **params))

    def record_sets(self, name: str) -> list[RecordSet]:
        by_type: dict[str, list[dict[str, Any]]] = {}
        for r in self._records(name):
            by_type.setdefault(str(r["type"]), []).append(r)
        absolute = name.lower().rstrip(".")
        return [RecordSet(absolute, kind, tuple(sorted(str(r["data"]) for r in rs)), int(rs[0].get("ttl") or 0))
                for kind, rs in sorted(by_type.items())]

    def upsert(self, record: RecordSet) -> None:
        existing = self._records(record.name, record.type)
        wanted = set(record.values)
        kept: set[str] = set()
        for r in existing:
            data = str(r["data"])
            if data not in wanted or data in kept:
                self._delete_one(r)
                continue
            kept.add(data)
            if int(r.get("ttl") or 0) != record.ttl:
                self.api.call(f"set the TTL of {record.type} {record.name}", lambda c: c.domains.patch_record,
                              self.zone, r["id"], body={"type": record.type, "ttl": record.ttl})
        for value in sorted(wanted - kept):
            body: dict[str, Any] = {"type": record.type, "name": self._relative(record.name), "data": value,
                                    "ttl": record.ttl}
            if record.type == "TXT":  # DigitalOcean's description requires both on a TXT record (null: unused)
                body.update(flags=None, tag=None)
            self.api.call(f"create {record.type} {record.name}", lambda c: c.domains.create_record, self.zone,
                          body=body)

    def delete(self, record: RecordSet) -> None:
        for r in self._records(record.name, record.type):
            self._delete_one(r)

    def _delete_one(self, r: dict[str, Any]) -> None:
        with contextlib.suppress(NotFoundError):  # gone already: what was asked
            self.api.call(f"delete {r['type']} record {r['name']}", lambda c: c.domains.delete_record, self.zone,
                          r["id"])
