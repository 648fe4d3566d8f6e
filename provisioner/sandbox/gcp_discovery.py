"""The compute v1 discovery document as a request checker for the GCP emulator.

The document ships inside google-api-python-client (discovery_cache/documents/compute.v1.json).
`ComputeDiscovery.check` says whether the real API would accept a request's method, path,
the values of its known query parameters and its body (every field name, recursively through
the schemas, and the JSON type of every value). The emulator answers a request that fails
with a loud 400 and records it. What the real API lets through passes: query parameters the
method does not declare (ignored), an empty `{}` body on a method that takes none (a DELETE),
and `null` for any field (the proto3 JSON mapping reads it
as the field's default, i.e. absent); `drop_nulls` gives the body the emulator then handles.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SERVICE_PREFIX = "/compute/v1/"
# Accepted by every Google REST endpoint but not listed in discovery documents: the REST
# transport of google-cloud-compute sends `$alt=json;enum-encoding=int` on every call.
SYSTEM_PARAMETERS = frozenset({"$alt"})


class DiscoveryNotFound(RuntimeError):
    """google-api-python-client (with its discovery cache) is not installed."""


@dataclass(frozen=True)
class Method:
    """One REST method of the document."""

    id: str  # e.g. compute.instances.insert
    http_method: str
    template: str
    pattern: re.Pattern[str]
    query: dict[str, dict[str, Any]]  # query parameter name -> its description
    request_schema: str | None
    response_schema: str | None

    @property
    def literal_length(self) -> int:
        return len(re.sub(r"\{[^}]+\}", "", self.template))


@dataclass(frozen=True)
class Match:
    """A request resolved to a method, with its path parameters."""

    method: Method
    params: dict[str, str]


def document_path(name: str = "compute.v1") -> Path:
    """Where the installed google-api-python-client keeps the discovery document `name`
    (compute.v1, dns.v1)."""
    try:
        import googleapiclient
    except ImportError as exc:
        raise DiscoveryNotFound("google-api-python-client is not installed") from exc
    path = Path(googleapiclient.__file__).parent / f"discovery_cache/documents/{name}.json"
    if not path.exists():
        raise DiscoveryNotFound(f"no {name} discovery document at {path}")
    return path


@lru_cache(maxsize=1)
def load() -> ComputeDiscovery:
    """The installed document, parsed once per process."""
    return ComputeDiscovery(json.loads(document_path().read_text()))


@lru_cache(maxsize=1)
def load_dns() -> ComputeDiscovery:
    """The installed Cloud DNS v1 document (its paths start with `dns/v1/`), parsed once."""
    return ComputeDiscovery(json.loads(document_path("dns.v1").read_text()), prefix="/")


class ComputeDiscovery:
    """Method lookup and request checking against one discovery document."""

    def __init__(self, doc: dict[str, Any], prefix: str = SERVICE_PREFIX):
        self.prefix = prefix  # what request paths start with before a method's template
        self.name = f"{doc.get('name', 'compute')} {doc.get('version', 'v1')}"
        self.schemas: dict[str, Any] = doc["schemas"]
        self.global_parameters = frozenset(doc.get("parameters", {})) | SYSTEM_PARAMETERS
        self.methods: list[Method] = []
        for resource in doc["resources"].values():
            for spec in resource.get("methods", {}).values():
                template = spec["path"]
                regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
                params = spec.get("parameters", {})
                self.methods.append(
                    Method(
                        id=spec["id"],
                        http_method=spec["httpMethod"],
                        template=template,
                        pattern=re.compile(regex),
                        query={k: v for k, v in params.items() if v.get("location") == "query"},
                        request_schema=(spec.get("request") or {}).get("$ref"),
                        response_schema=(spec.get("response") or {}).get("$ref"),
                    )
                )
        # Prefer the most literal template when two match (".../instances/bulkInsert").
        self.methods.sort(key=lambda m: -m.literal_length)

    def match(self, http_method: str, path: str) -> Match | None:
        """The method a request calls, or None when the document has no such method+path."""
        if not path.startswith(self.prefix):
            return None
        rest = path[len(self.prefix) :]
        for m in self.methods:
            if m.http_method != http_method:
                continue
            found = m.pattern.fullmatch(rest)
            if found:
                return Match(m, found.groupdict())
        return None

    def check(self, http_method: str, path: str, query: dict[str, list[str]], body: bytes) -> list[str]:
        """Every reason the real API would reject this request as malformed; empty if none."""
        found = self.match(http_method, path)
        if found is None:
            return [f"no method {http_method} {path} in the {self.name} discovery document"]
        method = found.method
        problems = []
        for name, values in query.items():
            if name in self.global_parameters:
                continue
            spec = method.query.get(name)
            if spec is None:
                continue  # the API ignores a parameter it does not know
            for value in values:
                problems += _check_query_value(method.id, name, value, spec)
        if method.request_schema is None:
            if body.strip() and body.strip() not in (b"{}", b"null"):  # an empty object is tolerated
                problems.append(f"{method.id} takes no request body")
            return problems
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return [*problems, f"{method.id}: the body is not JSON"]
        if not isinstance(payload, dict):
            return [*problems, f"{method.id}: the body must be a JSON object"]
        problems += self._check_value(payload, {"$ref": method.request_schema}, method.request_schema)
        return problems

    def check_response(self, method: Method, body: Any) -> list[str]:
        """Every field of a response body that the method's response schema lacks or types
        otherwise; empty if none (or when the method declares no response)."""
        if method.response_schema is None:
            return []
        return [f"response of {method.id}: {p}"
                for p in self._check_value(body, {"$ref": method.response_schema}, method.response_schema)]

    def _check_value(self, value: Any, schema: dict[str, Any], where: str) -> list[str]:
        if "$ref" in schema:
            schema = self.schemas[schema["$ref"]]
        kind = schema.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where}: expected an object, got {type(value).__name__}"]
            problems: list[str] = []
            props = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                if item is None:
                    continue  # proto3 JSON: null is the default value, as if absent
                if key in props:
                    problems += self._check_value(item, props[key], f"{where}.{key}")
                elif extra is not None:
                    problems += self._check_value(item, extra, f"{where}[{key!r}]")
                else:
                    problems.append(f"{where}: unknown field {key!r}")
            return problems
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: expected an array, got {type(value).__name__}"]
            problems = []
            for i, item in enumerate(value):
                problems += self._check_value(item, schema.get("items", {}), f"{where}[{i}]")
            return problems
        return _check_scalar(value, schema, where)


def drop_nulls(value: Any) -> Any:
    """`value` with every null-valued object member removed, recursively (what the API reads)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def _check_scalar(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    kind, fmt = schema.get("type"), schema.get("format", "")
    if kind == "string":
        if fmt in ("int64", "uint64") and isinstance(value, int) and not isinstance(value, bool):
            return []  # proto3 JSON accepts a number for a 64-bit integer
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {type(value).__name__}"]
        if fmt in ("int64", "uint64") and not re.fullmatch(r"-?\d+", value):
            return [f"{where}: {value!r} is not an integer"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{where}: {value!r} is not one of its enum values"]
        return []
    if kind == "integer":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value)
        )
        return [] if ok else [f"{where}: expected an integer, got {value!r}"]
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a number, got {value!r}"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean, got {value!r}"]
    return []  # "any" or untyped


def _check_query_value(method_id: str, name: str, value: str, spec: dict[str, Any]) -> list[str]:
    kind = spec.get("type")
    if kind == "integer" and not re.fullmatch(r"\d+", value):
        return [f"{method_id}: query parameter {name}={value!r} is not an integer"]
    if kind == "boolean" and value not in ("true", "false", "True", "False"):
        return [f"{method_id}: query parameter {name}={value!r} is not a boolean"]
    if "enum" in spec and value not in spec["enum"]:
        return [f"{method_id}: query parameter {name}={value!r} is not one of its enum values"]
    return []
