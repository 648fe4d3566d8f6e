"""Checking requests against the Azure REST API specifications (Swagger 2.0 JSON).

The Azure emulator asks `SpecIndex.check` about every request it serves: the path and
method must name an operation of the specifications, and a JSON body must fit the operation's
body schema (no unknown property, no missing required one, the right JSON types). Unknown query
parameters, and a body on an operation that takes none, are ignored as ARM ignores them. `$ref`s are resolved
across files and `allOf` is merged. The specifications are read from a folder, never copied:
by default `<repo>/../shared/specs/azure`, or `CAST_AZURE_SPECS`.

The SDKs send newer api-versions than the files hold for network and compute; the shapes
cast uses are the same there, so the api-version is required but its value is not matched.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .emulator import path_regex

ROOT_FILES = (
    "specification/resources/resource-manager/Microsoft.Resources/stable/2025-04-01/resources.json",
    "specification/network/resource-manager/Microsoft.Network/stable/2024-10-01/virtualNetwork.json",
    "specification/network/resource-manager/Microsoft.Network/stable/2024-10-01/networkSecurityGroup.json",
    "specification/network/resource-manager/Microsoft.Network/stable/2024-10-01/publicIpAddress.json",
    "specification/network/resource-manager/Microsoft.Network/stable/2024-10-01/networkInterface.json",
    "specification/network/resource-manager/Microsoft.Network/stable/2024-10-01/loadBalancer.json",
    "specification/compute/resource-manager/Microsoft.Compute/ComputeRP/stable/2025-04-01/ComputeRP.json",
)
# Loaded when present (the emulator serves these operations unchecked otherwise): the
# locations list, managed disks.
OPTIONAL_FILES = (
    "specification/resources/resource-manager/Microsoft.Resources/stable/2022-12-01/subscriptions.json",
    "specification/compute/resource-manager/Microsoft.Compute/DiskRP/stable/2025-01-02/DiskRP.json",
)
def _coerces(kind: str, value: object) -> bool:
    """Whether ARM reads `value` as a `kind` although its JSON type differs: its deserializer
    takes "true"/"false" for a boolean and a numeric string for a number (libcloud's Azure
    driver sends `"disablePasswordAuthentication": "true"`, and the real API accepts it)."""
    if not isinstance(value, str):
        return False
    if kind == "boolean":
        return value.lower() in ("true", "false")
    if kind in ("integer", "number"):
        try:
            number = float(value)
        except ValueError:
            return False
        return kind == "number" or number.is_integer()
    return False


_SCALARS = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def default_specs_dir() -> Path:
    """Where the specifications are: CAST_AZURE_SPECS, else `<repo>/../shared/specs/azure`."""
    override = os.environ.get("CAST_AZURE_SPECS")
    if override:
        return Path(override)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "specs" / "azure"


def specs_missing_reason(root: Path | None = None) -> str | None:
    """Why the specification check cannot run (a sentence), or None when it can."""
    root = root or default_specs_dir()
    missing = [f for f in ROOT_FILES if not (root / f).is_file()]
    if missing:
        return f"Azure REST specifications not found under {root} (set CAST_AZURE_SPECS): missing {missing[0]}"
    return None


@dataclass(frozen=True)
class _Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    file: Path
    spec: dict[str, Any]

    @property
    def specificity(self) -> int:
        return len(re.sub(r"\{[^}]*\}", "", self.template))


class SpecIndex:
    """The operations of the root specification files, ready to check requests against."""

    def __init__(self, root: Path):
        self.root = root
        self._files: dict[Path, Any] = {}
        self._operations: list[_Operation] = []
        for name in ROOT_FILES + tuple(f for f in OPTIONAL_FILES if (root / f).is_file()):
            path = (root / name).resolve()
            doc = self._load(path)
            for section in ("paths", "x-ms-paths"):
                for template, ops in doc.get(section, {}).items():
                    bare = template.split("?", 1)[0]
                    pattern = path_regex(bare, ignore_case=True)
                    for method, spec in ops.items():
                        if method == "parameters":
                            continue
                        self._operations.append(_Operation(method.upper(), bare, pattern, path, spec))
        # Most specific first (the fewest path parameters): a request's first match is its operation.
        self._operations.sort(key=lambda o: o.specificity, reverse=True)

    def covers(self, method: str, path: str) -> bool:
        """Whether the specifications have an operation for this method and path."""
        return any(o.method == method and o.pattern.fullmatch(path) for o in self._operations)

    def check(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> list[str]:
        """What is wrong with this request according to the specifications: one sentence per
        problem, empty when it fits. `body` is the decoded JSON (None when there is none)."""
        where = f"{method} {path}"
        op = next((o for o in self._operations if o.method == method and o.pattern.fullmatch(path)), None)
        if op is None:
            return [f"{where}: no operation in the specifications has this method and path"]
        params = [self._deref(op.file, p) for p in op.spec.get("parameters", [])]
        problems: list[str] = []
        # Unknown query parameters and a body where the operation takes none are ignored, as
        # ARM ignores them (issue 16: report only what the real API refuses).
        bodies = [(f, p) for f, p in params if p.get("in") == "body"]
        if bodies:
            file, param = bodies[0]
            if body is None:
                if param.get("required"):
                    problems.append(f"{where}: the request body is required")
            else:
                self._validate(file, param.get("schema", {}), body, "body", problems, request=True)
        return problems

    # --- $ref resolution -------------------------------------------------------------

    def _load(self, path: Path) -> Any:
        if path not in self._files:
            self._files[path] = json.loads(path.read_text(encoding="utf-8"))
        return self._files[path]

    def _deref(self, file: Path, node: Any) -> tuple[Path, Any]:
        """Follow `$ref`s until a node without one; return it with the file it lives in."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            target, _, pointer = ref.partition("#")
            if target:
                file = (file.parent / target).resolve()
            node = self._load(file)
            for part in filter(None, pointer.split("/")):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
            if seen > 50:
                raise ValueError(f"$ref loop at {ref}")
        return file, node

    def _object_shape(self, file: Path, schema: dict[str, Any]) -> tuple[dict[str, tuple[Path, Any]], set[str], Any]:
        """The merged properties (name -> (file, schema)), required names and additionalProperties
        of an object schema, following allOf."""
        props: dict[str, tuple[Path, Any]] = {}
        required: set[str] = set(schema.get("required", []))
        additional: Any = schema.get("additionalProperties")
        for part in schema.get("allOf", []):
            pfile, pschema = self._deref(file, part)
            p, r, a = self._object_shape(pfile, pschema)
            props.update(p)
            required |= r
            additional = additional if additional is not None else a
        for name, sub in schema.get("properties", {}).items():
            props[name] = (file, sub)
        return props, required, additional

    # --- validation ------------------------------------------------------------------

    def _validate(self, file: Path, schema: Any, value: Any, where: str, problems: list[str],
                  *, request: bool) -> None:
        file, schema = self._deref(file, schema)
        if not isinstance(schema, dict) or value is None:
            return
        kind = schema.get("type")
        if kind is None and ("properties" in schema or "allOf" in schema):
            kind = "object"
        if kind == "object":
            self._validate_object(file, schema, value, where, problems, request=request)
        elif kind == "array":
            if not isinstance(value, list):
                problems.append(f"{where}: expected an array, got {type(value).__name__}")
                return
            for i, item in enumerate(value):
                self._validate(file, schema.get("items", {}), item, f"{where}[{i}]", problems, request=request)
        elif kind in _SCALARS:
            ok = isinstance(value, _SCALARS[kind]) and not (kind != "boolean" and isinstance(value, bool))
            ok = ok or _coerces(kind, value)
            if not ok:
                problems.append(f"{where}: expected {kind}, got {type(value).__name__}")
            elif "enum" in schema and not schema.get("x-ms-enum", {}).get("modelAsString", False):
                allowed = {str(e).lower() for e in schema["enum"]}
                if str(value).lower() not in allowed:
                    problems.append(f"{where}: {value!r} is not one of {sorted(schema['enum'])}")

    def _validate_object(self, file: Path, schema: dict[str, Any], value: Any, where: str,
                         problems: list[str], *, request: bool) -> None:
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object, got {type(value).__name__}")
            return
        props, required, additional = self._object_shape(file, schema)
        for key, item in value.items():
            if key in props:
                pfile, pschema = props[key]
                self._validate(pfile, pschema, item, f"{where}.{key}", problems, request=request)
            elif isinstance(additional, dict):
                self._validate(file, additional, item, f"{where}.{key}", problems, request=request)
            elif additional is not True:
                problems.append(f"{where}: unknown property {key!r}")
        for name in sorted(required - value.keys()):
            pfile, pschema = props.get(name, (file, {}))
            _, resolved = self._deref(pfile, pschema)
            read_only = pschema.get("readOnly") or (isinstance(resolved, dict) and resolved.get("readOnly"))
            if not (request and read_only):
                problems.append(f"{where}: required property {name!r} is missing")
