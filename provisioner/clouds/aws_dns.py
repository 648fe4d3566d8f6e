"""The user's Route 53 hosted zone (balancing.DnsZone), through boto3: the public zone whose
name is the longest suffix of the domain; record sets read, upserted and deleted one
change at a time, each waited for until Route 53 reports it INSYNC."""

from __future__ import annotations

from typing import Any

from ..errors import InputError, NotFoundError
from ..retry import wait_until
from .aws_api import AwsApi
from .balancing import DnsZone, RecordSet, zone_for

GLOBAL_REGION = "us-east-1"  # Route 53 is global; boto3 signs it in us-east-1
INSYNC_TIMEOUT_S = 300.0


def _absolute(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(value: str) -> str:
    """A TXT value as Route 53 returns it (one or more quoted strings) without the quotes."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        parts = value[1:-1].split('" "')
        return "".join(p.replace('\\"', '"').replace("\\\\", "\\") for p in parts)
    return value


class Zone(DnsZone):
    """The public hosted zone holding `domain`."""

    provider = "route53"

    def __init__(self, domain: str, *, api: AwsApi | None = None):
        self.domain = domain.rstrip(".").lower()
        self.api = api or AwsApi(GLOBAL_REGION)
        self.zone_id, self.zone_name = self._find()

    def _find(self) -> tuple[str, str]:
        zones: list[dict[str, Any]] = []
        marker: dict[str, str] = {}
        while True:
            page = self.api.call("route53", "list_hosted_zones", what="listing the Route 53 hosted zones", **marker)
            zones += page.get("HostedZones", [])
            if not page.get("IsTruncated"):
                break
            marker = {"Marker": page["NextMarker"]}
        wanted = _absolute(self.domain)
        public = [z for z in zones if not z.get("Config", {}).get("PrivateZone")]
        best = zone_for(wanted, public, name=lambda z: str(z["Name"]))
        if best is None:
            names = ", ".join(sorted(z["Name"].rstrip(".") for z in public)) or "none"
            raise InputError("--ingress-domain", f"no public Route 53 hosted zone of this account holds "
                                                 f"{self.domain}", f"a domain in one of the zones: {names}")
        return best["Id"].split("/")[-1], best["Name"].rstrip(".")

    def record_sets(self, name: str) -> list[RecordSet]:
        wanted = _absolute(name)
        found = self.api.call("route53", "list_resource_record_sets", what=f"reading the records at {name}",
                              HostedZoneId=self.zone_id, StartRecordName=wanted, MaxItems="100")
        out = []
        for item in found.get("ResourceRecordSets", []):
            if _absolute(item["Name"]) != wanted or "ResourceRecords" not in item:
                continue  # another name, or an alias record (none of cast's)
            values = [r["Value"] for r in item["ResourceRecords"]]
            if item["Type"] == "TXT":
                values = [_unquote(v) for v in values]
            out.append(RecordSet(wanted.rstrip("."), item["Type"], tuple(values), int(item.get("TTL", 0))))
        return out

    def _change(self, action: str, record: RecordSet) -> None:
        values = [_quote(v) if record.type == "TXT" else v for v in record.values]
        change = {"Action": action, "ResourceRecordSet": {
            "Name": _absolute(record.name), "Type": record.type, "TTL": record.ttl,
            "ResourceRecords": [{"Value": v} for v in values]}}
        done = self.api.call("route53", "change_resource_record_sets", what=f"{action.lower()} {record.type} "
                             f"{record.name}", HostedZoneId=self.zone_id, ChangeBatch={"Changes": [change]})
        change_id = done["ChangeInfo"]["Id"]
        if done["ChangeInfo"].get("Status") == "INSYNC":
            return

        def insync() -> bool:
            info = self.api.call("route53", "get_change", what="waiting for the change", Id=change_id)
            return bool(info["ChangeInfo"].get("Status") == "INSYNC")

        wait_until(insync, what=f"Route 53 change {change_id}", timeout_s=INSYNC_TIMEOUT_S, initial=0.5, maximum=5.0)

    def upsert(self, record: RecordSet) -> None:
        self._change("UPSERT", record)

    def delete(self, record: RecordSet) -> None:
        # Route 53 deletes only the exact record set it holds: delete what is there.
        current = next((r for r in self.record_sets(record.name) if r.type == record.type), None)
        if current is None:
            return
        try:
            self._change("DELETE", current)
        except NotFoundError:
            return
