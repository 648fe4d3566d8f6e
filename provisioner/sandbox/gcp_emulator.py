"""An emulator of the compute v1 REST API, for what cast uses: networks, subnetworks,
firewalls, instances (insert, get, list, aggregatedList, delete) and global, regional and
zonal operations (get, wait).

It behaves like the real API where cast depends on it:
- mutations return an operation that is RUNNING and turns DONE `op_delay` seconds later
  (a random value in the range), so clients really poll; `wait` blocks until DONE or
  `wait_max` seconds; instances go PROVISIONING -> STAGING -> RUNNING;
- 409 alreadyExists, 404 notFound, 400 invalid (RFC 1035 names, CIDRs, labels), 400
  resourceInUseByAnotherResource on deleting a network or subnetwork still in use;
- `requestId` makes a retried mutation return the first operation;
- paging with `maxResults`/`pageToken`; list `filter` with `=`, `!=`, `:`, `eq`, `ne`;
- external IPs from 198.51.100.0/24, internal ones in order from the subnetwork;
- faults (base class): throttle -> 429 rateLimitExceeded, unavailable -> 503 backendError,
  quota (instance insert only) -> an operation that ends with QUOTA_EXCEEDED (as GCP reports
  it), or with `quota_style="http"` a 403 quotaExceeded.
Every request is first checked against the compute v1 discovery document (gcp_discovery);
one the real API would not accept gets 400 and is appended to `violations`, which tests
assert empty. `GET /_emulator/violations` lists them; `DELETE` clears them (reset does not).
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import gcp_discovery
from .emulator import AddressPool, EmulatedVm, EmulatorServer, Request, Response

PUBLIC_POOL = "198.51.100.0/24"
LINK_BASE = "https://www.googleapis.com/compute/v1/"
NAME_RE = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
LABEL_KEY_RE = re.compile(r"[a-z][-_a-z0-9]{0,62}")
LABEL_VALUE_RE = re.compile(r"[-_a-z0-9]{0,63}")
KNOWN_IMAGES = {
    "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64",
    "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts",
    "projects/debian-cloud/global/images/family/debian-12",
}
MAX_PAGE = 500


class ApiError(Exception):
    """An error reply in the compute API's own format."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    def response(self) -> Response:
        return _error(self.status, self.reason, self.message)


def _error(status: int, reason: str, message: str) -> Response:
    return Response(
        status,
        {"error": {"code": status, "message": message,
                   "errors": [{"message": message, "domain": "global", "reason": reason}]}},
    )


def _link(path: str) -> str:
    return LINK_BASE + path


def _rel(ref: str) -> str:
    """A resource reference as `projects/...`, whatever form the client sent."""
    ref = ref.removeprefix(LINK_BASE).removeprefix("https://compute.googleapis.com/compute/v1/")
    return ref.lstrip("/")


