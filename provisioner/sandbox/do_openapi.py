"""Checking requests to the DigitalOcean emulator against DigitalOcean's published OpenAPI
description, so the emulator cannot drift into accepting calls the real API would refuse.

The description is read from disk (never copied into the project): CAST_DO_SPECS (the YAML
file, or a directory holding it), else `<repo>/../shared/specs/digitalocean/`. It is parsed
once per process. What is checked: the method and path exist; required query parameters are
present; the JSON body has only known properties, every required one, and values of the
declared type, enum, pattern and length ($ref resolved, allOf merged, oneOf and anyOf satisfied
by at least one branch).

Only what the real API refuses is reported by `check`. It ignores query parameters it does
not know (python-digitalocean and libcloud add `per_page` to every request) and body
properties it does not know, reads `null` for an optional property as the property left out,
and takes an empty body (`{}`, as python-digitalocean sends on DELETE) where an operation
declares none. Unknown body properties are still found (`unknown_properties`): a sign that a
client (cast's own tests look) drifted from the description, not a refusal.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .emulator import path_regex

SPEC_FILE = "DigitalOcean-public.v2.bundled.yaml"
ENV = "CAST_DO_SPECS"


def spec_path() -> Path | None:
    """Where DigitalOcean's OpenAPI description is, or None when it is not on this machine."""
    configured = os.environ.get(ENV)
    if configured:
        candidate = Path(configured)
    else:
        candidate = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "digitalocean"
    if candidate.is_dir():
        candidate = candidate / SPEC_FILE
    return candidate if candidate.is_file() else None


