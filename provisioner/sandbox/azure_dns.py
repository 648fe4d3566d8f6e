"""The Azure emulator's public DNS (Microsoft.Network/dnszones, api-version 2018-05-01): zones
(PUT, GET, PATCH, list per group and per subscription, DELETE long-running and taking the
record sets with it; a new zone holds its `@` SOA and NS record sets) and record sets (PUT
with If-Match / If-None-Match, GET, PATCH, DELETE, list per type and all).

The DNS specification is not among /work/shared/specs, so bodies are checked against the
models of azure-mgmt-dns (the SDK generated from that specification): every property must be
one of the model's (nested ones too), of its type; a violation answers 400 and is kept in the
emulator's `errors`. Refused as Azure DNS refuses them: a location other than `global`, a
record type it does not have, an A record that is not an IPv4 address, record data of another
type than the path's, a record set or zone that does not exist (404), an If-Match that does
not match (412). `zones_view` is the sandbox control route `/_emulator/dns-zones`.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .azure_catalog import ArmError
from .emulator import Request, Response

ZONE_TYPE = "Microsoft.Network/dnszones"
TYPES = {"A": "ARecords", "AAAA": "AAAARecords", "CAA": "caaRecords", "CNAME": "CNAMERecord", "MX": "MXRecords",
         "NS": "NSRecords", "PTR": "PTRRecords", "SOA": "SOARecord", "SRV": "SRVRecords", "TXT": "TXTRecords"}
NAME_SERVERS = ["ns1-01.azure-dns.com.", "ns2-01.azure-dns.net.", "ns3-01.azure-dns.org.", "ns4-01.azure-dns.info."]
_BASE = r"/subscriptions/(?P<sub>[^/]+)(?:/resourcegroups/(?P<rg>[^/]+))?/providers/Microsoft\.Network/dnszones"
ROUTE = re.compile(_BASE + r"(?:/(?P<zone>[^/]+)(?:/(?P<rtype>[^/]+)(?:/(?P<name>[^/]+))?)?)?/?", re.IGNORECASE)


def matches(path: str) -> re.Match[str] | None:
    """The route match of a DNS path (None: not a DNS path)."""
    return ROUTE.fullmatch(path)


@dataclass
class DnsZoneState:
    zone: dict[str, Any]
    group: str  # lowercase
    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (name lower, TYPE) -> record set
    deleting: bool = False


class AzureDns:
    """The zones of one emulated subscription; `start` starts a long-running operation (the
    emulator's), `errors` collects model violations."""

    def __init__(self, start: Callable[[str, str, str, str, Callable[[], None]], str], errors: list[str],
                 retry_after: Callable[[], int]):
        self._start = start
        self._errors = errors
        self._retry_after = retry_after
        self.zones: dict[tuple[str, str], DnsZoneState] = {}  # (group lower, zone lower)

    def reset(self) -> None:
        self.zones.clear()

    # --- dispatch ----------------------------------------------------------------------

    def handle(self, request: Request, m: re.Match[str], group: dict[str, Any] | None) -> Response:
        """Serve one DNS request; `group` is the resource group's JSON (None for a
        subscription-wide list). Callers hold the emulator's lock and have checked the group.
        A 2xx body that does not fit its model is the emulator's own drift: kept in `errors`."""
        response = self._route(request, m, group)
        if response.status < 300 and isinstance(response.body, dict):
            model = "RecordSet" if m.group("rtype") else "Zone"
            items = response.body.get("value", [response.body])
            for item in items:
                self._errors.extend(f"response: {p}" for p in model_problems(model, item, "body"))
        return response

    def _route(self, request: Request, m: re.Match[str], group: dict[str, Any] | None) -> Response:
        sub, zone, rtype, name = m.group("sub"), m.group("zone"), m.group("rtype"), m.group("name")
        if zone is None:
            _only(request, "GET")
            found = [z for (g, _), z in sorted(self.zones.items()) if not z.deleting and (
                group is None or g == group["name"].lower())]
            return Response(200, {"value": [self._zone_view(z) for z in found]})
        if group is None:
            raise ArmError(404, "InvalidResourceType", f"No route for {request.method} {request.path}.")
        if rtype is None:
            return self._zone(request, sub, group, zone)
        state = self._find(group, zone)
        if name is None:
            _only(request, "GET")
            wanted = None if rtype.lower() in ("recordsets", "all") else self._type(rtype)
            records = [r for (_, t), r in sorted(state.records.items()) if wanted in (None, t)]
            return Response(200, {"value": records})
        return self._record(request, state, self._type(rtype), name)

    # --- zones -------------------------------------------------------------------------

    def _find(self, group: dict[str, Any], zone: str) -> DnsZoneState:
        state = self.zones.get((group["name"].lower(), zone.lower()))
        if state is None or state.deleting:
            raise ArmError(404, "ResourceNotFound", f"The Resource '{ZONE_TYPE}/{zone}' under resource group "
                                                    f"'{group['name']}' was not found.")
        return state

    def _zone(self, request: Request, sub: str, group: dict[str, Any], zone: str) -> Response:
        key = (group["name"].lower(), zone.lower())
        if request.method == "GET":
            return Response(200, self._zone_view(self._find(group, zone)))
        if request.method in ("PUT", "PATCH"):
            body = request.json() or {}
            self._check_model("Zone" if request.method == "PUT" else "ZoneUpdate", body, "body")
            existing = self.zones.get(key)
            if existing is not None and existing.deleting:
                raise ArmError(409, "Conflict", f"The zone '{zone}' is being deleted.")
            _preconditions(request, existing.zone if existing else None)
            if request.method == "PATCH":
                state = self._find(group, zone)
                state.zone["tags"] = body.get("tags", state.zone.get("tags", {}))
                state.zone["etag"] = str(uuid.uuid4())
                return Response(200, self._zone_view(state))
            location = str(body.get("location") or "")
            if location.lower() != "global":
                raise ArmError(400, "LocationNotAvailableForResourceType",
                               f"The provided location '{location}' is not available for resource type "
                               f"'{ZONE_TYPE}'. List of available regions for the resource type is 'global'.")
            if not re.fullmatch(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+", zone.lower()):
                raise ArmError(400, "BadRequest", f"The zone name '{zone}' is not a valid domain name.")
            if existing is not None:
                existing.zone["tags"] = body.get("tags", {})
                existing.zone["etag"] = str(uuid.uuid4())
                return Response(200, self._zone_view(existing))
            zid = f"/subscriptions/{sub}/resourceGroups/{group['name']}/providers/{ZONE_TYPE}/{zone.lower()}"
            state = DnsZoneState({"id": zid, "name": zone.lower(), "type": ZONE_TYPE, "location": "global",
                                  "tags": body.get("tags", {}), "etag": str(uuid.uuid4())}, key[0])
            self.zones[key] = state
            soa = {"host": NAME_SERVERS[0], "email": "azuredns-hostmaster.microsoft.com", "serialNumber": 1,
                   "refreshTime": 3600, "retryTime": 300, "expireTime": 2419200, "minimumTTL": 300}
            self._store(state, "SOA", "@", {"TTL": 3600, "SOARecord": soa})
            self._store(state, "NS", "@", {"TTL": 172800, "NSRecords": [{"nsdname": n} for n in NAME_SERVERS]})
            return Response(201, self._zone_view(state))
        _only(request, "DELETE")
        doomed = self.zones.get(key)
        if doomed is None:
            return Response(204)
        doomed.deleting = True

        def gone() -> None:
            self.zones.pop(key, None)

        url = self._start(sub, "Microsoft.Network", "global", "operations", gone)
        return Response(202, None, {"Azure-AsyncOperation": url, "Retry-After": str(self._retry_after()),
                                    "Location": url.replace("/operations/", "/operationresults/", 1)})

    def _zone_view(self, state: DnsZoneState) -> dict[str, Any]:
        return {**state.zone, "properties": {
            "maxNumberOfRecordSets": 10000, "maxNumberOfRecordsPerRecordSet": 20,
            "numberOfRecordSets": len(state.records), "nameServers": list(NAME_SERVERS), "zoneType": "Public"}}

    # --- record sets -------------------------------------------------------------------

    @staticmethod
    def _type(rtype: str) -> str:
        wanted = rtype.upper()
        if wanted not in TYPES:
            raise ArmError(400, "BadRequest", f"The record type '{rtype}' is not supported. Supported types: "
                                              f"{', '.join(TYPES)}.")
        return wanted

    def _record(self, request: Request, state: DnsZoneState, rtype: str, name: str) -> Response:
        key = (name.lower(), rtype)
        existing = state.records.get(key)
        if request.method == "GET":
            if existing is None:
                raise _record_missing(name, state)
            return Response(200, existing)
        if request.method == "DELETE":
            _preconditions(request, existing)
            if existing is None:
                return Response(204)
            if name == "@" and rtype in ("SOA", "NS"):
                raise ArmError(400, "BadRequest", f"The {rtype} record set at the zone apex cannot be deleted.")
            del state.records[key]
            return Response(200)
        if request.method not in ("PUT", "PATCH"):
            raise ArmError(405, "MethodNotAllowed", f"The requested method {request.method} is not allowed here.")
        body = request.json() or {}
        self._check_model("RecordSet", body, "body")
        _preconditions(request, existing)
        if request.method == "PATCH" and existing is None:
            raise _record_missing(name, state)
        props = {**(existing or {}).get("properties", {}), **(body.get("properties") or {})} \
            if request.method == "PATCH" else dict(body.get("properties") or {})
        for other, field_name in TYPES.items():
            if other != rtype and props.get(field_name):
                raise ArmError(400, "BadRequest", f"The record set of type {rtype} cannot hold {field_name}.")
        if rtype == "A":
            for record in props.get("ARecords") or []:
                try:
                    ipaddress.IPv4Address(record.get("ipv4Address"))
                except ValueError:
                    raise ArmError(400, "BadRequest", f"The IPv4 address '{record.get('ipv4Address')}' is "
                                                      "invalid.") from None
        if rtype == "TXT" and any(not isinstance(r.get("value"), list) for r in props.get("TXTRecords") or []):
            raise ArmError(400, "BadRequest", "A TXT record's value is a list of strings.")
        created = existing is None
        stored = self._store(state, rtype, name, {k: v for k, v in props.items() if k not in (
            "fqdn", "provisioningState")}, metadata=body.get("properties", {}).get("metadata"))
        return Response(201 if created else 200, stored)

    def _store(self, state: DnsZoneState, rtype: str, name: str, props: dict[str, Any],
               metadata: dict[str, str] | None = None) -> dict[str, Any]:
        fqdn = f"{state.zone['name']}." if name == "@" else f"{name.lower()}.{state.zone['name']}."
        record = {"id": f"{state.zone['id']}/{rtype}/{name}", "name": name, "type": f"{ZONE_TYPE}/{rtype}",
                  "etag": str(uuid.uuid4()),
                  "properties": {**({"metadata": metadata} if metadata else {}), "TTL": int(props.get("TTL") or 3600),
                                 **{k: v for k, v in props.items() if k not in ("TTL", "metadata")},
                                 "fqdn": fqdn, "provisioningState": "Succeeded"}}
        state.records[(name.lower(), rtype)] = record
        return record

    # --- the model check ---------------------------------------------------------------

    def _check_model(self, model: str, body: Any, where: str) -> None:
        problems = model_problems(model, body, where)
        if problems:
            self._errors.extend(problems)
            raise ArmError(400, "InvalidRequestContent", "; ".join(problems))

    # --- the sandbox's view ------------------------------------------------------------

    def zones_view(self) -> list[dict[str, Any]]:
        """Every zone and its A and TXT records (and the others) in the control route's shape."""
        out = []
        for _, state in sorted(self.zones.items()):
            if state.deleting:
                continue
            records = []
            for (_, rtype), record in sorted(state.records.items()):
                props = record["properties"]
                records.append({"name": props["fqdn"].rstrip("."), "type": rtype, "ttl": props["TTL"],
                                "values": _values(rtype, props)})
            out.append({"zone": state.zone["name"], "records": records})
        return out


def _values(rtype: str, props: dict[str, Any]) -> list[str]:
    if rtype == "A":
        return [r["ipv4Address"] for r in props.get("ARecords", [])]
    if rtype == "TXT":
        return ["".join(r.get("value", [])) for r in props.get("TXTRecords", [])]
    if rtype == "NS":
        return [r["nsdname"] for r in props.get("NSRecords", [])]
    found = props.get(TYPES[rtype])
    return [str(found)] if found else []


def _record_missing(name: str, state: DnsZoneState) -> ArmError:
    return ArmError(404, "NotFound", f"The resource record '{name}' does not exist in resource group "
                                     f"'{state.group}' of subscription '{state.zone['id'].split('/')[2]}'.")


def _preconditions(request: Request, existing: dict[str, Any] | None) -> None:
    """If-Match (the etag, or `*`: must exist) and If-None-Match `*` (must not exist): 412."""
    if_match = request.headers.get("if-match")
    if if_match and (existing is None or if_match.strip('"') not in ("*", existing.get("etag"))):
        raise ArmError(412, "PreconditionFailed", "The condition 'If-Match' was not met.")
    if request.headers.get("if-none-match") == "*" and existing is not None:
        raise ArmError(412, "PreconditionFailed", "The condition 'If-None-Match' was not met: the resource exists.")


def _only(request: Request, method: str) -> None:
    if request.method != method:
        raise ArmError(405, "MethodNotAllowed", f"The requested method {request.method} is not allowed here.")


def model_problems(model: str, value: Any, where: str) -> list[str]:
    """Every property of `value` that azure-mgmt-dns's model `model` does not have or types
    otherwise (the models' flattened `properties.x` keys read as nested objects)."""
    from azure.mgmt.dns import models

    cls = getattr(models, model, None)
    if cls is None:
        return []
    if not isinstance(value, dict):
        return [f"{where}: expected an object, got {type(value).__name__}"]
    tree: dict[str, Any] = {}
    for spec in cls._attribute_map.values():
        node = tree
        parts = re.split(r"(?<!\\)\.", spec["key"])
        for part in parts[:-1]:
            node = node.setdefault(part.replace("\\.", "."), {})
        node[parts[-1].replace("\\.", ".")] = spec["type"]
    return _against(tree, value, where)


def _against(tree: dict[str, Any], value: dict[str, Any], where: str) -> list[str]:
    problems = []
    for key, item in value.items():
        if item is None:
            continue
        if key not in tree:
            problems.append(f"{where}: unknown property {key!r}")
        elif isinstance(tree[key], dict):
            if not isinstance(item, dict):
                problems.append(f"{where}.{key}: expected an object")
            else:
                problems += _against(tree[key], item, f"{where}.{key}")
        else:
            problems += _typed(tree[key], item, f"{where}.{key}")
    return problems


def _typed(kind: str, item: Any, where: str) -> list[str]:
    if kind.startswith("["):
        if not isinstance(item, list):
            return [f"{where}: expected an array"]
        return [p for i, sub in enumerate(item) for p in _typed(kind[1:-1], sub, f"{where}[{i}]")]
    if kind.startswith("{"):
        if not isinstance(item, dict):
            return [f"{where}: expected an object"]
        return [p for k, sub in item.items() for p in _typed(kind[1:-1], sub, f"{where}.{k}")]
    scalars: dict[str, type | tuple[type, ...]] = {"str": str, "int": int, "long": int, "bool": bool,
                                                   "float": (int, float)}
    scalar = scalars.get(kind)
    if scalar is not None:
        ok = isinstance(item, scalar) and not (kind != "bool" and isinstance(item, bool))
        return [] if ok else [f"{where}: expected {kind}, got {type(item).__name__}"]
    return model_problems(kind, item, where)
