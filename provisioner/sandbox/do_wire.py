"""What every route of the DigitalOcean emulator shares on the wire: the API's error body,
its timestamps, its paging (`links.pages`, `meta.total`), nulls read as absent, and the
handler name a request path maps to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from .emulator import Request, Response

MAX_PER_PAGE = 200


def error(status: int, ident: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """The API's error body: {"id", "message", "request_id"}."""
    return Response(status, {"id": ident, "message": message, "request_id": str(uuid.uuid4())}, headers or {})


def not_found() -> Response:
    return error(404, "not_found", "The resource you were accessing could not be found.")


def unprocessable(message: str) -> Response:
    return error(422, "unprocessable_entity", message)


def iso(unix: float) -> str:
    """A unix time as the API writes it: ISO 8601, UTC, whole seconds."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def without_nulls(value: Any) -> Any:
    """`value` with every null object member left out, at every depth: the API reads a null
    optional field as the field not given."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def _int_arg(request: Request, name: str, default: int) -> int:
    try:
        return int(request.arg(name) or default)
    except ValueError:
        return default


def page(request: Request, base_url: str, key: str, items: list[Any]) -> Response:
    """One page of a listing under `key`, with `links.pages` (first/prev/next/last as the API
    gives them) and `meta.total`; per_page defaults to 20, at most 200."""
    per_page = min(MAX_PER_PAGE, max(1, _int_arg(request, "per_page", 20)))
    number = max(1, _int_arg(request, "page", 1))
    last = max(1, -(-len(items) // per_page))
    body: dict[str, Any] = {key: items[(number - 1) * per_page : number * per_page], "meta": {"total": len(items)}}
    pages: dict[str, str] = {}
    kept = {k: v[0] for k, v in request.query.items() if k != "page"}

    def link(n: int) -> str:
        return f"{base_url}{request.path}?{urlencode({**kept, 'page': n})}"

    if number > 1:
        pages.update(first=link(1), prev=link(min(number, last + 1) - 1))
    if number < last:
        pages.update(next=link(number + 1), last=link(last))
    body["links"] = {"pages": pages}
    return Response(200, body)


_COLLECTIONS = ("vpcs", "droplets", "firewalls", "actions")
# after these any segment is an id: a tag name, a fingerprint, an image slug, a domain name,
# and ids the API takes as free strings (a load balancer's, a record's)
_ANY_ID_AFTER = ("tags", "keys", "images", "load_balancers", "domains", "records")


def _is_id(segment: str) -> bool:
    if segment.isdigit():
        return True
    try:
        uuid.UUID(segment)
    except ValueError:
        return False
    return True


def shape(parts: list[str]) -> list[str]:
    """Path segments with ids folded to `id`, giving the handler's name: vpcs/X/members ->
    vpcs_id_members. After tags/, keys/, images/, load_balancers/, domains/ and records/ any
    segment is an id (_ANY_ID_AFTER)."""
    shaped = []
    for i, p in enumerate(parts):
        before = parts[i - 1] if i else ""
        is_id = before in _ANY_ID_AFTER or (before in _COLLECTIONS and _is_id(p))
        shaped.append("id" if is_id else p)
    return shaped


def fold_ids(path: str) -> str:
    """`path` with its ids replaced by `{id}`: the route name calls are counted under."""
    parts = path.split("/")
    return "/".join("{id}" if s == "id" else p for p, s in zip(parts, ["", *shape(parts[1:])], strict=True))
