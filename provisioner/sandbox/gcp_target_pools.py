"""The GCP emulator's target-pool kind of external passthrough load balancing: legacy HTTP
health checks (global httpHealthChecks: insert, get, list, update, delete) and target pools
(insert, get, list, delete, addInstance/removeInstance live, one health check at most), as the
API refuses them (an instance or health check that does not exist, deleting what a forwarding
rule or a pool still uses). Forwarding rules and addresses are gcp_balancing's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .emulator import Request, Response
from .gcp_backends import in_use
from .gcp_common import ApiError, in_project, link, not_found, rel, timestamp, valid_name
from .gcp_state import GcpState, rel_of


class TargetPoolsApi(GcpState):
    """Handlers of compute.httpHealthChecks.* and compute.targetPools.*."""

    def target_pool_handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        return {
            "compute.httpHealthChecks.insert": self._health_check_insert,
            "compute.httpHealthChecks.get": lambda r, p: self._get(self._store.health_checks, rel_of(r)),
            "compute.httpHealthChecks.list": lambda r, p: self._list(
                r, self._store.health_checks.values(), "compute#httpHealthCheckList"),
            "compute.httpHealthChecks.update": self._health_check_update,
            "compute.httpHealthChecks.delete": self._health_check_delete,
            "compute.targetPools.insert": self._pool_insert,
            "compute.targetPools.get": lambda r, p: self._get(self._store.target_pools, rel_of(r)),
            "compute.targetPools.list": lambda r, p: self._list(
                r, [v for k, v in self._store.target_pools.items() if k.startswith(rel_of(r) + "/")],
                "compute#targetPoolList"),
            "compute.targetPools.delete": self._pool_delete,
            "compute.targetPools.addInstance": lambda r, p: self._pool_members(r, p, add=True),
            "compute.targetPools.removeInstance": lambda r, p: self._pool_members(r, p, add=False),
        }

    # --- HTTP health checks (legacy, global) -------------------------------------------

    def _health_check_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/global/httpHealthChecks/{name}"
        if key in self._store.health_checks:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        self._store.health_checks[key] = self._health_check_body(body, key, name)
        op = self._operation(p["project"], "global", None, "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _health_check_update(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        old = self._store.health_checks.get(key)
        if old is None:
            raise not_found(key)
        body = request.json()
        if body.get("name", p["httpHealthCheck"]) != p["httpHealthCheck"]:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.name': the name cannot change")
        self._store.health_checks[key] = {**self._health_check_body(body, key, p["httpHealthCheck"]),
                                          "id": old["id"], "creationTimestamp": old["creationTimestamp"]}
        op = self._operation(p["project"], "global", None, "update", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _health_check_body(self, body: dict[str, Any], key: str, name: str) -> dict[str, Any]:
        port = int(body.get("port", 80))
        if not 1 <= port <= 65535:
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.port': '{port}'. "
                                           "Must be greater than or equal to 1")
        path = body.get("requestPath", "/")
        if not str(path).startswith("/"):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.requestPath': '{path}'.")
        return {
            "checkIntervalSec": 5, "timeoutSec": 5, "healthyThreshold": 2, "unhealthyThreshold": 2, **body,
            "kind": "compute#httpHealthCheck", "id": str(next(self._ids)), "creationTimestamp": timestamp(),
            "name": name, "port": port, "requestPath": path, "selfLink": link(key),
        }

    def _health_check_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        check = self._store.health_checks.get(key)
        if check is None:
            raise not_found(key)
        users = [k for k, pool in self._store.target_pools.items() if key in map(rel, pool.get("healthChecks", []))]
        if users:
            raise in_use("httpHealthCheck", key, users[0])
        del self._store.health_checks[key]
        op = self._operation(p["project"], "global", None, "delete", key, None, request.arg("requestId"),
                             target_id=check["id"])
        return self._op_reply(op)

    # --- target pools ------------------------------------------------------------------

    def _instance_refs(self, project: str, refs: list[Any]) -> list[str]:
        links = []
        for ref in refs:
            key = in_project(project, ref if isinstance(ref, str) else (ref or {}).get("instance", ""))
            if key not in self._store.instances:
                raise ApiError(400, "invalid", f"The resource '{key}' was not found")
            links.append(link(key))
        return links

    def _pool_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/regions/{p['region']}/targetPools/{name}"
        if key in self._store.target_pools:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        checks = [in_project(p["project"], c) for c in body.get("healthChecks", [])]
        if len(checks) > 1:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.healthChecks': a target pool takes "
                                           "at most one health check.")
        for check in checks:
            if check not in self._store.health_checks:
                raise ApiError(400, "invalid", f"The resource '{check}' was not found")
        self._store.target_pools[key] = {
            "sessionAffinity": "NONE", **body, "kind": "compute#targetPool", "id": str(next(self._ids)),
            "creationTimestamp": timestamp(), "name": name, "selfLink": link(key),
            "region": link(f"projects/{p['project']}/regions/{p['region']}"),
            "healthChecks": [link(c) for c in checks],
            "instances": self._instance_refs(p["project"], body.get("instances", [])),
        }
        op = self._operation(p["project"], "regions", p["region"], "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _pool_members(self, request: Request, p: dict[str, str], *, add: bool) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request).rsplit("/", 1)[0]
        pool = self._store.target_pools.get(key)
        if pool is None:
            raise not_found(key)
        refs = (request.json() or {}).get("instances", [])
        if add:
            wanted = self._instance_refs(p["project"], refs)
            pool["instances"] = pool["instances"] + [i for i in wanted if i not in pool["instances"]]
        else:
            gone = {link(in_project(p["project"], (r or {}).get("instance", ""))) for r in refs}
            pool["instances"] = [i for i in pool["instances"] if i not in gone]
        kind = "addInstance" if add else "removeInstance"
        op = self._operation(p["project"], "regions", p["region"], kind, key, None, request.arg("requestId"),
                             target_id=pool["id"])
        return self._op_reply(op)

    def _pool_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        pool = self._store.target_pools.get(key)
        if pool is None:
            raise not_found(key)
        users = [k for k, rule in self._store.forwarding_rules.items() if rel(rule.get("target", "")) == key]
        if users:
            raise in_use("targetPool", key, users[0])
        del self._store.target_pools[key]
        op = self._operation(p["project"], "regions", p["region"], "delete", key, None, request.arg("requestId"),
                             target_id=pool["id"])
        return self._op_reply(op)
