"""A node inventory file: the nodes of a mesh as JSON, for commands run without a cluster in
the state store (e.g. `cast check-latency --inventory FILE`).

    {"nodes": [{"name": "aws-1", "group": "aws", "public_ip": "198.18.0.10",
                "mesh_ip": "10.4.0.1", "ssh_port": 22, "host_key": "ssh-ed25519 AAAA…"}]}

A bare list of nodes is accepted too; "cloud" may stand for "group".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..textcheck import is_node_address
from .ssh import NodeAccess
from .wireguard import MeshNodeAccess


def load_inventory(path: str | Path) -> list[MeshNodeAccess]:
    """The nodes listed in the JSON file at `path`. Raises InputError naming the file, the
    node and the field on anything missing or malformed."""
    where = str(path)
    try:
        data: Any = json.loads(Path(path).read_text())
    except OSError as exc:
        raise InputError(where, f"cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise InputError(where, f"not JSON (line {exc.lineno}, column {exc.colno})") from None
    items = data.get("nodes") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise InputError(where, "expected a non-empty list of nodes (or {\"nodes\": [...]})")
    nodes: list[MeshNodeAccess] = []
    for i, item in enumerate(items):
        nodes.append(_node(f"{where}: nodes[{i}]", item))
    names = [n.name for n in nodes]
    for name in names:
        if names.count(name) > 1:
            raise InputError(where, f"node {name} is listed twice")
    return nodes


def _node(where: str, item: Any) -> MeshNodeAccess:
    if not isinstance(item, dict):
        raise InputError(where, "expected an object")

    def text(field: str, *aliases: str) -> str:
        for key in (field, *aliases):
            value = item.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        raise InputError(f"{where}.{field}", "missing or not a string")

    name = text("name")
    where = f"{where} ({name})"
    group = text("group", "cloud")
    public_ip, mesh_ip, host_key = text("public_ip"), text("mesh_ip"), text("host_key")
    for field, value in (("public_ip", public_ip), ("mesh_ip", mesh_ip)):
        if not is_node_address(value, public=field == "public_ip"):
            raise InputError(f"{where}.{field}", f"{value!r} is not an IP address",
                             "IPv4, or global IPv6 without a scope")
    if len(host_key.split()) < 2:
        raise InputError(f"{where}.host_key", "expected an OpenSSH public key line")
    port = item.get("ssh_port", 22)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise InputError(f"{where}.ssh_port", f"{port!r} is not a TCP port")
    return MeshNodeAccess(NodeAccess(name, public_ip, host_key, port), group, mesh_ip)
