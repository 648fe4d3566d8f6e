"""Checks of what the state store says, run on every row it loads: a name, address or key that
reaches a cloud-config, a wg0.conf, /etc/hosts or an SSH known-hosts check must have the form
cast itself writes, whoever wrote the file. One message per bad field, naming the row and the
field; never a value in full beyond its repr (which shows a newline as \\n).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .errors import CastError
from .textcheck import is_node_address

CLUSTER_NAME_RE = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")  # spec.NAME_RE, without its anchors
CLUSTER_NAME_MAX = 30
NODE_NAME_RE = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")  # a DNS label
UUID_RE = re.compile(r"[A-Za-z0-9][-A-Za-z0-9]{0,63}")
HOST_KEY_RE = re.compile(r"ssh-ed25519 ([A-Za-z0-9+/]+={0,2})(?: [-A-Za-z0-9_.@]{1,100})?")
WG_KEY_RE = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")  # 32 bytes, base64
PLAIN_RE = re.compile(r"[ -~]{1,256}")  # printable ASCII, no CR/LF or other control character
CLOUD_ID_RE = re.compile(r"[ -~]{1,1024}")  # Azure's are long resource paths


class RowError(CastError):
    """A state row that cast would not have written (mapped to StateError by the store)."""


def _bad(row: str, field: str, value: object, rule: str) -> RowError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return RowError(f"{row}: field {field} is {shown}, not {rule}")


def check_cluster_name(value: object) -> bool:
    return isinstance(value, str) and len(value) <= CLUSTER_NAME_MAX and CLUSTER_NAME_RE.fullmatch(value) is not None


def check_host_key(value: object) -> bool:
    """`ssh-ed25519 <base64 of the key blob>` with an optional plain comment."""
    if not isinstance(value, str):
        return False
    found = HOST_KEY_RE.fullmatch(value)
    if not found:
        return False
    try:
        blob = base64.b64decode(found.group(1), validate=True)
    except (binascii.Error, ValueError):
        return False
    return blob[:15] == b"\x00\x00\x00\x0bssh-ed25519"


def check_cluster_row(data: dict[str, Any]) -> None:
    """Raise RowError unless a clusters row has a cluster name (spec rule), a plain uuid,
    region and status, and a spec naming the same cluster when it names one."""
    row = f"clusters row {data.get('name')!r}"
    if not check_cluster_name(data.get("name")):
        raise _bad(row, "name", data.get("name"),
                   f"a cluster name (lowercase letters, digits and '-', 1 to {CLUSTER_NAME_MAX})")
    if not isinstance(data.get("uuid"), str) or not UUID_RE.fullmatch(data["uuid"]):
        raise _bad(row, "uuid", data.get("uuid"), "a UUID")
    for field in ("region", "status"):
        if not isinstance(data.get(field), str) or not PLAIN_RE.fullmatch(data[field]):
            raise _bad(row, field, data.get(field), "plain printable text")
    spec = data.get("spec")
    if not isinstance(spec, dict):
        raise _bad(row, "spec", "...", "a JSON object")
    if "name" in spec and spec["name"] != data["name"]:
        raise _bad(row, "spec", f"name {spec['name']!r}", f"the row's own name {data['name']!r}")


def check_node_row(data: dict[str, Any], clouds: tuple[str, ...], roles: tuple[str, ...]) -> None:
    """Raise RowError unless a nodes row has a DNS-label name, a known cloud and role, an
    IPv4 mesh address, public and private addresses that are IPv4 or global IPv6 (or none),
    an ed25519 host key line, a WireGuard public key (or none), and plain text elsewhere."""
    row = f"nodes row {data.get('name')!r}"
    name = data.get("name")
    if not isinstance(name, str) or not NODE_NAME_RE.fullmatch(name):
        raise _bad(row, "name", name, "a DNS label (lowercase letters, digits and '-', 1 to 63)")
    if data.get("cloud") not in clouds:
        raise _bad(row, "cloud", data.get("cloud"), f"one of {', '.join(clouds)}")
    if data.get("role") not in roles:
        raise _bad(row, "role", data.get("role"), f"one of {', '.join(roles)}")
    if not is_node_address(data.get("mesh_ip")):
        raise _bad(row, "mesh_ip", data.get("mesh_ip"), "an IPv4 address")
    for field in ("public_ip", "private_ip"):
        if data.get(field) is not None and not is_node_address(data[field], public=True):
            raise _bad(row, field, data[field], "an IPv4 or global IPv6 address without a scope")
    if not check_host_key(data.get("host_key")):
        raise _bad(row, "host_key", data.get("host_key"), "an OpenSSH line `ssh-ed25519 <base64> [comment]`")
    if data.get("wg_public_key") is not None and not WG_KEY_RE.fullmatch(str(data["wg_public_key"])):
        raise _bad(row, "wg_public_key", data["wg_public_key"], "a WireGuard public key (44 base64 characters)")
    for field in ("size", "status"):
        if not isinstance(data.get(field), str) or not PLAIN_RE.fullmatch(data[field]):
            raise _bad(row, field, data.get(field), "plain printable text")
    if data.get("cloud_id") is not None and not CLOUD_ID_RE.fullmatch(str(data["cloud_id"])):
        raise _bad(row, "cloud_id", data["cloud_id"], "plain printable text")
