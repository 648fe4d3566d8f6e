"""The GCP emulator's resources and the machinery every handler uses: operations that finish
on their own clock, requestId replays, and paged, filtered lists in the API's envelopes."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import gcp_catalog, gcp_discovery
from .emulator import AddressPool, Request, Response
from .gcp_common import ApiError, compile_filter, link, not_found, timestamp

MAX_PAGE = 500


@dataclass
class Op:
    body: dict[str, Any]
    done_at: float
    on_done: Callable[[], None] | None = None
    error: dict[str, Any] | None = None  # {code, message, status} of an operation that fails


@dataclass
class Instance:
    body: dict[str, Any]
    staging_at: float
    running_at: float
    deleting: bool = False
    created_at: float = field(default_factory=time.time)  # unix time of the insert


@dataclass
class Store:
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # key: relative link
    subnetworks: dict[str, dict[str, Any]] = field(default_factory=dict)
    firewalls: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    disks: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, Op] = field(default_factory=dict)  # key: relative link
    pending: list[Op] = field(default_factory=list)  # operations not DONE yet
    request_ids: dict[str, str] = field(default_factory=dict)  # requestId -> operation link
    private_pools: dict[str, AddressPool] = field(default_factory=dict)
    # load balancing (gcp_balancing), keyed by relative link like the rest
    addresses: dict[str, dict[str, Any]] = field(default_factory=dict)
    health_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    target_pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    forwarding_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    instance_groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # gcp_backends
    region_health_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    backend_services: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Cloud DNS (gcp_dns): zone key `project/name` -> zone, its record sets, its changes
    dns_zones: dict[str, dict[str, Any]] = field(default_factory=dict)
    dns_records: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)
    dns_changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def rel_of(request: Request) -> str:
    """The request's path as a relative resource link (`projects/...`)."""
    return request.path.removeprefix(gcp_discovery.SERVICE_PREFIX)


