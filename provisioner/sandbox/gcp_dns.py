"""The GCP emulator's Cloud DNS v1 (paths under /dns/v1/, checked against the dns v1 discovery
document that google-api-python-client ships, as compute's are): managed zones (create, get,
list with `dnsName`, delete; a new zone holds its SOA and NS records), resource record sets
(list with `name`/`type`, create, get, patch, delete) and changes (create, get, list), which
apply at once and read `pending` until op_delay has passed, then `done`.

Refused as Cloud DNS refuses them: a zone name that is not RFC 1035 or a dnsName without its
trailing dot (400 invalid), a record outside its zone or an A record whose data is not an IPv4
address (400 invalid), adding a record set that exists (409 alreadyExists), deleting one that
does not exist or no longer matches (404 notFound), deleting a zone that still holds records of
its own (400 containerNotEmpty). `dns_zones` is what the sandbox control route
`/_emulator/dns-zones` shows.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Any

from . import gcp_discovery
from .emulator import Request, Response
from .gcp_common import ApiError, error, valid_name
from .gcp_state import GcpState

PREFIX = "/dns/v1/"
NAME_SERVERS = [f"ns-cloud-a{i}.googledomains.com." for i in range(1, 5)]
TYPES = ("A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "SOA", "SPF", "SRV", "TXT")
MAX_PAGE = 1000


def _timestamp() -> str:
    """A time as Cloud DNS writes it (RFC 3339, milliseconds, `Z`; compute writes an offset)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