def _region_of_zone(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


@dataclass
class _Op:
    body: dict[str, Any]
    done_at: float
    on_done: Callable[[], None] | None = None
    error: dict[str, Any] | None = None  # (code, message, http status) of a failed operation


@dataclass
class _Instance:
    body: dict[str, Any]
    staging_at: float
    running_at: float
    deleting: bool = False
    created_at: float = field(default_factory=time.time)  # unix time of the insert


@dataclass
class _Store:
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # key: relative link
    subnetworks: dict[str, dict[str, Any]] = field(default_factory=dict)
    firewalls: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: dict[str, _Instance] = field(default_factory=dict)
    operations: dict[str, _Op] = field(default_factory=dict)  # key: relative link
    pending: list[_Op] = field(default_factory=list)  # operations not DONE yet
    request_ids: dict[str, str] = field(default_factory=dict)  # requestId -> operation link
    private_pools: dict[str, AddressPool] = field(default_factory=dict)


class GcpEmulator(EmulatorServer):
    """The compute v1 emulator. `op_delay` and `boot_delay` are (min, max) seconds."""

    cloud = "gcp"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 op_delay: tuple[float, float] = (0.05, 0.2), boot_delay: float = 0.1,
                 wait_max: float = 2.0, quota_style: str = "operation", seed: int = 11):
        super().__init__(host, port)
        self.op_delay = op_delay
        self.boot_delay = boot_delay
        self.wait_max = wait_max
        self.quota_style = quota_style
        self.violations: list[str] = []
        self.discovery = gcp_discovery.load()
        self._random = random.Random(seed)
        self._ids = itertools.count(1000001)
        self._store = _Store()
        self._public = AddressPool(PUBLIC_POOL)

    # --- base-class hooks --------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        self._store = _Store()
        self._public = AddressPool(PUBLIC_POOL)

    def route_of(self, request: Request) -> str:
        found = self.discovery.match(request.method, request.path)
        return found.method.id if found else f"{request.method} {request.path}"

    def fault_kinds_for(self, request: Request) -> tuple[str, ...]:
        if self._is_instance_insert(request):
            return ("throttle", "unavailable", "quota")
        return ("throttle", "unavailable")

    def fault_response(self, kind: str, request: Request) -> Response:
        rejected = self._check(request)
        if rejected:
            return rejected
        if kind == "throttle":
            return _error(429, "rateLimitExceeded", "Rate Limit Exceeded")
        if kind == "unavailable":
            return _error(503, "backendError", "The service is currently unavailable.")
        zone = request.path.split("/zones/")[1].split("/")[0]
        message = f"Quota 'CPUS' exceeded.  Limit: 8.0 in region {_region_of_zone(zone)}."
        if self.quota_style == "http":
            return _error(403, "quotaExceeded", message)
        project = request.path.split("/projects/")[1].split("/")[0]
        name = (request.json() or {}).get("name", "")
        with self.lock:
            op = self._operation(project, "zones", zone, "insert",
                                 f"projects/{project}/zones/{zone}/instances/{name}", None,
                                 request.arg("requestId"))
            op.error = {"code": "QUOTA_EXCEEDED", "message": message, "status": 403}
            return Response(200, self._render_op(op))

    def handle(self, request: Request) -> Response:
        rejected = self._check(request)
        if rejected:
            return rejected
        found = self.discovery.match(request.method, request.path)
        assert found is not None  # _check passed
        handler = self._handlers().get(found.method.id)
        if handler is None:
            return _error(501, "notImplemented", f"the emulator does not implement {found.method.id}")
        if found.method.id.endswith("Operations.wait"):
            return self._wait(request, found.params)
        try:
            with self.lock:
                self._tick()
                return handler(request, found.params)
        except ApiError as exc:
            return exc.response()

    def _control(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/_emulator/violations":
            with self.lock:
                if request.method == "DELETE":
                    self.violations.clear()
                    return Response(204)
                return Response(200, list(self.violations))
        return super()._control(request)

    def running_vms(self) -> list[EmulatedVm]:
        """RUNNING instances; `ssh_keys` are the keys of the `ssh-keys` metadata without the
        `user:` prefix, `user_data` the `user-data` metadata as sent."""
        with self.lock:
            self._tick()
            vms = []
            for inst in self._store.instances.values():
                body = self._render_instance(inst)
                if body["status"] != "RUNNING":
                    continue
                meta = {i["key"]: i.get("value", "") for i in body.get("metadata", {}).get("items", [])}
                nic = body["networkInterfaces"][0]
                access = nic.get("accessConfigs") or [{}]
                keys = [line.split(":", 1)[-1] for line in meta.get("ssh-keys", "").splitlines() if line]
                vms.append(EmulatedVm(id=body["id"], name=body["name"], public_ip=access[0].get("natIP"),
                                      private_ip=nic.get("networkIP"), user_data=meta.get("user-data", ""),
                                      ssh_keys=keys, state="running", created_at=inst.created_at))
            return vms

    # --- checking ----------------------------------------------------------------------

    def _check(self, request: Request) -> Response | None:
        problems = self.discovery.check(request.method, request.path, request.query, request.body)
        if not problems:
            return None
        with self.lock:
            self.violations.extend(problems)
        return _error(400, "invalid", "Invalid request (compute v1 discovery document): " + "; ".join(problems))

    @staticmethod
    def _is_instance_insert(request: Request) -> bool:
        return request.method == "POST" and bool(re.fullmatch(r".*/zones/[^/]+/instances", request.path))

    # --- time --------------------------------------------------------------------------

    def _delay(self) -> float:
        low, high = self.op_delay
        return self._random.uniform(low, high)

    def _tick(self) -> None:
        """Finish every operation whose time has come (under self.lock)."""
        now = time.monotonic()
        due = [op for op in self._store.pending if now >= op.done_at]
        if not due:
            return
        self._store.pending = [op for op in self._store.pending if now < op.done_at]
        for op in sorted(due, key=lambda o: o.done_at):
                op.body["status"] = "DONE"
                op.body["progress"] = 100
                if op.error:
                    op.body["error"] = {"errors": [{"code": op.error["code"], "message": op.error["message"]}]}
                    op.body["httpErrorStatusCode"] = op.error["status"]
                    op.body["httpErrorMessage"] = "FORBIDDEN" if op.error["status"] == 403 else "BAD REQUEST"
                elif op.on_done:
                    op.on_done()

    def _operation(self, project: str, scope_kind: str, scope: str | None, kind: str, target: str,
                   on_done: Callable[[], None] | None, request_id: str | None) -> _Op:
        """A RUNNING operation that finishes (running `on_done`) after op_delay."""
        oid = next(self._ids)
        name = f"operation-{oid}-{self._random.getrandbits(48):012x}"
        where = f"projects/{project}/global" if scope_kind == "global" else f"projects/{project}/{scope_kind}/{scope}"
        link = f"{where}/operations/{name}"
        body: dict[str, Any] = {
            "kind": "compute#operation", "id": str(oid), "name": name, "operationType": kind,
            "targetLink": _link(target), "status": "RUNNING", "progress": 0,
            "insertTime": time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00", time.gmtime()),
            "selfLink": _link(link), "user": "cast-emulator@example.com",
        }
        target_id = self._target_id(target)
        if target_id:
            body["targetId"] = target_id  # as the API sets it: the resource's numeric id
        if scope_kind == "zones":
            body["zone"] = _link(f"projects/{project}/zones/{scope}")
        elif scope_kind == "regions":
            body["region"] = _link(f"projects/{project}/regions/{scope}")
        op = _Op(body, time.monotonic() + self._delay(), on_done)
        self._store.operations[link] = op
        self._store.pending.append(op)
        if request_id:
            self._store.request_ids[request_id] = link
        return op

    def _target_id(self, target: str) -> str | None:
        for kind in (self._store.networks, self._store.subnetworks, self._store.firewalls):
            if target in kind:
                return str(kind[target]["id"])
        instance = self._store.instances.get(target)
        return str(instance.body["id"]) if instance else None

    def _replayed(self, request: Request) -> Response | None:
        """The first reply again when a mutation is retried with the same requestId."""
        link = self._store.request_ids.get(request.arg("requestId") or "")
        return Response(200, self._render_op(self._store.operations[link])) if link else None

    @staticmethod
    def _render_op(op: _Op) -> dict[str, Any]:
        return dict(op.body)

    def _wait(self, request: Request, p: dict[str, str]) -> Response:
        link = self._op_link(request.path)
        deadline = time.monotonic() + self.wait_max
        while True:
            with self.lock:
                self._tick()
                op = self._store.operations.get(link)
                if op is None:
                    return _error(404, "notFound", f"The resource '{link}' was not found")
                if op.body["status"] == "DONE" or time.monotonic() >= deadline:
                    return Response(200, self._render_op(op))
                remaining = min(op.done_at, deadline) - time.monotonic()
            time.sleep(max(0.0, remaining))  # the server simulating a blocking wait

    @staticmethod
    def _op_link(path: str) -> str:
        rel = path.removeprefix(gcp_discovery.SERVICE_PREFIX)
        return rel.removesuffix("/wait")

    # --- dispatch ----------------------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        return {
            "compute.networks.insert": self._network_insert,
            "compute.networks.get": lambda r, p: self._get(self._store.networks, self._rel(r)),
            "compute.networks.list": lambda r, p: self._list(r, self._store.networks.values(), "compute#networkList"),
            "compute.networks.delete": self._network_delete,
            "compute.subnetworks.insert": self._subnetwork_insert,
            "compute.subnetworks.get": lambda r, p: self._get(self._store.subnetworks, self._rel(r)),
            "compute.subnetworks.list": lambda r, p: self._list(
                r, [s for k, s in self._store.subnetworks.items()
                    if k.startswith(f"projects/{p['project']}/regions/{p['region']}/")],
                "compute#subnetworkList"),
            "compute.subnetworks.delete": self._subnetwork_delete,
            "compute.firewalls.insert": self._firewall_insert,
            "compute.firewalls.update": self._firewall_update,
            "compute.firewalls.get": lambda r, p: self._get(self._store.firewalls, self._rel(r)),
            "compute.firewalls.list": lambda r, p: self._list(
                r, self._store.firewalls.values(), "compute#firewallList"),
            "compute.firewalls.delete": self._firewall_delete,
            "compute.instances.insert": self._instance_insert,
            "compute.instances.get": self._instance_get,
            "compute.instances.list": self._instance_list,
            "compute.instances.aggregatedList": self._instance_aggregated,
            "compute.instances.delete": self._instance_delete,
            "compute.globalOperations.get": self._op_get,
            "compute.regionOperations.get": self._op_get,
            "compute.zoneOperations.get": self._op_get,
            "compute.globalOperations.wait": self._op_get,
            "compute.regionOperations.wait": self._op_get,
            "compute.zoneOperations.wait": self._op_get,
        }

    @staticmethod
    def _rel(request: Request) -> str:
        return request.path.removeprefix(gcp_discovery.SERVICE_PREFIX)

    def _op_get(self, request: Request, p: dict[str, str]) -> Response:
        link = self._op_link(request.path)
        op = self._store.operations.get(link)
        if op is None:
            raise ApiError(404, "notFound", f"The resource '{link}' was not found")
        return Response(200, self._render_op(op))

    @staticmethod
    def _get(table: dict[str, dict[str, Any]], rel: str) -> Response:
        if rel not in table:
            raise ApiError(404, "notFound", f"The resource '{rel}' was not found")
        return Response(200, table[rel])

    # --- listing -----------------------------------------------------------------------

    def _page(self, request: Request, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
        flt = request.arg("filter")
        if flt:
            match = _compile_filter(flt)
            items = [i for i in items if match(i)]
        items.sort(key=lambda i: i["name"])
        size = min(int(request.arg("maxResults") or MAX_PAGE), MAX_PAGE) or MAX_PAGE
        token = request.arg("pageToken")
        start = int(token) if token and token.isdigit() else 0
        if token and not token.isdigit():
            raise ApiError(400, "invalid", f"Invalid value for pageToken: {token!r}")
        page = items[start : start + size]
        following = str(start + size) if start + size < len(items) else None
        return page, following

    def _list(self, request: Request, items: Any, kind: str) -> Response:
        page, following = self._page(request, list(items))
        body: dict[str, Any] = {"kind": kind, "items": page, "selfLink": _link(self._rel(request))}
        if following:
            body["nextPageToken"] = following
        return Response(200, body)

    # --- networks ----------------------------------------------------------------------

    def _network_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = _valid_name(body.get("name"))
        rel = f"projects/{p['project']}/global/networks/{name}"
        if rel in self._store.networks:
            raise ApiError(409, "alreadyExists", f"The resource '{rel}' already exists")
        network = {
            **body, "kind": "compute#network", "id": str(next(self._ids)), "selfLink": _link(rel),
            "autoCreateSubnetworks": bool(body.get("autoCreateSubnetworks", False)),
            "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00", time.gmtime()),
        }
        self._store.networks[rel] = network
        op = self._operation(p["project"], "global", None, "insert", rel, None, request.arg("requestId"))
        return Response(200, self._render_op(op))

    def _network_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        rel = self._rel(request)
        if rel not in self._store.networks:
            raise ApiError(404, "notFound", f"The resource '{rel}' was not found")
        users = [s for s, sub in self._store.subnetworks.items() if _rel(sub["network"]) == rel]
        users += [f for f, fw in self._store.firewalls.items() if _rel(fw["network"]) == rel]
        users += [i for i, inst in self._store.instances.items()
                  if any(_rel(n.get("network", "")) == rel for n in inst.body["networkInterfaces"])]
        if users:
            raise ApiError(400, "resourceInUseByAnotherResource",
                           f"The network resource '{rel}' is already being used by '{users[0]}'")
        del self._store.networks[rel]
        op = self._operation(p["project"], "global", None, "delete", rel, None, request.arg("requestId"))
        return Response(200, self._render_op(op))

    def _network_ref(self, project: str, ref: str | None) -> str:
        rel = _rel(ref or f"projects/{project}/global/networks/default")
        if rel.startswith("global/"):
            rel = f"projects/{project}/{rel}"
        if rel not in self._store.networks:
            raise ApiError(404, "notFound", f"The resource '{rel}' was not found")
        return rel

    # --- subnetworks -------------------------------------------------------------------

    def _subnetwork_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = _valid_name(body.get("name"))
        rel = f"projects/{p['project']}/regions/{p['region']}/subnetworks/{name}"
        cidr = _valid_cidr(body.get("ipCidrRange"), "ipCidrRange", max_prefix=29)
        network = self._network_ref(p["project"], body.get("network"))
        if rel in self._store.subnetworks:
            raise ApiError(409, "alreadyExists", f"The resource '{rel}' already exists")
        for other_rel, other in self._store.subnetworks.items():
            if _rel(other["network"]) == network and cidr.overlaps(ipaddress.IPv4Network(other["ipCidrRange"])):
                raise ApiError(400, "invalid", f"Invalid IPCidrRange: {cidr} conflicts with existing "
                                               f"subnetwork '{other_rel}'")
        sub = {
            **body, "kind": "compute#subnetwork", "id": str(next(self._ids)), "selfLink": _link(rel),
            "network": _link(network), "region": _link(f"projects/{p['project']}/regions/{p['region']}"),
            "ipCidrRange": str(cidr), "gatewayAddress": str(cidr.network_address + 1),
        }
        self._store.subnetworks[rel] = sub
        self._store.private_pools[rel] = AddressPool(str(cidr), first_host=2)
        self._store.networks[network].setdefault("subnetworks", []).append(_link(rel))
        op = self._operation(p["project"], "regions", p["region"], "insert", rel, None, request.arg("requestId"))
        return Response(200, self._render_op(op))

    def _subnetwork_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        rel = self._rel(request)
        sub = self._store.subnetworks.get(rel)
        if sub is None:
            raise ApiError(404, "notFound", f"The resource '{rel}' was not found")
        users = [i for i, inst in self._store.instances.items()
                 if any(_rel(n.get("subnetwork", "")) == rel for n in inst.body["networkInterfaces"])]
        if users:
            raise ApiError(400, "resourceInUseByAnotherResource",
                           f"The subnetwork resource '{rel}' is already being used by '{users[0]}'")
        del self._store.subnetworks[rel]
        net = self._store.networks.get(_rel(sub["network"]))
        if net is not None:
            net["subnetworks"] = [s for s in net.get("subnetworks", []) if _rel(s) != rel]
        op = self._operation(p["project"], "regions", p["region"], "delete", rel, None, request.arg("requestId"))
        return Response(200, self._render_op(op))

    # --- firewalls ---------------------------------------------------------------------

    def _firewall_body(self, p: dict[str, str], body: dict[str, Any], rel: str) -> dict[str, Any]:
        network = self._network_ref(p["project"], body.get("network"))
        for rule in body.get("allowed", []):
            if rule.get("IPProtocol") not in ("tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all"):
                raise ApiError(400, "invalid", f"Invalid value for field 'resource.allowed.IPProtocol': "
                                               f"{rule.get('IPProtocol')!r}")
            for ports in rule.get("ports", []):
                if not re.fullmatch(r"\d{1,5}(-\d{1,5})?", ports):
                    raise ApiError(400, "invalid", f"Invalid value for field 'resource.allowed.ports': {ports!r}")
        for source in body.get("sourceRanges", []):
            _valid_cidr(source, "sourceRanges", max_prefix=32, strict=False)
        for tag in body.get("targetTags", []):
            _valid_name(tag, "targetTags")
        return {
            **body, "kind": "compute#firewall", "selfLink": _link(rel), "network": _link(network),
            "direction": body.get("direction", "INGRESS"), "priority": body.get("priority", 1000),
        }

    def _firewall_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = _valid_name(body.get("name"))
        rel = f"projects/{p['project']}/global/firewalls/{name}"
        fw = self._firewall_body(p, body, rel)
        if rel in self._store.firewalls:
            raise ApiError(409, "alreadyExists", f"The resource '{rel}' already exists")
        self._store.firewalls[rel] = {**fw, "id": str(next(self._ids))}
        op = self._operation(p["project"], "global", None, "insert", rel, None, request.arg("requestId"))
        return Response(200, self._render_op(op))

    def _firewall_update(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        rel = self._rel(request)
        old = self._store.firewalls.get(rel)
        if old is None:
            raise ApiError(404, "notFound", f"The resource '{rel}' was not found")
        body = request.json()
        if body.get("name", p["firewall"]) != p["firewall"]:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.name': the name cannot change")
        self._store.firewalls[rel] = {**self._firewall_body(p, body, rel), "name": p["firewall"], "id": old["id"]}
        op = self._operation(p["project"], "global", None, "update", rel, None, request.arg("requestId"))
        return Response(200, self._render_op(op))

    def _firewall_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        rel = self._rel(request)
        if self._store.firewalls.pop(rel, None) is None:
            raise ApiError(404, "notFound", f"The resource '{rel}' was not found")
        op = self._operation(p["project"], "global", None, "delete", rel, None, request.arg("requestId"))
        return Response(200, self._render_op(op))

    # --- instances ---------------------------------------------------------------------

    def _render_instance(self, inst: _Instance) -> dict[str, Any]:
        now = time.monotonic()
        if inst.deleting:
            status = "STOPPING"
        elif now >= inst.running_at:
            status = "RUNNING"
        elif now >= inst.staging_at:
            status = "STAGING"
        else:
            status = "PROVISIONING"
        return {**inst.body, "status": status}

    def _instance_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        project, zone = p["project"], p["zone"]
        body = request.json()
        name = _valid_name(body.get("name"))
        rel = f"projects/{project}/zones/{zone}/instances/{name}"
        if not re.fullmatch(rf"(?:.*/)?zones/{re.escape(zone)}/machineTypes/[a-z0-9-]+", body.get("machineType", "")):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.machineType': "
                                           f"{body.get('machineType')!r}")
        for key, value in (body.get("labels") or {}).items():
            if not LABEL_KEY_RE.fullmatch(key) or not LABEL_VALUE_RE.fullmatch(value):
                raise ApiError(400, "invalid", f"Invalid value for field 'resource.labels': {key!r}")
        for tag in (body.get("tags") or {}).get("items", []):
            _valid_name(tag, "tags.items")
        boot = [d for d in body.get("disks", []) if d.get("boot")]
        if len(boot) != 1:
            raise ApiError(400, "invalid",
                           "Invalid value for field 'resource.disks': exactly one boot disk is required")
        image = _rel((boot[0].get("initializeParams") or {}).get("sourceImage", ""))
        if image not in KNOWN_IMAGES:
            raise ApiError(404, "notFound", f"The resource '{image}' was not found")
        nics = body.get("networkInterfaces") or []
        if len(nics) != 1:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.networkInterfaces'")
        nic = dict(nics[0])
        sub_rel = _rel(nic.get("subnetwork", ""))
        if sub_rel.startswith("regions/"):
            sub_rel = f"projects/{project}/{sub_rel}"
        subnet = self._store.subnetworks.get(sub_rel)
        if subnet is None:
            raise ApiError(404, "notFound", f"The resource '{sub_rel or 'subnetwork'}' was not found")
        if f"/regions/{_region_of_zone(zone)}/" not in sub_rel:
            raise ApiError(400, "invalid", f"Subnetwork '{sub_rel}' is not in the region of zone {zone}")
        if rel in self._store.instances:
            raise ApiError(409, "alreadyExists", f"The resource '{rel}' already exists")
        nic.update(network=subnet["network"], subnetwork=_link(sub_rel), name="nic0",
                   networkIP=self._store.private_pools[sub_rel].next())
        nic["accessConfigs"] = [
            {**a, "kind": "compute#accessConfig", "natIP": a.get("natIP") or self._public.next()}
            for a in nic.get("accessConfigs", [])
        ]
        now = time.monotonic()
        op = self._operation(project, "zones", zone, "insert", rel, None, request.arg("requestId"))
        self._store.instances[rel] = _Instance(
            body={**body, "kind": "compute#instance", "id": str(next(self._ids)), "selfLink": _link(rel),
                  "zone": _link(f"projects/{project}/zones/{zone}"), "networkInterfaces": [nic]},
            staging_at=now + (op.done_at - now) / 2,
            running_at=op.done_at + self.boot_delay,
        )
        return Response(200, self._render_op(op))

    def _instance_get(self, request: Request, p: dict[str, str]) -> Response:
        inst = self._store.instances.get(self._rel(request))
        if inst is None:
            raise ApiError(404, "notFound", f"The resource '{self._rel(request)}' was not found")
        return Response(200, self._render_instance(inst))

    def _instance_list(self, request: Request, p: dict[str, str]) -> Response:
        prefix = f"projects/{p['project']}/zones/{p['zone']}/"
        items = [self._render_instance(i) for k, i in self._store.instances.items() if k.startswith(prefix)]
        return self._list(request, items, "compute#instanceList")

    def _instance_aggregated(self, request: Request, p: dict[str, str]) -> Response:
        prefix = f"projects/{p['project']}/zones/"
        items = [self._render_instance(i) for k, i in self._store.instances.items() if k.startswith(prefix)]
        page, following = self._page(request, items)
        scopes: dict[str, dict[str, Any]] = {}
        for item in page:
            scope = "zones/" + item["zone"].rsplit("/", 1)[1]
            scopes.setdefault(scope, {"instances": []})["instances"].append(item)
        body: dict[str, Any] = {"kind": "compute#instanceAggregatedList", "items": scopes}
        if following:
            body["nextPageToken"] = following
        return Response(200, body)

    def _instance_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        rel = self._rel(request)
        inst = self._store.instances.get(rel)
        if inst is None:
            raise ApiError(404, "notFound", f"The resource '{rel}' was not found")
        inst.deleting = True

        def gone() -> None:
            self._store.instances.pop(rel, None)

        op = self._operation(p["project"], "zones", p["zone"], "delete", rel, gone, request.arg("requestId"))
        return Response(200, self._render_op(op))


