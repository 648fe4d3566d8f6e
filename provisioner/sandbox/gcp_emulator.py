"""An emulator of the compute v1 REST API: networks, subnetworks, firewalls, instances and
their disks, operations, and the read-only catalog lookups (zones, regions, machine types,
disk types, public images) every client makes first.

It behaves like the real API, for any client:
- credentials: a request with no `Authorization: Bearer <token>` header (or, when `token` is
  set, another token) gets 401 UNAUTHENTICATED with the API's own body, before anything else;
- every request is checked against the compute v1 discovery document (gcp_discovery); one the
  real API would not accept gets 400 (404 for a path it does not have) and is appended to
  `violations`, which tests assert empty; so is every answer whose body does not fit the
  method's response schema (the emulator's own drift).
  Query parameters a method does not declare are ignored and null reads as absent, as there;
- an unknown zone or region in the path is 400 "Unknown zone/region" (zones.get, regions.get:
  404); an unknown machine type is refused by the insert with the API's 400, an unknown image
  or disk type with its 404 (gcp_catalog holds what exists);
- mutations return an operation that is RUNNING and turns DONE `op_delay` seconds later
  (a random value in the range), so clients really poll; `wait` blocks until DONE or
  `wait_max` seconds; instances go PROVISIONING -> STAGING -> RUNNING;
- 409 alreadyExists, 404 notFound, 400 invalid (RFC 1035 names, CIDRs, labels), 400
  resourceInUseByAnotherResource on deleting a network, subnetwork or disk still in use;
- `requestId` makes a retried mutation return the first operation;
- paging with `maxResults`/`pageToken`; list `filter` with `=`, `!=`, `:`, `eq`, `ne`;
- external IPs from its public pool (198.18.1.0/24 unless given another), internal ones in order
  from the subnetwork;
- faults (base class): throttle -> 429 rateLimitExceeded, unavailable -> 503 backendError,
  quota (instance insert only) -> an operation that ends with QUOTA_EXCEEDED (as GCP reports
  it), or with `quota_style="http"` a 403 quotaExceeded.
`GET /_emulator/violations` lists the violations; `DELETE` clears them (reset does not).
Load balancing (addresses, httpHealthChecks, targetPools, forwardingRules: gcp_balancing) and
Cloud DNS v1 (under /dns/v1/, checked against the dns v1 document: gcp_dns) are served too;
`GET /_emulator/load-balancers` and `GET /_emulator/dns-zones` show them to the sandbox.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import re
import time

from . import gcp_catalog, gcp_discovery
from .emulator import AddressPool, EmulatedVm, EmulatorServer, Request, Response
from .gcp_balancing import BalancingApi
from .gcp_common import ApiError, error, region_of_zone, unauthenticated
from .gcp_dns import DnsApi
from .gcp_instances import InstanceApi
from .gcp_lookups import LookupApi
from .gcp_networks import NetworkApi
from .gcp_state import Store
from .pools import DEFAULT_POOLS

PUBLIC_POOL = DEFAULT_POOLS["gcp"]
DNS_PREFIX = "/dns/v1/"  # Cloud DNS v1 (gcp_dns), served beside compute v1
SCOPE_CHECK_EXEMPT = {"compute.zones.get", "compute.regions.get"}  # these answer 404 instead


class GcpEmulator(NetworkApi, InstanceApi, LookupApi, BalancingApi, DnsApi, EmulatorServer):
    """The compute v1 emulator. `op_delay` is (min, max) seconds, `boot_delay` seconds;
    `token`, when given, is the only bearer token accepted."""

    cloud = "gcp"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None,
                 op_delay: tuple[float, float] = (0.05, 0.2), boot_delay: float = 0.1,
                 wait_max: float = 2.0, quota_style: str = "operation", seed: int = 11,
                 public_pool: str = PUBLIC_POOL):
        EmulatorServer.__init__(self, host, port)
        self.public_pool = public_pool
        self.token = token  # when set, the only bearer token accepted
        self.op_delay = op_delay
        self.boot_delay = boot_delay
        self.wait_max = wait_max
        self.quota_style = quota_style
        self.violations: list[str] = []
        self.discovery = gcp_discovery.load()
        self._random = random.Random(seed)
        self._ids = itertools.count(1000001)
        self._store = Store()
        self._public = AddressPool(public_pool)
        self._routes = {**self.network_handlers(), **self.instance_handlers(), **self.lookup_handlers(),
                        **self.balancing_handlers(),
                        **{f"compute.{scope}Operations.{verb}": self._op_get
                           for scope in ("global", "region", "zone") for verb in ("get", "wait")}}

    # --- base-class hooks --------------------------------------------------------------

    def reset(self) -> None:
        super().reset()
        self._store = Store()
        self._public = AddressPool(self.public_pool)

    def route_of(self, request: Request) -> str:
        found = self._discovery_for(request).match(request.method, request.path)
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
            return error(429, "rateLimitExceeded", "Rate Limit Exceeded")
        if kind == "unavailable":
            return error(503, "backendError", "The service is currently unavailable.")
        zone = request.path.split("/zones/")[1].split("/")[0]
        message = f"Quota 'CPUS' exceeded.  Limit: 8.0 in region {region_of_zone(zone)}."
        if self.quota_style == "http":
            return error(403, "quotaExceeded", message)
        project = request.path.split("/projects/")[1].split("/")[0]
        name = (request.json() or {}).get("name", "")
        with self.lock:
            op = self._operation(project, "zones", zone, "insert",
                                 f"projects/{project}/zones/{zone}/instances/{name}", None,
                                 request.arg("requestId"))
            op.error = {"code": "QUOTA_EXCEEDED", "message": message, "status": 403}
            return self._op_reply(op)

    def handle(self, request: Request) -> Response:
        if request.path.startswith(DNS_PREFIX):
            return unauthenticated(request, self.token) or self.dns_handle(request)
        rejected = self._check(request)
        if rejected:
            return rejected
        found = self.discovery.match(request.method, request.path)
        assert found is not None  # _check passed
        if request.body.strip():  # null members read as absent from here on
            request = dataclasses.replace(request, body=json.dumps(gcp_discovery.drop_nulls(request.json())).encode())
        handler = self._routes.get(found.method.id)
        if handler is None:
            return error(501, "notImplemented", f"the emulator does not implement {found.method.id}")
        try:
            self._check_scope(found.method.id, found.params)
            if found.method.id.endswith("Operations.wait"):
                return self._wait(request)
            with self.lock:
                self._tick()
                response = handler(request, found.params)
        except ApiError as exc:
            return exc.response()
        self._check_response(found.method, response)
        return response

    def _control(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/_emulator/violations":
            with self.lock:
                if request.method == "DELETE":
                    self.violations.clear()
                    return Response(204)
                return Response(200, list(self.violations))
        if request.method == "GET" and request.path.rstrip("/") == "/_emulator/load-balancers":
            with self.lock:
                self._tick()
                return Response(200, self.load_balancers())
        if request.method == "GET" and request.path.rstrip("/") == "/_emulator/dns-zones":
            with self.lock:
                return Response(200, self.dns_zones())
        return super()._control(request)

    def running_vms(self) -> list[EmulatedVm]:
        """RUNNING instances; `ssh_keys` are the keys of the `ssh-keys` metadata without the
        `user:` prefix, `user_data` the `user-data` metadata as sent."""
        with self.lock:
            self._tick()
            vms = []
            for inst in self._store.instances.values():
                body = self.render_instance(inst)
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

    def _discovery_for(self, request: Request) -> gcp_discovery.ComputeDiscovery:
        return gcp_discovery.load_dns() if request.path.startswith(DNS_PREFIX) else self.discovery

    def _check(self, request: Request) -> Response | None:
        refused = unauthenticated(request, self.token)
        if refused:
            return refused
        discovery = self._discovery_for(request)
        problems = discovery.check(request.method, request.path, request.query, request.body)
        if not problems:
            return None
        with self.lock:
            self.violations.extend(problems)
        if discovery.match(request.method, request.path) is None:  # Google's front end: 404
            return error(404, "notFound", f"The requested URL {request.path} was not found on this server.")
        return error(400, "invalid", f"Invalid request ({discovery.name} discovery document): " + "; ".join(problems))

    def _check_response(self, method: gcp_discovery.Method, response: Response) -> None:
        """A 2xx body with a field the API's response schema lacks (or types otherwise) is
        the emulator's own drift: recorded in `violations` too."""
        if response.status < 300 and isinstance(response.body, dict):
            problems = self.discovery.check_response(method, response.body)
            if problems:
                with self.lock:
                    self.violations.extend(problems)

    @staticmethod
    def _check_scope(method_id: str, params: dict[str, str]) -> None:
        """The API's 400 for a zone or region it does not have (zones.get/regions.get: 404)."""
        if method_id in SCOPE_CHECK_EXEMPT:
            return
        zone, region = params.get("zone"), params.get("region")
        if zone is not None and not gcp_catalog.zone_known(zone):
            raise ApiError(400, "invalid", f"Invalid value for field 'zone': '{zone}'. Unknown zone.")
        if region is not None and not gcp_catalog.region_known(region):
            raise ApiError(400, "invalid", f"Invalid value for field 'region': '{region}'. Unknown region.")

    @staticmethod
    def _is_instance_insert(request: Request) -> bool:
        return request.method == "POST" and bool(re.fullmatch(r".*/zones/[^/]+/instances", request.path))

    # --- blocking wait -----------------------------------------------------------------

    def _wait(self, request: Request) -> Response:
        op_link = request.path.removeprefix(gcp_discovery.SERVICE_PREFIX).removesuffix("/wait")
        deadline = time.monotonic() + self.wait_max
        while True:
            with self.lock:
                self._tick()
                op = self._store.operations.get(op_link)
                if op is None:
                    return error(404, "notFound", f"The resource '{op_link}' was not found")
                if op.body["status"] == "DONE" or time.monotonic() >= deadline:
                    return self._op_reply(op)
                remaining = min(op.done_at, deadline) - time.monotonic()
            time.sleep(max(0.0, remaining))  # the server simulating a blocking wait