class DnsApi(GcpState):
    """Cloud DNS v1 handlers; `dns_handle` serves a request whose path starts with PREFIX."""

    violations: list[str]

    def dns_handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        return {
            "dns.managedZones.create": self._zone_create,
            "dns.managedZones.get": lambda r, p: Response(200, self._zone(p)),
            "dns.managedZones.list": self._zone_list,
            "dns.managedZones.delete": self._zone_delete,
            "dns.resourceRecordSets.list": self._rrset_list,
            "dns.resourceRecordSets.create": self._rrset_create,
            "dns.resourceRecordSets.get": lambda r, p: Response(200, self._rrset(p, p["name"], p["type"])),
            "dns.resourceRecordSets.patch": self._rrset_patch,
            "dns.resourceRecordSets.delete": self._rrset_delete,
            "dns.changes.create": self._change_create,
            "dns.changes.get": self._change_get,
            "dns.changes.list": lambda r, p: Response(200, {"kind": "dns#changesListResponse", "changes": [
                self._change_view(c) for c in self._store.dns_changes.get(self._zone_key(p), [])]}),
        }

    def dns_handle(self, request: Request) -> Response:
        """Serve one Cloud DNS request (the caller has checked the bearer token)."""
        discovery = gcp_discovery.load_dns()
        problems = discovery.check(request.method, request.path, request.query, request.body)
        if problems:
            with self.lock:
                self.violations.extend(problems)
            if discovery.match(request.method, request.path) is None:
                return error(404, "notFound", f"The requested URL {request.path} was not found on this server.")
            return error(400, "invalid", "Invalid request (dns v1 discovery document): " + "; ".join(problems))
        found = discovery.match(request.method, request.path)
        assert found is not None
        handler = self.dns_handlers().get(found.method.id)
        if handler is None:
            return error(501, "notImplemented", f"the emulator does not implement {found.method.id}")
        try:
            with self.lock:
                response = handler(request, found.params)
        except ApiError as exc:
            return exc.response()
        if response.status < 300 and isinstance(response.body, dict):
            drift = discovery.check_response(found.method, response.body)
            if drift:
                with self.lock:
                    self.violations.extend(drift)
        return response

    # --- zones -------------------------------------------------------------------------

    @staticmethod
    def _zone_key(p: dict[str, str]) -> str:
        return f"{p['project']}/{p['managedZone']}"

    def _zone(self, p: dict[str, str]) -> dict[str, Any]:
        zone = self._store.dns_zones.get(self._zone_key(p))
        if zone is None:
            raise ApiError(404, "notFound", f"The 'parameters.managedZone' resource named '{p['managedZone']}' "
                                            "does not exist.")
        return zone

    def _zone_create(self, request: Request, p: dict[str, str]) -> Response:
        body = request.json() or {}
        name = valid_name(body.get("name"), "name")
        dns_name = str(body.get("dnsName") or "")
        if not dns_name.endswith(".") or dns_name == ".":
            raise ApiError(400, "invalid", f"Invalid value for 'entity.managedZone.dnsName': '{dns_name}'")
        key = f"{p['project']}/{name}"
        if key in self._store.dns_zones:
            raise ApiError(409, "alreadyExists", f"The resource 'entity.managedZone' named '{name}' already exists")
        zone = {"description": "", **body, "kind": "dns#managedZone", "name": name, "dnsName": dns_name.lower(),
                "id": str(next(self._ids)), "creationTime": _timestamp(), "nameServers": list(NAME_SERVERS),
                "visibility": body.get("visibility", "public")}
        self._store.dns_zones[key] = zone
        soa = f"{NAME_SERVERS[0]} cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300"
        self._store.dns_records[key] = {
            (zone["dnsName"], "SOA"): {"kind": "dns#resourceRecordSet", "name": zone["dnsName"], "type": "SOA",
                                       "ttl": 21600, "rrdatas": [soa]},
            (zone["dnsName"], "NS"): {"kind": "dns#resourceRecordSet", "name": zone["dnsName"], "type": "NS",
                                      "ttl": 21600, "rrdatas": list(NAME_SERVERS)},
        }
        self._store.dns_changes[key] = []
        return Response(200, zone)

    def _zone_list(self, request: Request, p: dict[str, str]) -> Response:
        wanted = request.arg("dnsName")
        zones = [z for k, z in self._store.dns_zones.items() if k.startswith(p["project"] + "/")
                 and (not wanted or z["dnsName"] == _fqdn(wanted.lower()))]
        page, following = _page(request, sorted(zones, key=lambda z: z["name"]))
        body: dict[str, Any] = {"kind": "dns#managedZonesListResponse", "managedZones": page}
        if following:
            body["nextPageToken"] = following
        return Response(200, body)

    def _zone_delete(self, request: Request, p: dict[str, str]) -> Response:
        zone = self._zone(p)
        own = [r for (name, rtype), r in self._store.dns_records[self._zone_key(p)].items()
               if not (name == zone["dnsName"] and rtype in ("SOA", "NS"))]
        if own:
            raise ApiError(400, "containerNotEmpty", f"The resource named '{p['managedZone']}' cannot be deleted "
                                                      "because it is not empty")
        key = self._zone_key(p)
        for table in (self._store.dns_zones, self._store.dns_records, self._store.dns_changes):
            table.pop(key, None)
        return Response(204)

    # --- record sets -------------------------------------------------------------------

    def _rrset(self, p: dict[str, str], name: str, rtype: str) -> dict[str, Any]:
        self._zone(p)
        found = self._store.dns_records[self._zone_key(p)].get((_fqdn(name.lower()), rtype))
        if found is None:
            raise ApiError(404, "notFound", f"The 'parameters.name' resource named '{name}' does not exist.")
        return found

    def _valid_rrset(self, zone: dict[str, Any], rrset: Any, where: str) -> dict[str, Any]:
        if not isinstance(rrset, dict):
            raise ApiError(400, "invalid", f"Invalid value for '{where}'")
        name, rtype = _fqdn(str(rrset.get("name") or "").lower()), rrset.get("type")
        if name != zone["dnsName"] and not name.endswith("." + zone["dnsName"]):
            raise ApiError(400, "invalid", f"Invalid value for '{where}.name': '{rrset.get('name')}'")
        if rtype not in TYPES:
            raise ApiError(400, "invalid", f"Invalid value for '{where}.type': '{rtype}'")
        datas = rrset.get("rrdatas") or []
        if not datas:
            raise ApiError(400, "required", f"Required field '{where}.rrdata' not specified")
        if rtype == "A":
            for data in datas:
                try:
                    ipaddress.IPv4Address(data)
                except ValueError:
                    raise ApiError(400, "invalid", f"Invalid value for '{where}.rrdata': '{data}'") from None
        ttl = int(rrset.get("ttl", 300))
        if ttl < 0:
            raise ApiError(400, "invalid", f"Invalid value for '{where}.ttl': '{ttl}'")
        return {"kind": "dns#resourceRecordSet", "name": name, "type": rtype, "ttl": ttl, "rrdatas": list(datas)}

    def _rrset_list(self, request: Request, p: dict[str, str]) -> Response:
        self._zone(p)
        name, rtype = request.arg("name"), request.arg("type")
        if rtype and not name:
            raise ApiError(400, "invalid", "Invalid value for 'parameters.name': a type filter needs a name")
        items = [r for r in self._store.dns_records[self._zone_key(p)].values()
                 if (not name or r["name"] == _fqdn(name.lower())) and (not rtype or r["type"] == rtype)]
        page, following = _page(request, sorted(items, key=lambda r: (r["name"], r["type"])))
        body: dict[str, Any] = {"kind": "dns#resourceRecordSetsListResponse", "rrsets": page}
        if following:
            body["nextPageToken"] = following
        return Response(200, body)

    def _rrset_create(self, request: Request, p: dict[str, str]) -> Response:
        zone = self._zone(p)
        rrset = self._valid_rrset(zone, request.json(), "entity.rrset")
        records = self._store.dns_records[self._zone_key(p)]
        if (rrset["name"], rrset["type"]) in records:
            raise ApiError(409, "alreadyExists", f"The resource 'entity.rrset' named '{rrset['name']} "
                                                  f"({rrset['type']})' already exists")
        records[(rrset["name"], rrset["type"])] = rrset
        return Response(200, rrset)

    def _rrset_patch(self, request: Request, p: dict[str, str]) -> Response:
        zone = self._zone(p)
        old = self._rrset(p, p["name"], p["type"])
        rrset = self._valid_rrset(zone, {**old, **(request.json() or {}), "name": old["name"], "type": old["type"]},
                                  "entity.rrset")
        self._store.dns_records[self._zone_key(p)][(rrset["name"], rrset["type"])] = rrset
        return Response(200, rrset)

    def _rrset_delete(self, request: Request, p: dict[str, str]) -> Response:
        gone = self._rrset(p, p["name"], p["type"])
        del self._store.dns_records[self._zone_key(p)][(gone["name"], gone["type"])]
        return Response(200, {})

    # --- changes -----------------------------------------------------------------------

    def _change_create(self, request: Request, p: dict[str, str]) -> Response:
        zone = self._zone(p)
        body = request.json() or {}
        records = dict(self._store.dns_records[self._zone_key(p)])
        deletions = [self._valid_rrset(zone, r, f"entity.change.deletions[{i}]")
                     for i, r in enumerate(body.get("deletions", []))]
        additions = [self._valid_rrset(zone, r, f"entity.change.additions[{i}]")
                     for i, r in enumerate(body.get("additions", []))]
        if not deletions and not additions:
            raise ApiError(400, "required", "The 'entity.change' resource must have additions or deletions")
        for i, rrset in enumerate(deletions):
            held = records.get((rrset["name"], rrset["type"]))
            if held is None:
                raise ApiError(404, "notFound", f"The 'entity.change.deletions[{i}]' resource named "
                                                f"'{rrset['name']} ({rrset['type']})' does not exist.")
            if held["rrdatas"] != rrset["rrdatas"] or held["ttl"] != rrset["ttl"]:
                raise ApiError(412, "conditionNotMet", f"Precondition not met for 'entity.change.deletions[{i}]'")
            del records[(rrset["name"], rrset["type"])]
        for i, rrset in enumerate(additions):
            if (rrset["name"], rrset["type"]) in records:
                raise ApiError(409, "alreadyExists", f"The resource 'entity.change.additions[{i}]' named "
                                                     f"'{rrset['name']} ({rrset['type']})' already exists")
            records[(rrset["name"], rrset["type"])] = rrset
        self._store.dns_records[self._zone_key(p)] = records  # all or nothing, as the API applies a change
        changes = self._store.dns_changes[self._zone_key(p)]
        change = {"kind": "dns#change", "id": str(len(changes) + 1), "startTime": _timestamp(),
                  "additions": additions, "deletions": deletions, "_done_at": time.monotonic() + self._delay()}
        changes.append(change)
        return Response(200, self._change_view(change))

    def _change_get(self, request: Request, p: dict[str, str]) -> Response:
        self._zone(p)
        found = next((c for c in self._store.dns_changes[self._zone_key(p)] if c["id"] == p["changeId"]), None)
        if found is None:
            raise ApiError(404, "notFound", f"The 'parameters.changeId' resource named '{p['changeId']}' "
                                            "does not exist.")
        return Response(200, self._change_view(found))

    @staticmethod
    def _change_view(change: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in change.items() if not k.startswith("_")}
        shown["status"] = "done" if time.monotonic() >= change["_done_at"] else "pending"
        return shown

    # --- the sandbox's view ------------------------------------------------------------

    def dns_zones(self) -> list[dict[str, Any]]:
        """Every zone and its records in the control route's shape (names without the
        trailing dot, TXT data unquoted as the zone file quotes it) (under self.lock)."""
        out = []
        for key, zone in sorted(self._store.dns_zones.items()):
            records = [{"name": r["name"].rstrip("."), "type": r["type"], "ttl": r["ttl"],
                        "values": [_unquote(v) if r["type"] == "TXT" else v for v in r["rrdatas"]]}
                       for _, r in sorted(self._store.dns_records.get(key, {}).items())]
            out.append({"zone": zone["dnsName"].rstrip("."), "records": records})
        return out


def _unquote(value: str) -> str:
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _page(request: Request, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    size = min(int(request.arg("maxResults") or MAX_PAGE), MAX_PAGE) or MAX_PAGE
    token = request.arg("pageToken")
    if token and not token.isdigit():
        raise ApiError(400, "invalid", f"Invalid value for pageToken: {token!r}")
    start = int(token) if token else 0
    following = str(start + size) if start + size < len(items) else None
    return items[start:start + size], following