# --- validation helpers -----------------------------------------------------------------


def _valid_name(name: Any, what: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.{what}': {name!r}. Must be a match "
                                       f"of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'")
    return name


def _valid_cidr(value: Any, what: str, *, max_prefix: int, strict: bool = True) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(value, strict=strict)
    except (ValueError, TypeError):
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.{what}': {value!r}. "
                                       "Invalid IPCidrRange") from None
    if net.prefixlen > max_prefix:
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.{what}': {value!r}. "
                                       f"The prefix length must be at most {max_prefix}")
    return net


_TERM = re.compile(r"""\(?\s*([\w.\-]+)\s*(!=|=|:|\beq\b|\bne\b)\s*(?:"([^"]*)"|'([^']*)'|([^\s()]+))\s*\)?""")


def _compile_filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """A list filter: terms `field OP value` joined by AND (or juxtaposed in parentheses).
    `=`, `!=` compare, `:` tests a substring, `eq`/`ne` match an RE2-like regex in full."""
    rest = re.sub(r"\bAND\b", " ", text.strip())
    terms = []
    pos = 0
    while pos < len(rest):
        if rest[pos].isspace():
            pos += 1
            continue
        found = _TERM.match(rest, pos)
        if not found:
            raise ApiError(400, "invalid", f"Invalid list filter expression {text!r}")
        field_path, op = found.group(1), found.group(2)
        value = next(v for v in found.group(3, 4, 5) if v is not None)
        terms.append((field_path.split("."), op, value))
        pos = found.end()

    def lookup(item: dict[str, Any], path: list[str]) -> Any:
        value: Any = item
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def test(item: dict[str, Any]) -> bool:
        for path, op, value in terms:
            actual = lookup(item, path)
            text_value = "" if actual is None else str(actual)
            ok = {
                "=": actual is not None and text_value == value,
                "!=": text_value != value,
                ":": actual is not None and value in text_value,
                "eq": actual is not None and re.fullmatch(value, text_value) is not None,
                "ne": not (actual is not None and re.fullmatch(value, text_value) is not None),
            }[op]
            if not ok:
                return False
        return True

    return test
