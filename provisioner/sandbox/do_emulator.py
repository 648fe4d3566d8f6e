"""A DigitalOcean API emulator on loopback: the part of /v2/ cast and common clients use,
behaving like the real API for any client.

- VPCs (create, get, list, delete, members: droplets and load balancers). A create whose
  ip_range overlaps another VPC of the account, or is not a private (RFC 1918) range of
  /16 to /28, gets 422. A delete while the VPC has members gets 403 (as the description
  documents); a deleted droplet stays a member for `member_linger_s`, as on the real API.
  The first VPC of a region becomes its default (`default: true`), which cannot be deleted
  (403), as the API reference says; a droplet created without `vpc_uuid` goes into its
  region's default VPC, made when the region has none.
- SSH keys (a public key that is not one gets the API's 422) and the account here; droplets,
  their actions and the catalog (`/v2/regions`, `/v2/sizes`, `/v2/images`; an unknown
  region, size or image, or a size not sold in the region, gets the API's 422) in
  do_droplets; tags and firewalls in do_tagging; load balancers in do_balancers; domains
  and their records in do_domains. Every `created_at` is fixed when the resource is made.
- A droplet is `new` for `boot_delay_s` (per name with `slow_boot`), then `active` with a
  public IPv4 from its public pool (198.18.3.0/24 unless given another; see pools.py) and a
  private one inside its VPC.
- Errors are `{"id", "message"}` with rate-limit headers; 429 carries Retry-After.
  Faults through the base class's control endpoint: throttle (429), unavailable (503) and
  quota (422 on droplet create). `droplet_limit` also refuses creates past the limit.
- Every request is checked against DigitalOcean's OpenAPI description (do_openapi) when it is
  on this machine: a violation is recorded in `errors` and refused (404 for an unknown path,
  else 422 as the API refuses what it cannot process). Like the API, the
  emulator ignores unknown query parameters, reads null as absent and takes `{}` on DELETE.
- Extra control routes: POST /_emulator/boot {"match": "name-substring", "seconds": s};
  GET /_emulator/load-balancers (the active balancers, their forwards, health check and
  backends) and GET /_emulator/dns-zones (every domain's record sets), for the sandbox's
  forwarder and DNS server.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ..keys import md5_fingerprint
from . import do_catalog as catalog
from .do_balancers import LoadBalancers
from .do_domains import Domains
from .do_droplets import LIMIT_MESSAGE, Droplet, DropletsAndCatalog
from .do_openapi import OpenApiChecker, default_checker
from .do_tagging import TagsAndFirewalls
from .do_wire import error, fold_ids, iso, not_found, page, shape, unprocessable, without_nulls
from .emulator import AddressPool, EmulatedVm, EmulatorServer, Request, Response
from .pools import DEFAULT_POOLS

PUBLIC_POOL = DEFAULT_POOLS["digitalocean"]
RATE_LIMIT = 5000
RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# DigitalOcean gives a region's default VPC a /20 of 10.96.0.0/11 (e.g. 10.116.0.0/20); the
# emulator takes the first one free in the account.
DEFAULT_VPC_BLOCK = ipaddress.IPv4Network("10.96.0.0/11")


@dataclass
class _Vpc:
    id: str
    name: str
    region: str
    ip_range: str
    description: str = ""
    hosts: Any = None  # iterator of private addresses
    default: bool = False
    created_at: str = ""
    # droplet id -> (until, name, created_at) of members deleted a moment ago
    gone_members: dict[int, tuple[float, str, str]] = field(default_factory=dict)


def fingerprint(public_key: str) -> str:
    """The MD5 fingerprint DigitalOcean shows for a public key (colon-separated hex)."""
    return md5_fingerprint(public_key)


class DigitalOceanEmulator(DropletsAndCatalog, TagsAndFirewalls, LoadBalancers, Domains, EmulatorServer):
    """The emulator. `account_vpcs` pre-seeds the account with (name, region, ip_range)
    VPCs and `default_vpc_regions` with a default VPC in each of those regions (as an account
    that has used them has), both surviving `reset`; `token`, when given, is the only bearer token accepted."""

    cloud = "digitalocean"

    def __init__(
        self,
        *,
        account_vpcs: Sequence[tuple[str, str, str]] = (),
        default_vpc_regions: Sequence[str] = (),
        boot_delay_s: float = 0.05,
        lb_delay_s: float = 0.05,
        member_linger_s: float = 0.05,
        droplet_limit: int = 25,
        retry_after_s: int = 0,
        token: str | None = None,
        public_pool: str = PUBLIC_POOL,
        checker: OpenApiChecker | None | bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(host, port)
        self.seed_vpcs = list(account_vpcs)
        self.seed_default_regions = list(default_vpc_regions)
        self.boot_delay_s = boot_delay_s
        self.lb_delay_s = lb_delay_s
        self.member_linger_s = member_linger_s
        self.droplet_limit = droplet_limit
        self.retry_after_s = retry_after_s
        self.token = token
        self.public_pool = public_pool
        self.public_gateway = str(next(ipaddress.IPv4Network(public_pool).hosts()))
        self.checker: OpenApiChecker | None = default_checker() if checker is True else (checker or None)
        self.errors: list[str] = []  # OpenAPI violations seen (refused)
        self.unknown_properties: list[str] = []  # body properties the description does not know (ignored)
        self._slow: dict[str, float] = {}
        self._remaining = RATE_LIMIT
        self._clear()

    # --- state -------------------------------------------------------------------------

    def _clear(self) -> None:
        self.vpcs: dict[str, _Vpc] = {}
        self.keys: dict[int, dict[str, Any]] = {}
        self.tags: set[str] = set()
        self.droplets: dict[int, Droplet] = {}
        self.firewalls: dict[str, dict[str, Any]] = {}
        self.actions: dict[int, dict[str, Any]] = {}
        self.balancers: dict[str, dict[str, Any]] = {}
        self.domains: dict[str, dict[int, dict[str, Any]]] = {}
        self._ids = itertools.count(1001)
        self._public = AddressPool(self.public_pool)
        for name, region, ip_range in self.seed_vpcs:
            self._add_vpc(name, region, ip_range, "pre-seeded")
        for region in self.seed_default_regions:
            self._default_vpc(region)

    def reset(self) -> None:
        super().reset()
        self.errors.clear()
        self.unknown_properties.clear()
        self._slow.clear()
        self._clear()

    def slow_boot(self, match: str, seconds: float) -> None:
        """Droplets created from now on whose name contains `match` take `seconds` to boot."""
        with self.lock:
            self._slow[match] = seconds

    def _add_vpc(self, name: str, region: str, ip_range: str, description: str) -> _Vpc:
        """A new VPC; the first in its region becomes the region's default, as the API
        reference says (and a default VPC cannot be deleted)."""
        net = ipaddress.IPv4Network(ip_range)
        first = not any(v.region == region for v in self.vpcs.values())
        vpc = _Vpc(str(uuid.uuid4()), name, region, ip_range, description, iter(list(net.hosts())[1:]),
                   default=first, created_at=iso(time.time()))
        self.vpcs[vpc.id] = vpc
        return vpc

    def _default_vpc(self, region: str) -> _Vpc:
        """The region's default VPC, made as the API makes it when the region has none."""
        found = next((v for v in self.vpcs.values() if v.region == region and v.default), None)
        if found is None:
            found = self._add_vpc(f"default-{region}", region, self._free_range(DEFAULT_VPC_BLOCK), "")
        return found

    def _advance(self) -> None:
        """Boot droplets whose time has come; forget members that have lingered enough."""
        now = time.monotonic()
        for d in self.droplets.values():
            if not d.active and now >= d.active_at:
                vpc = self.vpcs[d.vpc_uuid]
                d.private_ip = str(next(vpc.hosts))
                d.netmask = str(ipaddress.IPv4Network(vpc.ip_range).netmask)
                d.public_ip = self._public.next()
        self._activate_balancers(now)
        for vpc in self.vpcs.values():
            vpc.gone_members = {i: gone for i, gone in vpc.gone_members.items() if gone[0] > now}

    def running_vms(self) -> list[EmulatedVm]:
        with self.lock:
            self._advance()
            return [
                EmulatedVm(str(d.id), d.name, d.public_ip, d.private_ip, d.user_data, list(d.ssh_keys), "running",
                           created_at=d.created_at)
                for d in self.droplets.values()
                if d.active
            ]

    # --- plumbing ----------------------------------------------------------------------

    def route_of(self, request: Request) -> str:
        return super().route_of(Request(request.method, fold_ids(request.path), {}, {}, b""))

    def fault_kinds_for(self, request: Request) -> tuple[str, ...]:
        if request.method == "POST" and request.path.rstrip("/") == "/v2/droplets":
            return ("throttle", "unavailable", "quota")
        return ("throttle", "unavailable")

    def _rate_headers(self) -> dict[str, str]:
        self._remaining = max(0, self._remaining - 1)
        return {
            "ratelimit-limit": str(RATE_LIMIT),
            "ratelimit-remaining": str(self._remaining),
            "ratelimit-reset": str(int(time.time()) + 60),
        }

    def fault_response(self, kind: str, request: Request) -> Response:
        headers = self._rate_headers()
        if kind == "throttle":
            headers.update({"ratelimit-remaining": "0", "retry-after": str(self.retry_after_s)})
            return error(429, "too_many_requests", "API Rate limit exceeded.", headers)
        if kind == "quota":
            return error(422, "unprocessable_entity", LIMIT_MESSAGE, headers)
        return error(503, "service_unavailable", "The service is temporarily unavailable.", headers)

    def _control(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/_emulator/boot" and request.method == "POST":
            spec = request.json() or {}
            self.slow_boot(str(spec.get("match", "")), float(spec.get("seconds", 0)))
            return Response(204)
        if request.method == "GET" and request.path.rstrip("/") in _SANDBOX_VIEWS:
            with self.lock:
                self._advance()
                return Response(200, getattr(self, _SANDBOX_VIEWS[request.path.rstrip("/")])())
        return super()._control(request)

    def handle(self, request: Request) -> Response:
        with self.lock:
            headers = self._rate_headers()
            response = self._handle(request)
            response.headers = {**headers, **response.headers}
            return response

    def _handle(self, request: Request) -> Response:
        scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip() or (self.token is not None and bearer != self.token):
            return error(401, "unauthorized", "Unable to authenticate you.")
        try:
            body = request.json() if request.body else None
        except ValueError:
            self.errors.append(f"{request.method} {request.path}: body is not JSON")
            return error(400, "bad_request", "The request body is not valid JSON.")
        if self.checker is not None:
            self.unknown_properties += self.checker.unknown_properties(request.method, request.path,
                                                                       request.query, body)
            problems = self.checker.check(request.method, request.path, request.query, body)
            if problems:
                return self._violation(problems)
        self._advance()
        parts = [unquote(p) for p in request.path.split("/") if p][1:]  # without "v2"
        shaped = shape(parts)
        route = getattr(self, f"_{request.method.lower()}_{'_'.join(shaped)}", None)
        if route is None:
            return error(501, "not_implemented", f"the emulator does not implement {request.method} {request.path}")
        ids = [p for p, s in zip(parts, shaped, strict=True) if s == "id"]
        body = without_nulls(body) or {}
        if not isinstance(body, dict):  # where the description leaves a body's type open
            return error(400, "bad_request", "The request body must be a JSON object.")
        missing = [f for f in _REQUIRED.get(route.__name__, ()) if f not in body]
        if missing:  # where the description leaves them optional but the API cannot do without
            return unprocessable(f"{missing[0]} is required.")
        return route(request, body, *ids)

    def serves(self, method: str, template: str) -> bool:
        """Whether the emulator implements the API operation `method template` (a path
        template of the OpenAPI description, such as /v2/droplets/{droplet_id})."""
        parts = [("1" if p.startswith("{") else p) for p in template.split("/") if p][1:]
        return hasattr(self, f"_{method.lower()}_{'_'.join(shape(parts))}")

    def _violation(self, problems: list[str]) -> Response:
        """Record a request the description does not allow and refuse it as the API would: an
        unknown path or method is not found (404); a bad droplet name gets the API's own
        words; anything else is unprocessable (422), naming what the check found."""
        message = "; ".join(problems)
        self.errors.append(message)
        if any(_UNKNOWN_ROUTE in p for p in problems):
            return not_found()
        if any(p.startswith("POST /v2/droplets body") and "does not match" in p
               and ("body.name:" in p or "body.names[" in p) for p in problems):
            return unprocessable(_HOSTNAME_MESSAGE)
        return unprocessable(f"OpenAPI check: {message}")

    # --- account -----------------------------------------------------------------------

    def _get_account(self, request: Request, body: Any) -> Response:
        return Response(200, {"account": {
            "droplet_limit": self.droplet_limit, "floating_ip_limit": 3, "email": "sandbox@example.com",
            "uuid": "00000000-0000-4000-8000-000000000000", "email_verified": True, "status": "active",
            "status_message": "",
        }})

    # --- VPCs --------------------------------------------------------------------------

    def _vpc_json(self, vpc: _Vpc) -> dict[str, Any]:
        return {
            "id": vpc.id, "urn": f"do:vpc:{vpc.id}", "name": vpc.name, "description": vpc.description,
            "region": vpc.region, "ip_range": vpc.ip_range, "default": vpc.default, "created_at": vpc.created_at,
        }

    def _post_vpcs(self, request: Request, body: dict[str, Any]) -> Response:
        ip_range = body.get("ip_range")
        if ip_range is None:
            ip_range = self._free_range()
        problem = self._range_problem(ip_range)
        if problem:
            return unprocessable(problem)
        if any(v.name == body["name"] for v in self.vpcs.values()):
            return unprocessable("A VPC with this name already exists.")
        vpc = self._add_vpc(body["name"], body["region"], ip_range, body.get("description", ""))
        return Response(201, {"vpc": self._vpc_json(vpc)})

    def _free_range(self, block: ipaddress.IPv4Network = RFC1918[0]) -> str:
        for candidate in block.subnets(new_prefix=20):
            if not any(candidate.overlaps(ipaddress.IPv4Network(v.ip_range)) for v in self.vpcs.values()):
                return str(candidate)
        raise RuntimeError("no free /20 left")

    def _range_problem(self, ip_range: str) -> str | None:
        try:
            net = ipaddress.IPv4Network(ip_range)
        except ValueError:
            return f"ip_range {ip_range!r} is not a valid IPv4 CIDR block."
        if not any(net.subnet_of(p) for p in RFC1918) or not 16 <= net.prefixlen <= 28:
            return f"ip_range {ip_range} must be a private (RFC 1918) range between /16 and /28."
        for other in self.vpcs.values():
            if net.overlaps(ipaddress.IPv4Network(other.ip_range)):
                return f"ip_range {ip_range} overlaps with the VPC {other.name} ({other.ip_range})."
        return None

    def _get_vpcs(self, request: Request, body: Any) -> Response:
        return page(request, self.url, "vpcs", [self._vpc_json(v) for v in self.vpcs.values()])

    def _get_vpcs_id(self, request: Request, body: Any, vpc_id: str) -> Response:
        vpc = self.vpcs.get(vpc_id)
        return Response(200, {"vpc": self._vpc_json(vpc)}) if vpc else not_found()

    def _members(self, vpc: _Vpc) -> list[dict[str, Any]]:
        live = [(d.id, d.name, iso(d.created_at)) for d in self.droplets.values() if d.vpc_uuid == vpc.id]
        gone = [(i, name, created) for i, (_, name, created) in vpc.gone_members.items()]
        balancers = [{"urn": f"do:loadbalancer:{lb['id']}", "name": lb["name"], "created_at": lb["created_at"]}
                     for lb in self.balancers.values() if lb["vpc_uuid"] == vpc.id]
        return [{"urn": f"do:droplet:{i}", "name": n, "created_at": c} for i, n, c in live + gone] + balancers

    def _get_vpcs_id_members(self, request: Request, body: Any, vpc_id: str) -> Response:
        vpc = self.vpcs.get(vpc_id)
        return page(request, self.url, "members", self._members(vpc)) if vpc else not_found()

    def _delete_vpcs_id(self, request: Request, body: Any, vpc_id: str) -> Response:
        vpc = self.vpcs.get(vpc_id)
        if vpc is None:
            return not_found()
        if vpc.default:
            return error(403, "forbidden", "Can not delete default VPC.")
        if self._members(vpc):
            return error(403, "forbidden", "Can not delete VPC with members.")
        del self.vpcs[vpc_id]
        return Response(204)

    # --- SSH keys ----------------------------------------------------------------------

    def _post_account_keys(self, request: Request, body: dict[str, Any]) -> Response:
        refused = catalog.public_key_refusal(body["public_key"])
        if refused:
            return unprocessable(refused)
        fp = fingerprint(body["public_key"])
        if any(k["fingerprint"] == fp for k in self.keys.values()):
            return unprocessable("SSH Key is already in use on your account.")
        key = {"id": next(self._ids), "fingerprint": fp, "public_key": body["public_key"], "name": body["name"]}
        self.keys[key["id"]] = key
        return Response(201, {"ssh_key": key})

    def _get_account_keys(self, request: Request, body: Any) -> Response:
        return page(request, self.url, "ssh_keys", list(self.keys.values()))

    def _key(self, ident: str) -> dict[str, Any] | None:
        return next((k for k in self.keys.values() if ident in (str(k["id"]), k["fingerprint"])), None)

    def _get_account_keys_id(self, request: Request, body: Any, ident: str) -> Response:
        key = self._key(ident)
        return Response(200, {"ssh_key": key}) if key else not_found()

    def _delete_account_keys_id(self, request: Request, body: Any, ident: str) -> Response:
        key = self._key(ident)
        if key is None:
            return not_found()
        del self.keys[key["id"]]
        return Response(204)

_SANDBOX_VIEWS = {"/_emulator/load-balancers": "balancers_for_sandbox", "/_emulator/dns-zones": "zones_for_sandbox"}
_UNKNOWN_ROUTE = "in the OpenAPI description"  # "no such path in ...", "method not in ..."
_HOSTNAME_MESSAGE = "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)"
_REQUIRED = {
    "_post_tags": ("name",), "_post_firewalls": ("name",), "_put_firewalls_id": ("name",),
    "_post_account_keys": ("name", "public_key"), "_post_vpcs": ("name", "region"),
    "_post_droplets": ("size", "image"), "_post_load_balancers": ("name", "forwarding_rules"),
    "_put_load_balancers_id": ("name", "forwarding_rules"), "_post_load_balancers_id_forwarding_rules": (
        "forwarding_rules",), "_post_domains": ("name",), "_put_domains_id_records_id": ("type",),
}
