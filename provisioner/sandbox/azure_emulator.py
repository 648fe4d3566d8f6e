"""An Azure Resource Manager emulator on loopback, for cast's tests and sandbox, and for any
ARM client (the SDKs, plain REST clients following ARM's async-operation protocol).

It serves resource groups, the resources list, virtual networks and subnets, network security
groups, public IPs, network interfaces, virtual machines (with their instance view and power
actions) and their managed OS disks, and the lookups clients make first (locations, providers,
VM sizes per location, from azure_catalog). It behaves as ARM does where clients notice: a
bearer token required (azure_auth), paths matched case-insensitively, api-version required,
unknown locations, VM sizes and images refused with ARM's codes, long-running operations
(azure_operations) answered with `Azure-AsyncOperation` (PUTs, deletes, actions) or `Location`
(deletes, actions, resource group delete) and a short `Retry-After`, ARM's error bodies, faults
on demand (base class). Every request is checked against the Azure REST API specifications
(azure_specs); each violation answers 400 and is kept in `errors`. GET shapes: azure_views.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from . import azure_balancing, azure_dns
from . import azure_catalog as catalog
from .azure_auth import unauthenticated
from .azure_operations import LongRunning
from .azure_specs import SpecIndex, default_specs_dir, specs_missing_reason
from .azure_state import NIC, SUBNET, TOP_LEVEL, VM, VNET, ArmError, AzureState, Resource
from .emulator import EmulatedVm, EmulatorServer, Request, Response
from .pools import DEFAULT_POOLS

PUBLIC_POOL = DEFAULT_POOLS["azure"]
_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourcegroups/(?P<rg>[^/]+)"
_ROUTES = [
    (name, re.compile(pattern + r"/?", re.IGNORECASE))  # fullmatch
    for name, pattern in (
        ("operation", _SUB + r"/providers/(?P<ns>[^/]+)/locations/(?P<loc>[^/]+)"
                             r"/(?P<kind>operations|operationresults)/(?P<op>[^/]+)"),
        ("locations", _SUB + r"/locations"),
        ("providers", _SUB + r"/providers"),
        ("provider", _SUB + r"/providers/(?P<ns>[^/]+)"),
        ("vm_sizes", _SUB + r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/vmSizes"),
        ("groups", _SUB + r"/resourcegroups"),
        ("group", _RG),
        ("group_resources", _RG + r"/resources"),
        ("sub_resources", _SUB + r"/resources"),
        ("subnets", _RG + r"/providers/Microsoft\.Network/virtualNetworks/(?P<parent>[^/]+)/subnets"),
        ("subnet", _RG + r"/providers/Microsoft\.Network/virtualNetworks/(?P<parent>[^/]+)/subnets/(?P<name>[^/]+)"),
        ("vm_action", _RG + r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)"
                            r"/(?P<action>instanceView|start|powerOff|deallocate|restart)"),
        ("list", _RG + r"/providers/(?P<type>[^/]+/[^/]+)"),
        ("item", _RG + r"/providers/(?P<type>[^/]+/[^/]+)/(?P<name>[^/]+)"),
        ("list_all", _SUB + r"/providers/(?P<type>[^/]+/[^/]+)"),
    )
]
_TAG_FILTER = re.compile(r"\s*tagName\s+eq\s+'([^']*)'(?:\s+and\s+tagValue\s+eq\s+'([^']*)')?\s*", re.IGNORECASE)
_TYPE_FILTER = re.compile(r"\s*resourceType\s+eq\s+'([^']*)'\s*", re.IGNORECASE)

# The methods each route answers (others: 405).
_METHODS = {"operation": {"GET"}, "locations": {"GET"}, "providers": {"GET"}, "provider": {"GET"},
            "vm_sizes": {"GET"}, "groups": {"GET"}, "group": {"GET", "PUT", "HEAD", "DELETE"},
            "group_resources": {"GET"}, "sub_resources": {"GET"}, "subnets": {"GET"},
            "subnet": {"GET", "PUT", "DELETE"}, "vm_action": {"GET", "POST"}, "list": {"GET"},
            "item": {"GET", "PUT", "DELETE"}, "list_all": {"GET"}}
_NAMED = {"subscriptions": "sub", "resourcegroups": "group", "virtualnetworks": "name", "subnets": "name",
          "networksecuritygroups": "name", "publicipaddresses": "name", "networkinterfaces": "name",
          "virtualmachines": "name", "loadbalancers": "name",
          "dnszones": "zone", "locations": "location", "operations": "id", "operationresults": "id"}


class AzureEmulator(LongRunning, EmulatorServer):
    """The emulator. `op_seconds`: how long a long-running operation works; `lro_polls`: how
    many polls it answers InProgress at least; `retry_after`: the least Retry-After (s) sent
    with operations (see azure_operations); `throttle_retry_after`: the one
    sent with a 429; `page_size`: list page size (nextLink beyond it); `vm_quota`: how many VMs
    the subscription may hold (None: no limit). `specs_dir`: the specifications (None: the
    default folder); when it is absent the check is off and `spec_check_off` says why.
    An operation nobody polls for `abandoned_after_s` completes by itself, as on ARM, so a
    client that crashed mid-create finds its resources done when it comes back.
    `token`, when given, is the only bearer token accepted (otherwise any non-empty one is)."""

    cloud = "azure"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, lro_polls: int = 2,
                 retry_after: int = 0, op_seconds: float = 0.0, throttle_retry_after: int = 1, page_size: int = 50,
                 vm_quota: int | None = None, specs_dir: Path | None = None, abandoned_after_s: float = 20.0,
                 public_pool: str = PUBLIC_POOL, token: str | None = None):
        super().__init__(host, port)
        self.token = token
        self.lro_polls = lro_polls
        self.retry_after = retry_after
        self.op_seconds = op_seconds
        self.op_by_namespace: dict[str, float] = {}
        self.throttle_retry_after = throttle_retry_after
        self.page_size = page_size
        self.vm_quota = vm_quota
        self.abandoned_after_s = abandoned_after_s
        self.public_pool = public_pool
        self.state = AzureState(public_pool)
        self.errors: list[str] = []
        self._init_operations()
        self._group_deletes: dict[str, str] = {}  # group -> its delete operation's Location
        self.dns = azure_dns.AzureDns(self._start, self.errors, lambda: self.retry_after)
        root = specs_dir or default_specs_dir()
        self.spec_check_off = specs_missing_reason(root)
        self.specs = None if self.spec_check_off else SpecIndex(root)

    # --- EmulatorServer hooks --------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        self.state.reset()
        self.errors.clear()
        self._ops.clear()
        self._group_deletes.clear()
        self.dns.reset()

    def fault_kinds_for(self, request: Request) -> tuple[str, ...]:
        if request.method == "PUT" and "/microsoft.compute/virtualmachines/" in request.path.lower():
            return ("throttle", "unavailable", "quota")
        return ("throttle", "unavailable")

    def fault_response(self, kind: str, request: Request) -> Response:
        if kind == "throttle":
            return _error(429, "TooManyRequests", "The request is being throttled.",
                          {"Retry-After": str(self.throttle_retry_after)})
        if kind == "unavailable":
            return _error(503, "ServiceUnavailable", "The service is temporarily unavailable.",
                          {"Retry-After": str(self.throttle_retry_after)})
        return self._quota_error(request)

    def running_vms(self) -> list[EmulatedVm]:
        """VMs whose create has finished and that are not stopped, with addresses, decoded
        customData and SSH keys."""
        with self.lock:
            self._finish_abandoned()  # operations whose work is over, though no request came since
            out = []
            for res in self.state.resources.values():
                if res.type != VM or res.state != "Succeeded" or res.power != "running":
                    continue
                public, private = self.state.addresses_of_vm(res)
                out.append(EmulatedVm(id=res.props["vmId"], name=res.name, public_ip=public, private_ip=private,
                                      user_data=res.user_data, ssh_keys=list(res.ssh_keys),
                                      created_at=res.created_at))
            return out

    def _control(self, request: Request) -> Response:
        """The base's control routes, and what the sandbox serves for real: the load balancers
        (azure_balancing) and the DNS zones (azure_dns)."""
        what = request.path.removeprefix("/_emulator/").strip("/")
        if request.method == "GET" and what == "load-balancers":
            with self.lock:
                return Response(200, azure_balancing.load_balancers(self.state))
        if request.method == "GET" and what == "dns-zones":
            with self.lock:
                return Response(200, self.dns.zones_view())
        return super()._control(request)

    def route_of(self, request: Request) -> str:
        """The method and the path with subscription, group, names and operation ids folded."""
        parts = request.path.strip("/").split("/")
        for i in range(1, len(parts)):
            if parts[i - 1].lower() in _NAMED:
                parts[i] = "{" + _NAMED[parts[i - 1].lower()] + "}"
        return f"{request.method} /{'/'.join(parts)}"

    @staticmethod
    def serves(method: str, path: str) -> bool:
        """Whether the emulator implements this method on this path (a path with names filled in)."""
        route, m = next(((n, m) for n, p in _ROUTES if (m := p.fullmatch(path))), (None, None))
        if route is None or m is None or method.upper() not in _METHODS[route]:
            return False
        if route == "vm_action":
            return (method.upper() == "GET") == (m.group("action").lower() == "instanceview")
        return route not in ("list", "item", "list_all") or m.group("type").lower() in TOP_LEVEL

    # --- requests --------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Serve one ARM request: credentials, api-version, the specification check, then the route."""
        refused = unauthenticated(request, self.token)
        if refused is not None:
            return refused
        dns = azure_dns.matches(request.path)
        route, m = next(((n, m) for n, p in _ROUTES if (m := p.fullmatch(request.path))), (None, None))
        if (route is None or m is None) and dns is None:
            return _error(404, "InvalidResourceType", f"No route for {request.method} {request.path}.")
        if "api-version" not in request.query:
            with self.lock:
                self.errors.append(f"{request.method} {request.path}: the api-version query parameter is missing")
            return _error(400, "MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
        if dns is not None:  # checked against azure-mgmt-dns's models there (no DNS spec in the folder)
            try:
                with self.lock:
                    group = self.state.live_group(dns.group("sub"), dns.group("rg")) if dns.group("rg") else None
                    return self.dns.handle(request, dns, group)
            except ArmError as exc:
                return _error(exc.status, exc.code, exc.message, target=exc.target)
        assert route is not None and m is not None
        if route != "operation" and not self._unspecified(route, request):
            problem = self._spec_problem(request)
            if problem:
                return problem
        try:
            with self.lock:
                self._finish_abandoned(m.group("op") if route == "operation" else None)
                return getattr(self, f"_{route}")(request, **m.groupdict())
        except ArmError as exc:
            return _error(exc.status, exc.code, exc.message, target=exc.target)

    def _unspecified(self, route: str, request: Request) -> bool:
        """Locations and disks are served even when their specifications (subscriptions.json,
        DiskRP.json: optional, see azure_specs) are not in the folder; unchecked then."""
        served = route == "locations" or "/microsoft.compute/disks" in request.path.lower()
        return served and self.specs is not None and not self.specs.covers(request.method, request.path)

    def _spec_problem(self, request: Request) -> Response | None:
        if self.specs is None:
            return None
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        try:
            body = request.json() if request.body else None
        except ValueError:
            body = "<not JSON>"
        problems = self.specs.check(request.method, request.path, query, body)
        if not problems:
            return None
        with self.lock:
            self.errors.extend(problems)
        return _error(400, "InvalidRequestContent", "; ".join(problems))

    # catalog lookups (azure_catalog)

    def _locations(self, request: Request, sub: str) -> Response:
        _only(request, "GET")
        return Response(200, catalog.locations_body(sub))

    def _providers(self, request: Request, sub: str) -> Response:
        _only(request, "GET")
        return Response(200, {"value": [catalog.provider_body(sub, ns) for ns in catalog.PROVIDERS]})

    def _provider(self, request: Request, sub: str, ns: str) -> Response:
        _only(request, "GET")
        return Response(200, catalog.provider_body(sub, ns))

    def _vm_sizes(self, request: Request, sub: str, loc: str) -> Response:
        _only(request, "GET")
        catalog.check_lookup_location(loc, "Microsoft.Compute/locations/vmSizes", request.arg("api-version") or "")
        return Response(200, catalog.vm_sizes_body())

    # resource groups

    def _groups(self, request: Request, sub: str) -> Response:
        _only(request, "GET")
        tag = _tag_filter(request.arg("$filter"))
        groups = [g for g in self.state.groups.values() if tag is None or _has_tag(g.get("tags"), tag)]
        return self._page(request, groups)

    def _group(self, request: Request, sub: str, rg: str) -> Response:
        if request.method == "PUT":
            group, created = self.state.put_group(sub, rg, request.json())
            return Response(201 if created else 200, group)
        group = self.state.group(sub, rg)
        if request.method == "HEAD":
            return Response(204)
        if request.method == "GET":
            return Response(200, group)
        _only(request, "DELETE")
        if group["properties"]["provisioningState"] != "Deleting":
            group["properties"]["provisioningState"] = "Deleting"
            for res in self.state.in_group(rg):
                res.state = "Deleting"
            self._group_deletes[rg.lower()] = self._start(
                sub, "Microsoft.Resources", group["location"], "operationresults", lambda: self.state.drop_group(rg))
        location = self._group_deletes[rg.lower()]
        return Response(202, None, {"Location": location, "Retry-After": self._hint(location)})

    def _group_resources(self, request: Request, sub: str, rg: str) -> Response:
        _only(request, "GET")
        self.state.group(sub, rg)
        return self._resource_list(request, self.state.in_group(rg))

    def _sub_resources(self, request: Request, sub: str) -> Response:
        _only(request, "GET")
        return self._resource_list(request, list(self.state.resources.values()))

    def _resource_list(self, request: Request, resources: list[Resource]) -> Response:
        flt = request.arg("$filter")
        type_match = _TYPE_FILTER.fullmatch(flt or "")
        tag = None if type_match else _tag_filter(flt)
        chosen = [r for r in resources if r.type != SUBNET
                  and (not type_match or r.type.lower() == type_match.group(1).lower())
                  and (tag is None or _has_tag(r.body.get("tags"), tag))]
        expand = {e.strip().lower() for e in (request.arg("$expand") or "").split(",") if e.strip()}
        return self._page(request, [self.state.summary(r, expand) for r in chosen])

    # network and compute resources

    def _list(self, request: Request, sub: str, rg: str, type: str) -> Response:
        _only(request, "GET")
        rtype = _known_type(type)
        self.state.group(sub, rg)
        expand = (request.arg("$expand") or "").lower() == "instanceview"
        items = [self.state.render(r, instance_view=expand) for r in self.state.in_group(rg) if r.type == rtype]
        return self._page(request, items)

    def _list_all(self, request: Request, sub: str, type: str) -> Response:
        _only(request, "GET")
        rtype = _known_type(type)
        items = [self.state.render(r) for r in self.state.resources.values() if r.type == rtype]
        return self._page(request, items)

    def _item(self, request: Request, sub: str, rg: str, type: str, name: str) -> Response:
        rtype = _known_type(type)
        group = self.state.group(sub, rg)
        rid = f"/subscriptions/{sub}/resourceGroups/{group['name']}/providers/{rtype}/{name}"
        return self._serve(request, sub, rg, rtype, rid, name, group["location"])

    def _subnets(self, request: Request, sub: str, rg: str, parent: str) -> Response:
        _only(request, "GET")
        vnet = self.state.get(f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{VNET}/{parent}")
        return self._page(request, self.state.render(vnet)["properties"]["subnets"])

    def _subnet(self, request: Request, sub: str, rg: str, parent: str, name: str) -> Response:
        group = self.state.group(sub, rg)
        vnet = self.state.get(f"/subscriptions/{sub}/resourceGroups/{group['name']}/providers/{VNET}/{parent}")
        return self._serve(request, sub, rg, SUBNET, f"{vnet.id}/subnets/{name}", name, group["location"])

    def _serve(self, request: Request, sub: str, rg: str, rtype: str, rid: str, name: str, location: str) -> Response:
        """GET, PUT or DELETE of one resource (PUT and DELETE are long-running)."""
        expand = (request.arg("$expand") or "").lower() == "instanceview"
        if request.method == "GET":
            return Response(200, self.state.render(self.state.get(rid), instance_view=expand))
        if request.method == "PUT":
            body = request.json() or {}
            if rtype == VM:
                self._check_quota(request, body)
            res, created = self.state.put(sub, rg, rtype, rid, name, body)
            key = res.key
            url = self._start(sub, rtype.split("/")[0], location, "operations", lambda: self._succeeded(key))
            return Response(201 if created else 200, self.state.render(res), self._lro_headers(url))
        _only(request, "DELETE")
        self.state.live_group(sub, rg)
        gone = self.state.resources.get(rid.lower())
        if gone is None:
            return Response(204)
        self.state.check_delete(gone)
        gone.state = "Deleting"
        url = self._start(sub, rtype.split("/")[0], location, "operations", lambda: self.state.remove(gone))
        headers = self._lro_headers(url)
        headers["Location"] = url.replace("/operations/", "/operationresults/", 1)
        return Response(202, None, headers)

    def _succeeded(self, key: str) -> None:
        res = self.state.resources.get(key)
        if res is not None and res.state in ("Creating", "Updating"):
            res.state = "Succeeded"
            res.state_since = time.time()

    def _vm_action(self, request: Request, sub: str, rg: str, name: str, action: str) -> Response:
        """GET instanceView; POST start, powerOff, deallocate, restart (long-running, 202 with
        Azure-AsyncOperation and Location, the power state changing when the operation ends)."""
        group = self.state.group(sub, rg)
        vm = self.state.get(f"/subscriptions/{sub}/resourceGroups/{group['name']}/providers/{VM}/{name}")
        if action.lower() == "instanceview":
            _only(request, "GET")
            return Response(200, self.state.vm_instance_view(vm))
        _only(request, "POST")
        power = {"start": "running", "restart": "running", "poweroff": "stopped", "deallocate": "deallocated"}
        target = power[action.lower()]

        def finish() -> None:
            vm.power = target

        url = self._start(sub, "Microsoft.Compute", group["location"], "operations", finish)
        headers = self._lro_headers(url)
        headers["Location"] = url.replace("/operations/", "/operationresults/", 1)
        return Response(202, None, headers)

    # quota

    def _check_quota(self, request: Request, body: dict[str, Any]) -> None:
        vms = [r for r in self.state.resources.values() if r.type == VM]
        exists = request.path.lower().rstrip("/") in self.state.resources
        if self.vm_quota is not None and not exists and len(vms) >= self.vm_quota:
            raise ArmError(409, "OperationNotAllowed", self._quota_message(body))

    def _quota_error(self, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            body = {}
        message = self._quota_message(body)
        return Response(409, {"error": {"code": "OperationNotAllowed", "message": message,
                                        "details": [{"code": "QuotaExceeded", "message": message}]}})

    def _quota_message(self, body: dict[str, Any]) -> str:
        size = body.get("properties", {}).get("hardwareProfile", {}).get("vmSize", "?")
        return (f"Operation could not be completed as it results in exceeding approved {size} Family Cores "
                f"quota. Additional details - Deployment Model: Resource Manager, Location: "
                f"{body.get('location', '?')}, Current Limit: {self.vm_quota or 0}.")

    # lists

    def _page(self, request: Request, items: list[Any]) -> Response:
        top = request.arg("$top")
        size = min(self.page_size, int(top)) if top and top.isdigit() and int(top) > 0 else self.page_size
        start = int(request.arg("$skiptoken") or 0)
        body: dict[str, Any] = {"value": items[start:start + size]}
        if start + size < len(items):
            query = {k: v[0] for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + size)
            body["nextLink"] = f"{self.url}{request.path}?{urlencode(query)}"
        return Response(200, body)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
           target: str | None = None) -> Response:
    error = {"code": code, "message": message}
    if target:
        error["target"] = target
    return Response(status, {"error": error}, headers or {})


def _only(request: Request, method: str) -> None:
    if request.method != method:
        raise ArmError(405, "MethodNotAllowed", f"The requested method {request.method} is not allowed here.")


def _known_type(type_: str) -> str:
    rtype = TOP_LEVEL.get(type_.lower())
    if rtype is None:
        raise ArmError(404, "InvalidResourceType", f"The resource type '{type_}' could not be found.")
    return rtype


def _tag_filter(flt: str | None) -> tuple[str, str | None] | None:
    if not flt:
        return None
    m = _TAG_FILTER.fullmatch(flt)
    if not m:
        raise ArmError(400, "InvalidFilterInQueryString", f"Invalid $filter '{flt}'.")
    return m.group(1), m.group(2)


def _has_tag(tags: dict[str, str] | None, want: tuple[str, str | None]) -> bool:
    name, value = want
    return any(k.lower() == name.lower() and (value is None or v == value) for k, v in (tags or {}).items())


__all__ = ["AzureEmulator", "NIC", "PUBLIC_POOL"]
