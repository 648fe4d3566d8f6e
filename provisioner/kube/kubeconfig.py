"""Kubeconfig files, pure: the user's copy of a cluster's admin kubeconfig, and merging it into
an existing kubeconfig. Both hold credentials; callers store them with mode 0600. No message
raised here quotes the file's content.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import CastError
from . import yamltext


class KubeconfigError(CastError):
    """A kubeconfig that cannot be read or lacks what is needed."""


def cluster_entry_name(cluster: str) -> str:
    return f"cast-{cluster}"


def user_entry_name(cluster: str) -> str:
    return f"cast-{cluster}-admin"


def _load(text: str, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise KubeconfigError(f"{what} is not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"{what} is not a kubeconfig (not a mapping)")
    return data


def _named(data: dict[str, Any], section: str, name: object, what: str) -> dict[str, Any]:
    for entry in data.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    raise KubeconfigError(f"{what} has no {section[:-1]} named {name!r}")


def client_kubeconfig(admin_conf: str, *, cluster: str, server: str) -> str:
    """The user's kubeconfig from the first master's admin.conf: its current context's
    cluster and user, renamed after the cast cluster (cluster `cast-<name>`, user
    `cast-<name>-admin`, context `<name>`, the current one), the server set to `server`
    (https://<first master public IP>:6443, a name in the API certificate). Raises
    KubeconfigError when admin.conf lacks its current context, cluster or user."""
    data = _load(admin_conf, "admin.conf")
    current = data.get("current-context")
    if not current:
        raise KubeconfigError("admin.conf has no current-context")
    context = _named(data, "contexts", current, "admin.conf").get("context") or {}
    source_cluster = _named(data, "clusters", context.get("cluster"), "admin.conf").get("cluster") or {}
    source_user = _named(data, "users", context.get("user"), "admin.conf").get("user") or {}
    out_cluster = {**source_cluster, "server": server}
    result = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_entry_name(cluster), "cluster": out_cluster}],
        "users": [{"name": user_entry_name(cluster), "user": dict(source_user)}],
        "contexts": [{"name": cluster,
                      "context": {"cluster": cluster_entry_name(cluster), "user": user_entry_name(cluster)}}],
        "current-context": cluster,
        "preferences": {},
    }
    return yamltext.dump(result)


def _replace(entries: list[Any], new: dict[str, Any]) -> list[Any]:
    kept = [e for e in entries if not (isinstance(e, dict) and e.get("name") == new["name"])]
    return [*kept, new]


def merge_kubeconfig(existing: str | None, new: str, context: str) -> str:
    """`existing` (a kubeconfig's text, or None when there is none) with the context named
    `context` from `new`, and the cluster and user it names: entries of the same names are
    replaced, every other entry and field is kept. current-context is set to `context` only
    when `existing` has none. Returns YAML text. Raises KubeconfigError when either file is
    not a kubeconfig or `new` lacks the context, its cluster or its user."""
    source = _load(new, "the new kubeconfig")
    context_entry = _named(source, "contexts", context, "the new kubeconfig")
    refs = context_entry.get("context") or {}
    cluster_entry = _named(source, "clusters", refs.get("cluster"), "the new kubeconfig")
    user_entry = _named(source, "users", refs.get("user"), "the new kubeconfig")

    merged = _load(existing, "the existing kubeconfig") if existing else {}
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for section, entry in (("clusters", cluster_entry), ("users", user_entry), ("contexts", context_entry)):
        entries = merged.get(section) or []
        if not isinstance(entries, list):
            raise KubeconfigError(f"the existing kubeconfig's {section} is not a list")
        merged[section] = _replace(entries, entry)
    if not merged.get("current-context"):
        merged["current-context"] = context
    return yamltext.dump(merged)
