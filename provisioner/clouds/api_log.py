"""Each cloud API request into the command log (provisioner.logs), through each SDK's own hooks.

One record per HTTP attempt: cloud, operation, status, duration in ms and the cloud's request
id; a retry by the SDK is a record of its own (what, the previous attempt's outcome, the wait).
Nothing else is read from a request or a response: never a header but the request id, never a
body, never a query string (the path only, with ids left out where the operation is named
from it).

- AWS: botocore's event system on each client. `request-created` fires before every attempt
  (it stamps the start and, from the second attempt on, records the retry); `needs-retry` fires
  after every attempt, with its response or exception (it records the attempt). The operation
  is botocore's own name: `ec2.RunInstances`.
- Azure (azure-mgmt-*) and DigitalOcean (pydo), both azure-core pipelines: one SansIOHTTPPolicy
  added with `per_retry_policies`, i.e. after azure-core's RetryPolicy, so it sees every attempt.
  azure-core carries no operation name, so it is named from the method and the path:
  `PUT Microsoft.Network/virtualNetworks/subnets`, `POST /v2/droplets/{id}/actions`.
- GCP (google-cloud-compute's REST transport, a google-auth AuthorizedSession, i.e. a requests
  Session): a requests response hook. The GAPIC interceptors would give the method's name but
  are called only for successes, so the name is made from the path the way the API's discovery
  document names its methods: `compute.instances.insert`, `compute.zoneOperations.wait`. A
  request that got no response at all (a connection error) is seen by GcpApi's retry instead.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import logs

# --- AWS: botocore events -------------------------------------------------------------------


# What azure-core imports on a client's first request (its requests transport, requests, and
# what requests reads then): Azure and DigitalOcean (pydo is on azure-core) list them with
# their SDK modules, so that a first call, in a worker thread, imports nothing.
TRANSPORT_MODULES = ("importlib.metadata", "netrc", "shlex", "requests",
                     "azure.core.pipeline.transport._requests_basic", "azure.core.rest._requests_basic",
                     "azure.core.rest._http_response_impl")

def hook_botocore(client: Any, cloud: str = "aws") -> None:
    """Log every attempt of every call `client` (a botocore client) makes."""
    service = client.meta.service_model.service_name

    def started(request: Any, operation_name: str = "", **_: Any) -> None:
        context = request.context
        attempt = context.get("cast_attempt", 0) + 1
        context["cast_attempt"] = attempt
        if attempt > 1 and "cast_ended" in context:
            logs.api_retry(cloud, f"{service}.{operation_name}", context.get("cast_outcome", "?"),
                           logs.elapsed_ms(context["cast_ended"]), attempt)
        context["cast_started"] = time.monotonic()

    def attempted(operation: Any, request_dict: dict[str, Any], response: Any = None,
                  caught_exception: BaseException | None = None, **_: Any) -> None:
        context = request_dict.get("context", {})
        started_at = context.get("cast_started", time.monotonic())
        request_id, error = None, None
        if response is not None:
            http, parsed = response
            status: int | str = http.status_code
            metadata = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
            request_id = metadata.get("RequestId") or http.headers.get("x-amzn-requestid")
            code = (parsed.get("Error") or {}).get("Code") if isinstance(parsed, dict) else None
            error = str(code) if code else None
        else:
            status = type(caught_exception).__name__ if caught_exception is not None else "-"
        logs.api_call(cloud, f"{service}.{operation.name}", status, logs.elapsed_ms(started_at), request_id,
                      attempt=context.get("cast_attempt", 1), error=error)
        context["cast_ended"] = time.monotonic()
        context["cast_outcome"] = f"status={status}" + (f" error={error}" if error else "")

    client.meta.events.register("request-created", started)
    client.meta.events.register("needs-retry", attempted)


# --- Azure and DigitalOcean: an azure-core policy -------------------------------------------


def azure_core_policy(cloud: str) -> Any:
    """A SansIOHTTPPolicy logging every attempt, for `per_retry_policies` of an azure-core based
    client ("azure" or "digitalocean": that names the operations and the request id header).
    One instance serves every client and thread."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    name_of = azure_operation if cloud == "azure" else digitalocean_operation
    id_header = "x-ms-request-id" if cloud == "azure" else "x-request-id"

    class ApiLog(SansIOHTTPPolicy):
        def on_request(self, request: Any) -> None:
            context = request.context
            attempt = context.get("cast_attempt", 0) + 1
            context["cast_attempt"] = attempt
            if attempt > 1 and "cast_ended" in context:
                logs.api_retry(cloud, self._name(request), context.get("cast_outcome", "?"),
                               logs.elapsed_ms(context["cast_ended"]), attempt)
            context["cast_started"] = time.monotonic()

        def on_response(self, request: Any, response: Any) -> None:
            http = response.http_response
            self._record(request, http.status_code, http.headers.get(id_header))

        def on_exception(self, request: Any) -> None:
            error = sys.exc_info()[1]
            self._record(request, type(error).__name__ if error is not None else "-", None)

        @staticmethod
        def _name(request: Any) -> str:
            http = request.http_request
            return name_of(http.method, urlsplit(http.url).path)

        def _record(self, request: Any, status: int | str, request_id: str | None) -> None:
            context = request.context
            logs.api_call(cloud, self._name(request), status,
                          logs.elapsed_ms(context.get("cast_started", time.monotonic())), request_id,
                          attempt=context.get("cast_attempt", 1))
            context["cast_ended"] = time.monotonic()
            context["cast_outcome"] = f"status={status}"

    return ApiLog()