class GcpState:
    """Resources, operations and lists; the emulator's handler mixins build on it."""

    lock: threading.RLock
    op_delay: tuple[float, float]
    _store: Store
    _random: random.Random
    _ids: Iterator[int]

    # --- operations --------------------------------------------------------------------

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
            op.body.update(status="DONE", progress=100, endTime=timestamp())
            if op.error:
                op.body["error"] = {"errors": [{"code": op.error["code"], "message": op.error["message"]}]}
                op.body["httpErrorStatusCode"] = op.error["status"]
                op.body["httpErrorMessage"] = "FORBIDDEN" if op.error["status"] == 403 else "BAD REQUEST"
            elif op.on_done:
                op.on_done()

    def _operation(self, project: str, scope_kind: str, scope: str | None, kind: str, target: str,
                   on_done: Callable[[], None] | None, request_id: str | None,
                   target_id: str | None = None) -> Op:
        """A RUNNING operation on `target` that finishes (running `on_done`) after op_delay."""
        oid = next(self._ids)
        name = f"operation-{oid}-{self._random.getrandbits(48):012x}"
        where = f"projects/{project}/global" if scope_kind == "global" else f"projects/{project}/{scope_kind}/{scope}"
        op_link = f"{where}/operations/{name}"
        now = timestamp()
        body: dict[str, Any] = {
            "kind": "compute#operation", "id": str(oid), "name": name, "operationType": kind,
            "targetLink": link(target), "status": "RUNNING", "progress": 0, "insertTime": now, "startTime": now,
            "selfLink": link(op_link), "user": "cast-emulator@example.com",
        }
        target_id = target_id or self._target_id(target)
        if target_id:
            body["targetId"] = target_id  # as the API sets it: the resource's numeric id
        if scope_kind == "zones":
            body["zone"] = link(f"projects/{project}/zones/{scope}")
        elif scope_kind == "regions":
            body["region"] = link(f"projects/{project}/regions/{scope}")
        op = Op(body, time.monotonic() + self._delay(), on_done)
        self._store.operations[op_link] = op
        self._store.pending.append(op)
        if request_id:
            self._store.request_ids[request_id] = op_link
        return op

    def _target_id(self, target: str) -> str | None:
        for kind in (self._store.networks, self._store.subnetworks, self._store.firewalls, self._store.disks,
                     self._store.addresses, self._store.health_checks, self._store.target_pools,
                     self._store.forwarding_rules, self._store.instance_groups,
                     self._store.region_health_checks, self._store.backend_services):
            if target in kind:
                return str(kind[target]["id"])
        instance = self._store.instances.get(target)
        return str(instance.body["id"]) if instance else None

    def _replayed(self, request: Request) -> Response | None:
        """The first reply again when a mutation is retried with the same requestId."""
        op_link = self._store.request_ids.get(request.arg("requestId") or "")
        return Response(200, dict(self._store.operations[op_link].body)) if op_link else None

    def _op_reply(self, op: Op) -> Response:
        return Response(200, dict(op.body))

    def _op_get(self, request: Request, p: dict[str, str]) -> Response:
        op_link = rel_of(request).removesuffix("/wait")
        op = self._store.operations.get(op_link)
        if op is None:
            raise not_found(op_link)
        return self._op_reply(op)

    def _op_list(self, request: Request, p: dict[str, str]) -> Response:
        prefix = rel_of(request) + "/"
        items = [dict(op.body) for key, op in self._store.operations.items() if key.startswith(prefix)]
        return self._list(request, items, "compute#operationList")

    # --- lists -------------------------------------------------------------------------

    def _page(self, request: Request, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
        flt = request.arg("filter")
        if flt:
            match = compile_filter(flt)
            items = [i for i in items if match(i)]
        items.sort(key=lambda i: i["name"])
        size = min(int(request.arg("maxResults") or MAX_PAGE), MAX_PAGE) or MAX_PAGE
        token = request.arg("pageToken")
        if token and not token.isdigit():
            raise ApiError(400, "invalid", f"Invalid value for pageToken: {token!r}")
        start = int(token) if token else 0
        page = items[start : start + size]
        following = str(start + size) if start + size < len(items) else None
        return page, following

    def _list(self, request: Request, items: Iterable[dict[str, Any]], kind: str) -> Response:
        """A list envelope as the API sends it: kind, id (the collection's path), items, selfLink."""
        page, following = self._page(request, list(items))
        where = rel_of(request)
        body: dict[str, Any] = {"kind": kind, "id": where, "items": page, "selfLink": link(where)}
        if following:
            body["nextPageToken"] = following
        return Response(200, body)

    def _aggregated(self, request: Request, project: str, items: list[dict[str, Any]], kind: str,
                    field_name: str, *, scope_kind: str = "zone", names: Iterable[str] | None = None) -> Response:
        """An aggregatedList: every scope (`scope_kind` "zone": every zone; "region": every
        region of `names`), those without items on this page with the API's NO_RESULTS_ON_PAGE
        warning."""
        page, following = self._page(request, items)
        scopes: dict[str, dict[str, Any]] = {}
        for name in names if names is not None else gcp_catalog.zones():
            scope = f"{scope_kind}s/{name}"
            found = [i for i in page if i[scope_kind].rsplit("/", 1)[-1] == name]
            scopes[scope] = {field_name: found} if found else {"warning": {
                "code": "NO_RESULTS_ON_PAGE", "message": f"There are no results for scope '{scope}' on this page.",
                "data": [{"key": "scope", "value": scope}]}}
        where = f"projects/{project}/aggregated/{field_name}"
        body: dict[str, Any] = {"kind": kind, "id": where, "items": scopes, "selfLink": link(where)}
        if following:
            body["nextPageToken"] = following
        return Response(200, body)

    def _regional_aggregated(self, request: Request, project: str, table: dict[str, dict[str, Any]], kind: str,
                             field_name: str) -> Response:
        """An aggregatedList of a regional collection (`table`): every region scope."""
        items = [v for k, v in table.items() if k.startswith(f"projects/{project}/")]
        return self._aggregated(request, project, items, kind, field_name, scope_kind="region",
                                names=sorted(gcp_catalog.ZONE_LETTERS))

    @staticmethod
    def _get(table: dict[str, dict[str, Any]], key: str) -> Response:
        if key not in table:
            raise not_found(key)
        return Response(200, table[key])
