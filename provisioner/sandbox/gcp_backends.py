"""The GCP emulator's backend-service side of external passthrough load balancing: unmanaged
zonal instance groups (addInstances, removeInstances, listInstances: members live), regional
health checks (type HTTP, TCP) and regional backend services (EXTERNAL, TCP or UDP, one health
check, instance-group backends in CONNECTION mode). Forwarding rules to a backend service are
gcp_balancing's. Refused as the API refuses them: an instance of another zone or network in a
group, a backend service without its health check or with a balancing mode passthrough does
not take, deleting what another resource still uses (resourceInUseByAnotherResource).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .emulator import Request, Response
from .gcp_common import ApiError, fingerprint, in_project, link, not_found, rel, timestamp, valid_name
from .gcp_state import GcpState, rel_of

HEALTH_CHECK_TYPES = {"HTTP": "httpHealthCheck", "TCP": "tcpHealthCheck"}


def in_use(kind: str, key: str, user: str) -> ApiError:
    """The API's refusal to delete `key` while `user` uses it."""
    return ApiError(400, "resourceInUseByAnotherResource",
                    f"The {kind} resource '{key}' is already being used by '{user}'")


class BackendsApi(GcpState):
    """Handlers of compute.instanceGroups.*, compute.regionHealthChecks.* and
    compute.regionBackendServices.*."""

    def backend_handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        def scoped(table: Callable[[], dict[str, dict[str, Any]]], kind: str) -> Callable[..., Response]:
            return lambda r, p: self._list(r, [v for k, v in table().items() if k.startswith(rel_of(r) + "/")], kind)

        return {
            "compute.instanceGroups.insert": self._group_insert,
            "compute.instanceGroups.get": lambda r, p: Response(200, self._group_view(self._group(rel_of(r)))),
            "compute.instanceGroups.list": lambda r, p: self._list(
                r, [self._group_view(g) for k, g in self._store.instance_groups.items()
                    if k.startswith(rel_of(r) + "/")], "compute#instanceGroupList"),
            "compute.instanceGroups.delete": self._group_delete,
            "compute.instanceGroups.addInstances": lambda r, p: self._group_members(r, p, add=True),
            "compute.instanceGroups.removeInstances": lambda r, p: self._group_members(r, p, add=False),
            "compute.instanceGroups.listInstances": self._group_list_instances,
            "compute.regionHealthChecks.insert": self._check_insert,
            "compute.regionHealthChecks.get": lambda r, p: self._get(self._store.region_health_checks, rel_of(r)),
            "compute.regionHealthChecks.list": scoped(lambda: self._store.region_health_checks,
                                                      "compute#healthCheckList"),
            "compute.regionHealthChecks.update": self._check_update,
            "compute.regionHealthChecks.delete": self._check_delete,
            "compute.regionBackendServices.insert": self._service_insert,
            "compute.regionBackendServices.get": lambda r, p: self._get(self._store.backend_services, rel_of(r)),
            "compute.regionBackendServices.list": scoped(lambda: self._store.backend_services,
                                                         "compute#backendServiceList"),
            "compute.regionBackendServices.update": self._service_update,
            "compute.regionBackendServices.delete": self._service_delete,
        }

    # --- instance groups ---------------------------------------------------------------

    def _group(self, key: str) -> dict[str, Any]:
        group = self._store.instance_groups.get(key)
        if group is None:
            raise not_found(key)
        return group

    def _group_view(self, group: dict[str, Any]) -> dict[str, Any]:
        members = [m for m in group["_members"] if rel(m) in self._store.instances]  # a deleted VM leaves
        return {**{k: v for k, v in group.items() if not k.startswith("_")}, "size": len(members)}

    def _group_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/zones/{p['zone']}/instanceGroups/{name}"
        if key in self._store.instance_groups:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        group = {**body, "kind": "compute#instanceGroup", "id": str(next(self._ids)), "name": name,
                 "creationTimestamp": timestamp(), "selfLink": link(key),
                 "zone": link(f"projects/{p['project']}/zones/{p['zone']}"), "_members": []}
        if body.get("network"):
            network = in_project(p["project"], body["network"])
            if network not in self._store.networks:
                raise ApiError(400, "invalid", f"The resource '{network}' was not found")
            group["network"] = link(network)
        group["fingerprint"] = fingerprint(group.get("namedPorts"))
        self._store.instance_groups[key] = group
        op = self._operation(p["project"], "zones", p["zone"], "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _group_members(self, request: Request, p: dict[str, str], *, add: bool) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request).rsplit("/", 1)[0]
        group = self._group(key)
        refs = [in_project(p["project"], (r or {}).get("instance", "")) for r in (request.json() or {}).get(
            "instances", [])]
        if add:
            for ref in refs:
                inst = self._store.instances.get(ref)
                if inst is None:
                    raise ApiError(400, "invalid", f"The resource '{ref}' was not found")
                if f"/zones/{p['zone']}/" not in f"/{ref}":
                    raise ApiError(400, "invalid", f"Instance '{ref}' is not in zone '{p['zone']}' of the group")
                network = rel(inst.body["networkInterfaces"][0].get("network", ""))
                group.setdefault("network", link(network))
                if rel(group["network"]) != network:
                    raise ApiError(400, "invalid", f"Instance '{ref}' is not in network '{rel(group['network'])}' "
                                                   "of the instance group")
                if link(ref) in group["_members"]:
                    raise ApiError(400, "memberAlreadyExists", f"The resource '{ref}' is already a member of "
                                                               f"'{key}'")
                group["_members"].append(link(ref))
        else:
            group["_members"] = [m for m in group["_members"] if rel(m) not in refs]
        verb = "addInstances" if add else "removeInstances"
        op = self._operation(p["project"], "zones", p["zone"], verb, key, None, request.arg("requestId"),
                             target_id=group["id"])
        return self._op_reply(op)

    def _group_list_instances(self, request: Request, p: dict[str, str]) -> Response:
        group = self._group(rel_of(request).rsplit("/", 1)[0])
        items = [{"instance": m, "status": "RUNNING", "name": m.rsplit("/", 1)[-1]}
                 for m in group["_members"] if rel(m) in self._store.instances]
        page, following = self._page(request, items)
        body: dict[str, Any] = {"kind": "compute#instanceGroupsListInstances", "id": rel_of(request),
                                "items": [{k: v for k, v in i.items() if k != "name"} for i in page],
                                "selfLink": link(rel_of(request))}
        if following:
            body["nextPageToken"] = following
        return Response(200, body)

    def _group_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        group = self._group(key)
        users = [k for k, s in self._store.backend_services.items()
                 if any(rel(b.get("group", "")) == key for b in s.get("backends", []))]
        if users:
            raise in_use("instanceGroup", key, users[0])
        del self._store.instance_groups[key]
        op = self._operation(p["project"], "zones", p["zone"], "delete", key, None, request.arg("requestId"),
                             target_id=group["id"])
        return self._op_reply(op)

    # --- regional health checks --------------------------------------------------------

    def _check_body(self, body: dict[str, Any], key: str, name: str, region: str) -> dict[str, Any]:
        kind = body.get("type")
        if kind not in HEALTH_CHECK_TYPES:
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.type': '{kind}'. "
                                           f"Must be one of {sorted(HEALTH_CHECK_TYPES)} here.")
        spec = dict(body.get(HEALTH_CHECK_TYPES[kind]) or {})
        port = int(spec.get("port", 80))
        if not 1 <= port <= 65535:
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.{HEALTH_CHECK_TYPES[kind]}.port': "
                                           f"'{port}'. Must be greater than or equal to 1")
        spec["port"] = port
        if kind == "HTTP":
            path = spec.setdefault("requestPath", "/")
            if not str(path).startswith("/"):
                raise ApiError(400, "invalid", f"Invalid value for field 'resource.httpHealthCheck.requestPath': "
                                               f"'{path}'.")
            spec.setdefault("proxyHeader", "NONE")
        return {"checkIntervalSec": 5, "timeoutSec": 5, "healthyThreshold": 2, "unhealthyThreshold": 2, **body,
                HEALTH_CHECK_TYPES[kind]: spec, "kind": "compute#healthCheck", "name": name, "selfLink": link(key),
                "region": link(key.split("/healthChecks/")[0])}

    def _check_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/regions/{p['region']}/healthChecks/{name}"
        if key in self._store.region_health_checks:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        self._store.region_health_checks[key] = {**self._check_body(body, key, name, p["region"]),
                                                 "id": str(next(self._ids)), "creationTimestamp": timestamp()}
        op = self._operation(p["project"], "regions", p["region"], "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _check_update(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        old = self._store.region_health_checks.get(key)
        if old is None:
            raise not_found(key)
        body = request.json()
        if body.get("name", p["healthCheck"]) != p["healthCheck"]:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.name': the name cannot change")
        self._store.region_health_checks[key] = {**self._check_body(body, key, p["healthCheck"], p["region"]),
                                                 "id": old["id"], "creationTimestamp": old["creationTimestamp"]}
        op = self._operation(p["project"], "regions", p["region"], "update", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _check_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        check = self._store.region_health_checks.get(key)
        if check is None:
            raise not_found(key)
        users = [k for k, s in self._store.backend_services.items() if key in map(rel, s.get("healthChecks", []))]
        if users:
            raise in_use("healthCheck", key, users[0])
        del self._store.region_health_checks[key]
        op = self._operation(p["project"], "regions", p["region"], "delete", key, None, request.arg("requestId"),
                             target_id=check["id"])
        return self._op_reply(op)

    # --- regional backend services -----------------------------------------------------

    def _service_body(self, p: dict[str, str], body: dict[str, Any], key: str, name: str) -> dict[str, Any]:
        scheme = body.get("loadBalancingScheme", "EXTERNAL")
        if scheme != "EXTERNAL":
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.loadBalancingScheme': '{scheme}'. "
                                           "The emulator serves external passthrough load balancing only.")
        protocol = body.get("protocol", "TCP")
        if protocol not in ("TCP", "UDP", "UNSPECIFIED"):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.protocol': '{protocol}'. "
                                           "An external passthrough backend service takes TCP, UDP or UNSPECIFIED.")
        checks = [in_project(p["project"], c) for c in body.get("healthChecks", [])]
        if len(checks) != 1:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.healthChecks': exactly one health "
                                           "check is required.")
        if checks[0] not in self._store.region_health_checks:
            raise ApiError(400, "invalid", f"The resource '{checks[0]}' was not found")
        backends = []
        for i, backend in enumerate(body.get("backends", [])):
            group = in_project(p["project"], backend.get("group", ""))
            if group not in self._store.instance_groups:
                raise ApiError(400, "invalid", f"The resource '{group}' was not found")
            mode = backend.get("balancingMode", "CONNECTION")
            if mode != "CONNECTION":
                raise ApiError(400, "invalid", f"Invalid value for field 'resource.backends[{i}].balancingMode': "
                                               f"'{mode}'. Passthrough load balancing takes CONNECTION.")
            backends.append({**backend, "group": link(group), "balancingMode": mode})
        service = {"sessionAffinity": "NONE", "connectionDraining": {"drainingTimeoutSec": 0}, **body,
                   "kind": "compute#backendService", "name": name, "selfLink": link(key),
                   "region": link(f"projects/{p['project']}/regions/{p['region']}"), "loadBalancingScheme": scheme,
                   "protocol": protocol, "healthChecks": [link(checks[0])], "backends": backends}
        service["fingerprint"] = fingerprint({k: v for k, v in service.items() if k != "fingerprint"})
        return service

    def _service_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/regions/{p['region']}/backendServices/{name}"
        if key in self._store.backend_services:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        self._store.backend_services[key] = {**self._service_body(p, body, key, name), "id": str(next(self._ids)),
                                             "creationTimestamp": timestamp()}
        op = self._operation(p["project"], "regions", p["region"], "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _service_update(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        old = self._store.backend_services.get(key)
        if old is None:
            raise not_found(key)
        body = request.json()
        if body.get("fingerprint") and body["fingerprint"] != old["fingerprint"]:
            raise ApiError(412, "conditionNotMet", "Supplied fingerprint does not match current fingerprint.")
        self._store.backend_services[key] = {
            **self._service_body(p, {k: v for k, v in body.items() if k != "fingerprint"}, key, p["backendService"]),
            "id": old["id"], "creationTimestamp": old["creationTimestamp"]}
        op = self._operation(p["project"], "regions", p["region"], "update", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _service_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        service = self._store.backend_services.get(key)
        if service is None:
            raise not_found(key)
        users = [k for k, rule in self._store.forwarding_rules.items() if rel(rule.get("backendService", "")) == key]
        if users:
            raise in_use("backendService", key, users[0])
        del self._store.backend_services[key]
        op = self._operation(p["project"], "regions", p["region"], "delete", key, None, request.arg("requestId"),
                             target_id=service["id"])
        return self._op_reply(op)

    # --- the sandbox's view ------------------------------------------------------------

    def service_members(self, service_key: str) -> tuple[dict[str, Any] | None, list[str]]:
        """A backend service's health check (port, path) and its instances' keys."""
        service = self._store.backend_services.get(service_key)
        if service is None:
            return None, []
        check = self._store.region_health_checks.get(rel(service["healthChecks"][0]))
        health = None
        if check is not None:
            spec = check.get(HEALTH_CHECK_TYPES[check["type"]], {})
            health = {"port": spec.get("port"), "path": spec.get("requestPath") if check["type"] == "HTTP" else None}
        members = [rel(m) for b in service["backends"]
                   for m in self._store.instance_groups.get(rel(b["group"]), {}).get("_members", [])]
        return health, members
