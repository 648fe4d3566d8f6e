"""A DigitalOcean API emulator on loopback: the subset of /v2/ cast uses, behaving like the
real API where cast depends on it.

- VPCs (create, get, list, delete, members). A create whose ip_range overlaps another VPC of
  the account, or is not a private (RFC 1918) range of /16 to /28, gets 422. A delete while
  the VPC has members gets 403 (as the description documents); a deleted droplet stays a
  member for `member_linger_s`, as on the real API.
- SSH keys, tags, droplets (several at once by `names`; list by `tag_name` with
  per_page/page and `links.pages`; delete one or by tag), firewalls (create, get, list,
  update, delete; target tags must exist), actions, account.
- A droplet is `new` for `boot_delay_s` (per name with `slow_boot`), then `active` with a
  public IPv4 from its public pool (198.18.3.0/24 unless given another; see pools.py) and a
  private one inside its VPC.
- Errors are `{"id", "message"}` with rate-limit headers; 429 carries Retry-After.
  Faults through the base class's control endpoint: throttle (429), unavailable (503) and
  quota (422 on droplet create). `droplet_limit` also refuses creates past the limit.
- Every request is checked against DigitalOcean's OpenAPI description (do_openapi) when it is
  on this machine: a violation is answered 400 and recorded in `errors`.
- Extra control route: POST /_emulator/boot {"match": "name-substring", "seconds": s}.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

from ..keys import md5_fingerprint
from .do_openapi import OpenApiChecker, default_checker
from .emulator import AddressPool, EmulatedVm, EmulatorServer, Request, Response
from .pools import DEFAULT_POOLS

PUBLIC_POOL = DEFAULT_POOLS["digitalocean"]
RATE_LIMIT = 5000
RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


@dataclass
class _Droplet:
    id: int
    name: str
    region: str
    size: str
    image: str
    vpc_uuid: str
    tags: list[str]
    user_data: str
    ssh_keys: list[str]  # public keys
    created_at: float  # unix time
    active_at: float  # monotonic
    public_ip: str | None = None
    private_ip: str | None = None
    netmask: str = ""

    @property
    def active(self) -> bool:
        return self.public_ip is not None


@dataclass
class _Vpc:
    id: str
    name: str
    region: str
    ip_range: str
    description: str = ""
    hosts: Any = None  # iterator of private addresses
    gone_members: dict[int, float] = field(default_factory=dict)  # droplet id -> until


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, ident: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"id": ident, "message": message, "request_id": str(uuid.uuid4())}, headers or {})


def _not_found() -> Response:
    return _error(404, "not_found", "The resource you were accessing could not be found.")


def fingerprint(public_key: str) -> str:
    """The MD5 fingerprint DigitalOcean shows for a public key (colon-separated hex)."""
    return md5_fingerprint(public_key)


class DigitalOceanEmulator(EmulatorServer):
    """The emulator. `account_vpcs` pre-seeds the account with (name, region, ip_range)
    VPCs that survive `reset`; `token`, when given, is the only bearer token accepted."""

    cloud = "digitalocean"

    def __init__(
        self,
        *,
        account_vpcs: Sequence[tuple[str, str, str]] = (),
        boot_delay_s: float = 0.05,
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
        self.boot_delay_s = boot_delay_s
        self.member_linger_s = member_linger_s
        self.droplet_limit = droplet_limit
        self.retry_after_s = retry_after_s
        self.token = token
        self.public_pool = public_pool
        self.public_gateway = str(next(ipaddress.IPv4Network(public_pool).hosts()))
        self.checker: OpenApiChecker | None = default_checker() if checker is True else (checker or None)
        self.errors: list[str] = []  # OpenAPI violations seen
        self._slow: dict[str, float] = {}
        self._remaining = RATE_LIMIT
        self._clear()

    # --- state -------------------------------------------------------------------------

    def _clear(self) -> None:
        self.vpcs: dict[str, _Vpc] = {}
        self.keys: dict[int, dict[str, Any]] = {}
        self.tags: set[str] = set()
        self.droplets: dict[int, _Droplet] = {}
        self.firewalls: dict[str, dict[str, Any]] = {}
        self.actions: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1001)
        self._public = AddressPool(self.public_pool)
        for name, region, ip_range in self.seed_vpcs:
            self._add_vpc(name, region, ip_range, "pre-seeded")

    def reset(self) -> None:
        super().reset()
        self.errors.clear()
        self._slow.clear()
        self._clear()

    def slow_boot(self, match: str, seconds: float) -> None:
        """Droplets created from now on whose name contains `match` take `seconds` to boot."""
        with self.lock:
            self._slow[match] = seconds

    def _add_vpc(self, name: str, region: str, ip_range: str, description: str) -> _Vpc:
        net = ipaddress.IPv4Network(ip_range)
        vpc = _Vpc(str(uuid.uuid4()), name, region, ip_range, description, iter(list(net.hosts())[1:]))
        self.vpcs[vpc.id] = vpc
        return vpc

    def _advance(self) -> None:
        """Boot droplets whose time has come; forget members that have lingered enough."""
        now = time.monotonic()
        for d in self.droplets.values():
            if not d.active and now >= d.active_at:
                vpc = self.vpcs[d.vpc_uuid]
                d.private_ip = str(next(vpc.hosts))
                d.netmask = str(ipaddress.IPv4Network(vpc.ip_range).netmask)
                d.public_ip = self._public.next()
        for vpc in self.vpcs.values():
            vpc.gone_members = {i: t for i, t in vpc.gone_members.items() if t > now}

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
        return super().route_of(Request(request.method, _fold_ids(request.path), {}, {}, b""))

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
            return _error(429, "too_many_requests", "API Rate limit exceeded.", headers)
        if kind == "quota":
            return _error(422, "unprocessable_entity", _LIMIT_MESSAGE, headers)
        return _error(503, "service_unavailable", "The service is temporarily unavailable.", headers)

    def _control(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/_emulator/boot" and request.method == "POST":
            spec = request.json() or {}
            self.slow_boot(str(spec.get("match", "")), float(spec.get("seconds", 0)))
            return Response(204)
        return super()._control(request)

    def handle(self, request: Request) -> Response:
        with self.lock:
            headers = self._rate_headers()
            response = self._handle(request)
            response.headers = {**headers, **response.headers}
            return response

    def _handle(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.removeprefix("Bearer ").strip() or (self.token is not None and auth != f"Bearer {self.token}"):
            return _error(401, "unauthorized", "Unable to authenticate you.")
        try:
            body = request.json() if request.body else None
        except ValueError:
            return self._violation(f"{request.method} {request.path}: body is not JSON")
        if self.checker is not None:
            problems = self.checker.check(request.method, request.path, request.query, body)
            if problems:
                return self._violation("; ".join(problems))
        self._advance()
        parts = [unquote(p) for p in request.path.split("/") if p][1:]  # without "v2"
        shape = _shape(parts)
        route = getattr(self, f"_{request.method.lower()}_{'_'.join(shape)}", None)
        if route is None:
            return _error(501, "not_implemented", f"the emulator does not implement {request.method} {request.path}")
        return route(request, body or {}, *[p for p, s in zip(parts, shape, strict=True) if s == "id"])

    def _violation(self, message: str) -> Response:
        self.errors.append(message)
        return _error(400, "bad_request", f"OpenAPI check: {message}")

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
            "region": vpc.region, "ip_range": vpc.ip_range, "default": False, "created_at": _now(),
        }

    def _post_vpcs(self, request: Request, body: dict[str, Any]) -> Response:
        ip_range = body.get("ip_range")
        if ip_range is None:
            ip_range = self._free_range()
        problem = self._range_problem(ip_range)
        if problem:
            return _error(422, "unprocessable_entity", problem)
        if any(v.name == body["name"] for v in self.vpcs.values()):
            return _error(422, "unprocessable_entity", "A VPC with this name already exists.")
        vpc = self._add_vpc(body["name"], body["region"], ip_range, body.get("description", ""))
        return Response(201, {"vpc": self._vpc_json(vpc)})

    def _free_range(self) -> str:
        for candidate in ipaddress.IPv4Network("10.0.0.0/8").subnets(new_prefix=20):
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
        return self._page(request, "vpcs", [self._vpc_json(v) for v in self.vpcs.values()])

    def _get_vpcs_id(self, request: Request, body: Any, vpc_id: str) -> Response:
        vpc = self.vpcs.get(vpc_id)
        return Response(200, {"vpc": self._vpc_json(vpc)}) if vpc else _not_found()

    def _members(self, vpc: _Vpc) -> list[dict[str, Any]]:
        live = [(d.id, d.name) for d in self.droplets.values() if d.vpc_uuid == vpc.id]
        gone = [(i, f"deleted-{i}") for i in vpc.gone_members]
        return [{"urn": f"do:droplet:{i}", "name": n, "created_at": _now()} for i, n in live + gone]

    def _get_vpcs_id_members(self, request: Request, body: Any, vpc_id: str) -> Response:
        vpc = self.vpcs.get(vpc_id)
        return self._page(request, "members", self._members(vpc)) if vpc else _not_found()

    def _delete_vpcs_id(self, request: Request, body: Any, vpc_id: str) -> Response:
        vpc = self.vpcs.get(vpc_id)
        if vpc is None:
            return _not_found()
        if self._members(vpc):
            return _error(403, "forbidden", "Can not delete VPC with members.")
        del self.vpcs[vpc_id]
        return Response(204)

    # --- SSH keys ----------------------------------------------------------------------

    def _post_account_keys(self, request: Request, body: dict[str, Any]) -> Response:
        fp = fingerprint(body["public_key"])
        if any(k["fingerprint"] == fp for k in self.keys.values()):
            return _error(422, "unprocessable_entity", "SSH Key is already in use on your account.")
        key = {"id": next(self._ids), "fingerprint": fp, "public_key": body["public_key"], "name": body["name"]}
        self.keys[key["id"]] = key
        return Response(201, {"ssh_key": key})

    def _get_account_keys(self, request: Request, body: Any) -> Response:
        return self._page(request, "ssh_keys", list(self.keys.values()))

    def _key(self, ident: str) -> dict[str, Any] | None:
        return next((k for k in self.keys.values() if ident in (str(k["id"]), k["fingerprint"])), None)

    def _get_account_keys_id(self, request: Request, body: Any, ident: str) -> Response:
        key = self._key(ident)
        return Response(200, {"ssh_key": key}) if key else _not_found()

    def _delete_account_keys_id(self, request: Request, body: Any, ident: str) -> Response:
        key = self._key(ident)
        if key is None:
            return _not_found()
        del self.keys[key["id"]]
        return Response(204)

    # --- tags --------------------------------------------------------------------------

    def _tag_json(self, name: str) -> dict[str, Any]:
        count = sum(1 for d in self.droplets.values() if name in d.tags)
        return {"name": name, "resources": {"count": count, "droplets": {"count": count}}}

    def _post_tags(self, request: Request, body: dict[str, Any]) -> Response:
        self.tags.add(body["name"])
        return Response(201, {"tag": self._tag_json(body["name"])})

    def _get_tags(self, request: Request, body: Any) -> Response:
        return self._page(request, "tags", [self._tag_json(t) for t in sorted(self.tags)])

    def _get_tags_id(self, request: Request, body: Any, name: str) -> Response:
        return Response(200, {"tag": self._tag_json(name)}) if name in self.tags else _not_found()

    def _delete_tags_id(self, request: Request, body: Any, name: str) -> Response:
        if name not in self.tags:
            return _not_found()
        self.tags.discard(name)
        for d in self.droplets.values():
            d.tags = [t for t in d.tags if t != name]
        for fw in self.firewalls.values():
            fw["tags"] = [t for t in fw["tags"] if t != name]
        return Response(204)

    # --- droplets ----------------------------------------------------------------------

    def _droplet_json(self, d: _Droplet) -> dict[str, Any]:
        v4 = []
        if d.active:
            v4 = [
                {"ip_address": d.private_ip, "netmask": d.netmask, "gateway": "", "type": "private"},
                {"ip_address": d.public_ip, "netmask": "255.255.255.0", "gateway": self.public_gateway,
                 "type": "public"},
            ]
        return {
            "id": d.id, "name": d.name, "memory": 4096, "vcpus": 2, "disk": 80, "locked": False,
            "status": "active" if d.active else "new", "created_at": _now(), "features": ["private_networking"],
            "backup_ids": [], "snapshot_ids": [], "volume_ids": [], "next_backup_window": None,
            "image": {"slug": d.image}, "size": {"slug": d.size}, "size_slug": d.size,
            "networks": {"v4": v4, "v6": []}, "region": {"slug": d.region, "name": d.region},
            "tags": list(d.tags), "vpc_uuid": d.vpc_uuid,
        }

    def _post_droplets(self, request: Request, body: dict[str, Any]) -> Response:
        names = body.get("names") or [body.get("name")]
        if len(self.droplets) + len(names) > self.droplet_limit:
            return _error(422, "unprocessable_entity", _LIMIT_MESSAGE)
        vpc = self.vpcs.get(body.get("vpc_uuid", ""))
        if vpc is None or vpc.region != body.get("region"):
            return _error(422, "unprocessable_entity", "vpc_uuid must name a VPC in the droplet's region.")
        keys = [self._key(str(k)) for k in body.get("ssh_keys", [])]
        if any(k is None for k in keys):
            return _error(422, "unprocessable_entity", "One or more of the ssh_keys could not be found.")
        tags = list(body.get("tags") or [])
        self.tags.update(tags)
        now = time.monotonic()
        made = []
        for name in names:
            delay = next((s for m, s in self._slow.items() if m in name), self.boot_delay_s)
            d = _Droplet(
                id=next(self._ids), name=name, region=body["region"], size=body["size"], image=str(body["image"]),
                vpc_uuid=vpc.id, tags=tags, user_data=body.get("user_data", ""),
                ssh_keys=[k["public_key"] for k in keys if k], created_at=time.time(), active_at=now + delay,
            )
            self.droplets[d.id] = d
            made.append(d)
        actions = [self._action("create", d.id, d.region) for d in made]
        links = {"actions": [{"id": a["id"], "rel": "create", "href": f"{self.url}/v2/actions/{a['id']}"}
                             for a in actions]}
        if "names" in body:
            return Response(202, {"droplets": [self._droplet_json(d) for d in made], "links": links})
        return Response(202, {"droplet": self._droplet_json(made[0]), "links": links})

    def _get_droplets(self, request: Request, body: Any) -> Response:
        tag = request.arg("tag_name")
        name = request.arg("name")
        found = [
            d for d in self.droplets.values()
            if (tag is None or tag in d.tags) and (name is None or d.name.lower() == name.lower())
        ]
        return self._page(request, "droplets", [self._droplet_json(d) for d in found])

    def _get_droplets_id(self, request: Request, body: Any, droplet_id: str) -> Response:
        d = self.droplets.get(int(droplet_id))
        return Response(200, {"droplet": self._droplet_json(d)}) if d else _not_found()

    def _forget(self, d: _Droplet) -> None:
        del self.droplets[d.id]
        if d.vpc_uuid in self.vpcs:
            self.vpcs[d.vpc_uuid].gone_members[d.id] = time.monotonic() + self.member_linger_s

    def _delete_droplets_id(self, request: Request, body: Any, droplet_id: str) -> Response:
        d = self.droplets.get(int(droplet_id))
        if d is None:
            return _not_found()
        self._forget(d)
        return Response(204)

    def _delete_droplets(self, request: Request, body: Any) -> Response:
        tag = request.arg("tag_name")
        for d in [d for d in self.droplets.values() if tag in d.tags]:
            self._forget(d)
        return Response(204)

    # --- firewalls ---------------------------------------------------------------------

    def _firewall_from(self, body: dict[str, Any], fw_id: str) -> dict[str, Any] | Response:
        tags = list(body.get("tags") or [])
        missing = [t for t in tags if t not in self.tags]
        if missing:
            return _error(422, "unprocessable_entity", f"tag(s) not found: {', '.join(missing)}")
        return {
            "id": fw_id, "name": body["name"], "status": "succeeded", "created_at": _now(),
            "pending_changes": [], "droplet_ids": list(body.get("droplet_ids") or []), "tags": tags,
            "inbound_rules": list(body.get("inbound_rules") or []),
            "outbound_rules": list(body.get("outbound_rules") or []),
        }

    def _post_firewalls(self, request: Request, body: dict[str, Any]) -> Response:
        fw = self._firewall_from(body, str(uuid.uuid4()))
        if isinstance(fw, Response):
            return fw
        self.firewalls[fw["id"]] = fw
        return Response(202, {"firewall": fw})

    def _get_firewalls(self, request: Request, body: Any) -> Response:
        return self._page(request, "firewalls", list(self.firewalls.values()))

    def _get_firewalls_id(self, request: Request, body: Any, fw_id: str) -> Response:
        fw = self.firewalls.get(fw_id)
        return Response(200, {"firewall": fw}) if fw else _not_found()

    def _put_firewalls_id(self, request: Request, body: dict[str, Any], fw_id: str) -> Response:
        if fw_id not in self.firewalls:
            return _not_found()
        fw = self._firewall_from(body, fw_id)
        if isinstance(fw, Response):
            return fw
        self.firewalls[fw_id] = fw
        return Response(200, {"firewall": fw})

    def _delete_firewalls_id(self, request: Request, body: Any, fw_id: str) -> Response:
        if self.firewalls.pop(fw_id, None) is None:
            return _not_found()
        return Response(204)

    # --- actions -----------------------------------------------------------------------

    def _action(self, kind: str, resource_id: int, region: str) -> dict[str, Any]:
        action: dict[str, Any] = {
            "id": next(self._ids), "status": "completed", "type": kind, "started_at": _now(),
            "completed_at": _now(), "resource_id": resource_id, "resource_type": "droplet",
            "region_slug": region,
        }
        self.actions[action["id"]] = action
        return action

    def _get_actions(self, request: Request, body: Any) -> Response:
        return self._page(request, "actions", list(self.actions.values()))

    def _get_actions_id(self, request: Request, body: Any, action_id: str) -> Response:
        action = self.actions.get(int(action_id))
        return Response(200, {"action": action}) if action else _not_found()

    # --- paging ------------------------------------------------------------------------

    def _page(self, request: Request, key: str, items: list[Any]) -> Response:
        per_page = min(200, max(1, int(request.arg("per_page") or 20)))
        page = max(1, int(request.arg("page") or 1))
        last = max(1, -(-len(items) // per_page))
        body: dict[str, Any] = {key: items[(page - 1) * per_page : page * per_page], "meta": {"total": len(items)}}
        pages: dict[str, str] = {}
        base = {k: v[0] for k, v in request.query.items() if k != "page"}

        def link(n: int) -> str:
            return f"{self.url}{request.path}?{urlencode({**base, 'page': n})}"

        if page > 1:
            pages.update(first=link(1), prev=link(page - 1))
        if page < last:
            pages.update(next=link(page + 1), last=link(last))
        body["links"] = {"pages": pages}
        return Response(200, body)


_LIMIT_MESSAGE = (
    "creating this/these droplet(s) will exceed your droplet limit. "
    "You may request a limit increase at the control panel."
)


def _is_id(segment: str) -> bool:
    if segment.isdigit():
        return True
    try:
        uuid.UUID(segment)
    except ValueError:
        return False
    return True


def _shape(parts: list[str]) -> list[str]:
    """Path segments with ids folded to `id`, giving the handler's name: vpcs/X/members ->
    vpcs_id_members. After tags/ and keys/ any segment is an id (a tag name, a fingerprint)."""
    shaped = []
    for i, p in enumerate(parts):
        before = parts[i - 1] if i else ""
        is_id = before in ("tags", "keys") or (before in _COLLECTIONS and _is_id(p))
        shaped.append("id" if is_id else p)
    return shaped


_COLLECTIONS = ("vpcs", "droplets", "firewalls", "actions")


def _fold_ids(path: str) -> str:
    parts = path.split("/")
    return "/".join("{id}" if s == "id" else p for p, s in zip(parts, ["", *_shape(parts[1:])], strict=True))