@functools.lru_cache(maxsize=4)
def load_checker(path: str) -> OpenApiChecker:
    """The checker for the description at `path`, parsed once per process."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as f:
        return OpenApiChecker(yaml.load(f, Loader=loader))


def default_checker() -> OpenApiChecker | None:
    """The checker for the description found by `spec_path`, or None when there is none."""
    path = spec_path()
    return load_checker(str(path)) if path else None


@dataclass
class _Flat:
    """A schema with its allOf merged: what a value must satisfy at one level."""

    types: set[str] = field(default_factory=set)
    properties: dict[str, list[Any]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    alternatives: list[list[Any]] = field(default_factory=list)  # each group: one must pass
    items: list[Any] = field(default_factory=list)
    enum: list[Any] | None = None
    patterns: list[str] = field(default_factory=list)
    max_length: int | None = None
    nullable: bool = False
    read_only: bool = False
    free_form: bool = False  # additionalProperties allowed


@dataclass(frozen=True)
class _Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    literal_segments: int
    spec: dict[str, Any]


class OpenApiChecker:
    """Checks one request at a time against a parsed OpenAPI 3 description."""

    def __init__(self, document: dict[str, Any]):
        self._doc = document
        self._ops: list[_Operation] = []
        for template, item in document.get("paths", {}).items():
            regex = path_regex(template)
            literal = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            for method, op in item.items():
                if method in ("get", "put", "post", "delete", "patch", "head"):
                    merged = dict(op)
                    merged["parameters"] = list(item.get("parameters", [])) + list(op.get("parameters", []))
                    self._ops.append(_Operation(method.upper(), template, regex, literal, merged))
        # a literal segment beats a template one: /v2/droplets/actions before /v2/droplets/{id}
        self._ops.sort(key=lambda o: -o.literal_segments)

    @property
    def document(self) -> dict[str, Any]:
        """The parsed description (shared: do not change it)."""
        return self._doc

    # --- requests ----------------------------------------------------------------------

    def check(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> list[str]:
        """Every way this request departs from the description that the API refuses; empty
        when it conforms."""
        return [p for p in self._problems(method, path, query, body) if not _is_unknown(p)]

    def unknown_properties(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> list[str]:
        """The body properties of this request that the description does not know."""
        return [p for p in self._problems(method, path, query, body) if _is_unknown(p)]

    def _problems(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> list[str]:
        ops = [o for o in self._ops if o.regex.fullmatch(path)]
        if not ops:
            return [f"{method} {path}: no such path in the OpenAPI description"]
        op = next((o for o in ops if o.method == method), None)
        if op is None:
            allowed = ", ".join(sorted({o.method for o in ops}))
            return [f"{method} {path}: method not in the OpenAPI description (allowed: {allowed})"]
        where = f"{method} {op.template}"
        problems = self._check_query(op, query, where)
        request_body = self._resolve(op.spec.get("requestBody") or {})
        schema = ((request_body.get("content") or {}).get("application/json") or {}).get("schema")
        if body is None:
            if request_body.get("required"):
                problems.append(f"{where}: a JSON body is required")
        elif schema is None:
            if body != {}:
                problems.append(f"{where}: takes no JSON body")
        else:
            problems.extend(self._check_value(schema, body, f"{where} body", strict=True))
        return problems

    def _check_query(self, op: _Operation, query: dict[str, list[str]], where: str) -> list[str]:
        params = [self._resolve(p) for p in op.spec.get("parameters", [])]
        declared = {p["name"]: p for p in params if p.get("in") == "query"}
        return [
            f"{where}: required query parameter {name!r} missing"
            for name, p in declared.items()
            if p.get("required") and name not in query
        ]

    # --- schemas -----------------------------------------------------------------------

    def _resolve(self, node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self._doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
            seen += 1
            if seen > 50:
                raise ValueError(f"$ref loop at {node}")
        return node

    def _flatten(self, schema: Any, flat: _Flat | None = None) -> _Flat:
        flat = flat or _Flat()
        schema = self._resolve(schema)
        if not isinstance(schema, dict):
            return flat
        if "type" in schema:
            flat.types.add(schema["type"])
        for name, sub in (schema.get("properties") or {}).items():
            flat.properties.setdefault(name, []).append(sub)
        flat.required.update(schema.get("required") or [])
        if "items" in schema:
            flat.items.append(schema["items"])
        if "enum" in schema:
            flat.enum = list(schema["enum"])
        if "pattern" in schema:
            flat.patterns.append(schema["pattern"])
        if "maxLength" in schema:
            flat.max_length = schema["maxLength"]
        flat.nullable = flat.nullable or bool(schema.get("nullable"))
        flat.read_only = flat.read_only or bool(schema.get("readOnly"))
        if schema.get("additionalProperties") not in (None, False):
            flat.free_form = True
        for part in schema.get("allOf") or []:
            self._flatten(part, flat)
        for key in ("oneOf", "anyOf"):
            if schema.get(key):
                flat.alternatives.append(list(schema[key]))
        return flat

    def _check_value(self, schema: Any, value: Any, where: str, *, strict: bool) -> list[str]:
        flat = self._flatten(schema)
        if value is None:
            return [] if flat.nullable or not flat.types else [f"{where}: null is not allowed"]
        problems = _type_problems(flat, value, where)
        if problems:
            return problems
        if isinstance(value, str):
            if flat.max_length is not None and len(value) > flat.max_length:
                problems.append(f"{where}: longer than {flat.max_length} characters")
            problems += [f"{where}: {value!r} does not match {p}" for p in flat.patterns if not re.search(p, value)]
        if flat.enum is not None and value not in flat.enum:
            problems.append(f"{where}: {value!r} is not one of {flat.enum}")
        if isinstance(value, list):
            for i, item in enumerate(value):
                for item_schema in flat.items:
                    problems += self._check_value(item_schema, item, f"{where}[{i}]", strict=True)
        if isinstance(value, dict):
            problems += self._check_object(flat, value, where, strict=strict)
        for group in flat.alternatives:
            outcomes = [[p for p in self._check_value(branch, value, where, strict=False) if not _is_unknown(p)]
                        for branch in group]
            if all(outcomes):
                best = min(outcomes, key=len)
                problems.append(f"{where}: matches none of its {len(group)} alternatives; nearest: {'; '.join(best)}")
        return problems

    def _check_object(self, flat: _Flat, value: dict[str, Any], where: str, *, strict: bool) -> list[str]:
        problems: list[str] = []
        known = set(flat.properties)
        for group in flat.alternatives:
            for branch in group:
                known |= set(self._flatten(branch).properties)
        if strict and known and not flat.free_form:
            problems += [f"{where}: unknown property {k!r}" for k in value if k not in known]
        present = {k for k, v in value.items() if v is not None or k in flat.required}  # null: left out
        problems += [f"{where}: required property {k!r} missing" for k in sorted(flat.required) if k not in value]
        for key, sub in value.items():
            if key not in present:
                continue
            for prop_schema in flat.properties.get(key, []):
                if self._flatten(prop_schema).read_only:
                    problems.append(f"{where}.{key}: is read-only")
                    break
                problems += self._check_value(prop_schema, sub, f"{where}.{key}", strict=True)
        return problems


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _type_problems(flat: _Flat, value: Any, where: str) -> list[str]:
    for t in flat.types:
        wanted = _PY_TYPES.get(t)
        if wanted is None:
            continue
        ok = isinstance(value, wanted) and not (t in ("integer", "number") and isinstance(value, bool))
        if not ok:
            return [f"{where}: {type(value).__name__} is not of type {t}"]
    return []


_UNKNOWN = ": unknown property "


def _is_unknown(problem: str) -> bool:
    return _UNKNOWN in problem and "alternatives; nearest" not in problem
