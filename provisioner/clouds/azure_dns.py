"""Azure DNS behind the ingress contract (balancing.DnsZone), through azure-mgmt-dns on the
Azure session (credentials, endpoint, error mapping: azure_session). The zone is found among
the subscription's public zones (any resource group) by the longest name that is a suffix of
the domain; record sets are addressed by their name relative to the zone (`@` for the apex).
Record-set PUTs and deletes are synchronous in Azure DNS. The SDK is imported lazily.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .azure_session import AzureSession, mapped_errors
from .balancing import DnsZone, RecordSet, zone_for

TXT_CHUNK = 255  # a TXT record's value is a list of strings of at most 255 characters each


class Zone(DnsZone):
    """The subscription's Azure DNS zone that holds `domain`."""

    provider = "azuredns"

    def __init__(self, domain: str, session: AzureSession | None = None):
        self.domain = domain.rstrip(".").lower()
        self.session = session or AzureSession.from_env()
        client = self.session.dns
        with mapped_errors("list DNS zones"):
            zones = [z for z in client.zones.list() if (z.zone_type or "Public").lower() == "public"]
        holding = zone_for(self.domain, zones, name=lambda z: str(z.name))
        if holding is None:
            raise InputError("ingress.domain", f"no Azure DNS zone in subscription {self.session.subscription_id} "
                                               f"holds {self.domain} (provider azuredns)",
                             ", ".join(sorted(z.name for z in zones)) or "none: create the zone")
        self.zone: Any = holding
        self.group = self.zone.id.split("/")[4]

    def _relative(self, name: str) -> str:
        name = name.rstrip(".").lower()
        zone = self.zone.name.lower()
        return "@" if name == zone else name.removesuffix("." + zone)

    # --- the contract ------------------------------------------------------------------

    def record_sets(self, name: str) -> list[RecordSet]:
        relative, client = self._relative(name), self.session.dns
        with mapped_errors(f"list record sets of zone {self.zone.name}"):
            found = list(client.record_sets.list_all_by_dns_zone(self.group, self.zone.name))
        out = []
        for r in found:
            rtype = r.type.rsplit("/", 1)[-1].upper()
            if r.name.lower() != relative or rtype not in ("A", "TXT"):
                continue
            values = ([a.ipv4_address for a in r.a_records or []] if rtype == "A"
                      else ["".join(t.value or []) for t in r.txt_records or []])
            out.append(RecordSet(name=name.rstrip(".").lower(), type=rtype, values=tuple(values), ttl=int(r.ttl or 0)))
        return out

    def upsert(self, record: RecordSet) -> None:
        from azure.mgmt.dns import models

        if record.type == "A":
            body = models.RecordSet(ttl=record.ttl, a_records=[models.ARecord(ipv4_address=v) for v in record.values])
        elif record.type == "TXT":
            body = models.RecordSet(ttl=record.ttl, txt_records=[
                models.TxtRecord(value=[v[i:i + TXT_CHUNK] for i in range(0, len(v), TXT_CHUNK)] or [""])
                for v in record.values])
        else:
            raise ValueError(f"record type {record.type} is not one cast writes")
        relative = self._relative(record.name)
        with mapped_errors(f"set {record.type} {record.name} in zone {self.zone.name}"):
            self.session.dns.record_sets.create_or_update(self.group, self.zone.name, relative, record.type, body)

    def delete(self, record: RecordSet) -> None:
        relative = self._relative(record.name)
        with mapped_errors(f"delete {record.type} {record.name} in zone {self.zone.name}"):
            self.session.dns.record_sets.delete(self.group, self.zone.name, relative, record.type)  # absent: 204
