"""What the parts of the GCP emulator share: the API's error replies (its 401 too), resource
links, name and CIDR checks, timestamps, ids, fingerprints and the list filter."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import time
from collections.abc import Callable
from typing import Any

from .emulator import Request, Response

LINK_BASE = "https://www.googleapis.com/compute/v1/"
NAME_RE = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
LABEL_KEY_RE = re.compile(r"[a-z][-_a-z0-9]{0,62}")
LABEL_VALUE_RE = re.compile(r"[-_a-z0-9]{0,63}")
EMPTY_FINGERPRINT = "42WmSpB8rSM="  # what the API reports for empty tags, metadata and labels
AUTH_MISSING = ("Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential. "
                "See https://developers.google.com/identity/sign-in/web/devconsole-project.")
AUTH_INVALID = ("Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential. "
                "See https://developers.google.com/identity/sign-in/web/devconsole-project.")


class ApiError(Exception):
    """An error reply in the compute API's own format."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message

    def response(self) -> Response:
        return error(self.status, self.reason, self.message)


def error(status: int, reason: str, message: str) -> Response:
    """The compute API's error body: {"error": {code, message, errors: [{message, domain, reason}]}}."""
    return Response(
        status,
        {"error": {"code": status, "message": message,
                   "errors": [{"message": message, "domain": "global", "reason": reason}]}},
    )


def not_found(rel: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{rel}' was not found")


def unauthenticated(request: Request, token: str | None) -> Response | None:
    """The API's 401 when the request carries no bearer token (or not `token`), else None.
    The shape is the one Google's front end sends (errors[] with the header's location,
    status UNAUTHENTICATED, an ErrorInfo detail) with its WWW-Authenticate header."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip() and (token is None or value.strip() == token):
        return None
    missing = not auth
    detail = {"message": "Login Required." if missing else "Invalid Credentials", "domain": "global",
              "reason": "required" if missing else "authError", "location": "Authorization",
              "locationType": "header"}
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "CREDENTIALS_MISSING" if missing else "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "domain": "googleapis.com", "metadata": {"service": "compute.googleapis.com"}}
    body = {"error": {"code": 401, "message": AUTH_MISSING if missing else AUTH_INVALID, "errors": [detail],
                      "status": "UNAUTHENTICATED", "details": [info]}}
    return Response(401, body, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})


def link(path: str) -> str:
    """The full URL the API uses for a `projects/...` path."""
    return LINK_BASE + path


def rel(ref: str) -> str:
    """A resource reference as `projects/...` (or as given when partial), whatever form the client sent."""
    ref = ref.removeprefix(LINK_BASE).removeprefix("https://compute.googleapis.com/compute/v1/")
    return ref.lstrip("/")


def in_project(project: str, ref: str) -> str:
    """A partial reference (`global/...`, `regions/...`, `zones/...`) completed with `project`."""
    ref = rel(ref)
    return ref if ref.startswith("projects/") else f"projects/{project}/{ref}"


def region_of_zone(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def timestamp(unix: float | None = None) -> str:
    """An RFC 3339 time as the API writes it (milliseconds and an offset)."""
    unix = time.time() if unix is None else unix
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(unix)) + f".{int(unix * 1000) % 1000:03d}-00:00"


def stable_id(text: str) -> str:
    """A 64-bit numeric id (as a string, like the API's) that is always the same for `text`."""
    return str(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1)


def fingerprint(value: Any) -> str:
    """An 8-byte base64 fingerprint of `value`, changing whenever it does (empty: the API's)."""
    if not value:
        return EMPTY_FINGERPRINT
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).digest()[:8]
    return base64.b64encode(digest).decode()


def valid_name(name: Any, what: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.{what}': {name!r}. Must be a match "
                                       f"of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'")
    return name


def valid_cidr(value: Any, what: str, *, max_prefix: int, strict: bool = True) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(value, strict=strict)
    except (ValueError, TypeError):
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.{what}': {value!r}. "
                                       "Invalid IPCidrRange") from None
    if net.prefixlen > max_prefix:
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.{what}': {value!r}. "
                                       f"The prefix length must be at most {max_prefix}")
    return net


def valid_labels(labels: Any) -> dict[str, str]:
    for key, value in (labels or {}).items():
        if not LABEL_KEY_RE.fullmatch(key) or not LABEL_VALUE_RE.fullmatch(value):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.labels': {key!r}")
    return dict(labels or {})


_TERM = re.compile(r"""\(?\s*([\w.\-]+)\s*(!=|=|:|\beq\b|\bne\b)\s*(?:"([^"]*)"|'([^']*)'|([^\s()]+))\s*\)?""")


def compile_filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """A list filter: terms `field OP value` joined by AND (or juxtaposed in parentheses).
    `=`, `!=` compare, `:` tests a substring, `eq`/`ne` match an RE2-like regex in full."""
    rest = re.sub(r"\bAND\b", " ", text.strip())
    terms = []
    pos = 0
    while pos < len(rest):
        if rest[pos].isspace():
            pos += 1
            continue
        found = _TERM.match(rest, pos)
        if not found:
            raise ApiError(400, "invalid", f"Invalid list filter expression {text!r}")
        field_path, op = found.group(1), found.group(2)
        value = next(v for v in found.group(3, 4, 5) if v is not None)
        terms.append((field_path.split("."), op, value))
        pos = found.end()

    def lookup(item: dict[str, Any], path: list[str]) -> Any:
        value: Any = item
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def test(item: dict[str, Any]) -> bool:
        for path, op, value in terms:
            actual = lookup(item, path)
            text_value = "" if actual is None else str(actual)
            ok = {
                "=": actual is not None and text_value == value,
                "!=": text_value != value,
                ":": actual is not None and value in text_value,
                "eq": actual is not None and re.fullmatch(value, text_value) is not None,
                "ne": not (actual is not None and re.fullmatch(value, text_value) is not None),
            }[op]
            if not ok:
                return False
        return True

    return test