def azure_operation(method: str, path: str) -> str:
    """`PUT Microsoft.Network/virtualNetworks/subnets` for an ARM path: the provider's namespace
    and the resource types, without names, subscription or resource group."""
    parts = [unquote(p) for p in path.split("/") if p]
    lower = [p.lower() for p in parts]
    if "providers" in lower:
        at = len(lower) - 1 - lower[::-1].index("providers")
        namespace, rest = parts[at + 1: at + 2], parts[at + 2:]
        return f"{method} {'/'.join(namespace + rest[0::2])}"
    types = parts[0::2]
    if len(types) > 1 and types[0].lower() == "subscriptions":
        types = types[1:]
    return f"{method} {'/'.join(types) or '/'}"


_ID_LIKE = re.compile(r".*\d")


def digitalocean_operation(method: str, path: str) -> str:
    """`POST /v2/droplets/{id}/actions`: the path with every segment holding a digit (an id,
    an address, a tag with the cluster's UUID) after the version left out."""
    parts = [p for p in path.split("/") if p]
    shown = [p if i == 0 or not _ID_LIKE.match(p) else "{id}" for i, p in enumerate(parts)]
    return f"{method} /{'/'.join(shown)}"


# --- GCP: a requests response hook ----------------------------------------------------------


def hook_requests_session(session: Any, cloud: str = "gcp") -> None:
    """Log every response `session` (a requests Session) receives."""

    def on_response(response: Any, *args: Any, **kwargs: Any) -> Any:
        request = response.request
        ms = round(response.elapsed.total_seconds() * 1000)
        logs.api_call(cloud, gcp_operation(request.method, urlsplit(request.url).path), response.status_code, ms)
        return response

    session.hooks["response"].append(on_response)


# Regional collections whose methods the discovery document names `region<Collection>` (the
# global collection of the same path segment keeps the plain name).
REGIONAL_TWINS = frozenset({"backendServices", "healthChecks", "instanceGroups", "instanceGroupManagers",
                            "sslCertificates", "targetHttpProxies", "targetHttpsProxies", "targetTcpProxies",
                            "urlMaps", "autoscalers", "disks", "networkEndpointGroups", "securityPolicies"})


def gcp_operation(method: str, path: str) -> str:
    """`compute.instances.insert` for a compute v1 REST path, the way the discovery document
    names its methods (collection, then list/insert/get/delete/patch or a custom verb)."""
    parts = [unquote(p) for p in path.split("/") if p]
    api = "dns" if parts[:1] == ["dns"] else "compute"  # Cloud DNS v1 beside compute v1
    if "projects" in parts:
        parts = parts[parts.index("projects") + 2:]
    scope = "global"
    if parts[:1] == ["aggregated"] and len(parts) > 1:
        return f"{api}.{parts[1]}.aggregatedList"
    if parts[:1] == ["global"]:
        parts = parts[1:]
    elif parts[:1] in (["zones"], ["regions"]) and len(parts) > 2:
        scope, parts = parts[0][:-1], parts[2:]
    if not parts:
        return f"{api}.projects.{'get' if method == 'GET' else method.lower()}"
    if api == "dns" and len(parts) > 2 and parts[0] == "managedZones":  # .../managedZones/{z}/rrsets/{n}/{t}
        collection = {"rrsets": "resourceRecordSets"}.get(parts[2], parts[2])
        one = len(parts) > 3
        verb = {"GET": "get" if one else "list", "POST": "create", "DELETE": "delete", "PATCH": "patch"}.get(
            method, method.lower())
        return f"dns.{collection}.{verb}"
    collection = f"{scope}Operations" if parts[0] == "operations" else parts[0]
    if scope == "region" and collection in REGIONAL_TWINS:  # regionBackendServices beside backendServices
        collection = "region" + collection[0].upper() + collection[1:]
    if len(parts) == 1:
        verb = {"GET": "list", "POST": "insert"}.get(method, method.lower())
    elif len(parts) == 2:
        verb = {"GET": "get", "DELETE": "delete", "PATCH": "patch", "PUT": "update"}.get(method, method.lower())
    else:
        verb = parts[2]
    if api == "dns" and verb == "insert":
        verb = "create"
    return f"{api}.{collection}.{verb}"
