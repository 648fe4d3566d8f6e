"""Kubeconfig files, pure: the user's copy of a cluster's admin kubeconfig, and merging it into
an existing kubeconfig. Both hold credentials; callers store them with mode 0600. No message
raised here quotes the file's content.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import yaml

from ..errors import CastError, SafetyError
from . import yamltext


class KubeconfigError(CastError):
    """A kubeconfig that cannot be read or lacks what is needed."""


class UnsafeKubeconfigError(KubeconfigError, SafetyError):
    """A kubeconfig carrying something cast never copies (a command to run, a token, a proxy,
    TLS checks off, a CA other than the pinned one): refused, nothing written. Exit code 4."""


# The only fields cast copies. Anything else a master's admin.conf says (`exec`,
# `auth-provider`, `token`, `tokenFile`, `proxy-url`, `insecure-skip-tls-verify`, ...) could run
# code or send the credentials elsewhere on the operator's machine at the next kubectl call.
CLUSTER_FIELDS = frozenset({"server", "certificate-authority-data"})
USER_FIELDS = frozenset({"client-certificate-data", "client-key-data"})
CONTEXT_FIELDS = frozenset({"cluster", "user"})
TOP_FIELDS = frozenset({"apiVersion", "kind", "clusters", "users", "contexts", "current-context", "preferences"})


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


def _only(fields: object, allowed: frozenset[str], what: str) -> dict[str, Any]:
    """`fields` when it is a mapping of allowed keys to strings; UnsafeKubeconfigError naming
    the first other key (never its value) otherwise."""
    if not isinstance(fields, dict):
        raise KubeconfigError(f"{what} is not a mapping")
    extra = sorted(str(k) for k in fields if k not in allowed)
    if extra:
        raise UnsafeKubeconfigError(
            f"{what} has {', '.join(extra)}, which cast does not copy (allowed: {', '.join(sorted(allowed))}); "
            "refused: the kubeconfig was not saved"
        )
    for key, value in fields.items():
        if not isinstance(value, str) or not value:
            raise KubeconfigError(f"{what}'s {key} is not a non-empty string")
    return fields


def _pem(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise KubeconfigError(f"{what} is not base64") from None


def _checked_credentials(cluster: dict[str, Any], user: dict[str, Any], ca_hash: str) -> None:
    """Raise UnsafeKubeconfigError when the CA is not the one `ca_hash` pins, or the client
    certificate is not issued by it; KubeconfigError when a field is not what it claims."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from .kubeadm import ca_cert_hash

    for fields, key, what in ((cluster, "certificate-authority-data", "the cluster"),
                              (user, "client-certificate-data", "the user"),
                              (user, "client-key-data", "the user")):
        if key not in fields:
            raise KubeconfigError(f"admin.conf: {what} has no {key}")
    ca_pem = _pem(cluster["certificate-authority-data"], "certificate-authority-data")
    try:
        ca = x509.load_pem_x509_certificate(ca_pem)
        client = x509.load_pem_x509_certificate(_pem(user["client-certificate-data"], "client-certificate-data"))
    except ValueError:
        raise KubeconfigError("admin.conf: a certificate is not a PEM certificate") from None
    if ca_cert_hash(ca_pem) != ca_hash:
        raise UnsafeKubeconfigError(
            "admin.conf's certificate-authority-data is not the CA whose hash pinned the joins; "
            "refused: the kubeconfig was not saved"
        )
    try:
        client.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise UnsafeKubeconfigError(
            "admin.conf's client certificate is not issued by the cluster's CA; refused: the kubeconfig was not saved"
        ) from None
    try:
        load_pem_private_key(_pem(user["client-key-data"], "client-key-data"), password=None)
    except (ValueError, TypeError):
        raise KubeconfigError("admin.conf: client-key-data is not an unencrypted PEM private key") from None


def _one(data: dict[str, Any], section: str, what: str) -> dict[str, Any]:
    entries = data.get(section)
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], dict):
        count = len(entries) if isinstance(entries, list) else 0
        raise UnsafeKubeconfigError(
            f"{what} has {count} {section}, not exactly one; refused: the kubeconfig was not saved"
        )
    return entries[0]


def client_kubeconfig(admin_conf: str, *, cluster: str, server: str, ca_hash: str) -> str:
    """The user's kubeconfig, built from scratch out of the first master's admin.conf: the
    cluster `cast-<name>` with `server` (https://<first master public IP>:6443, a name in the
    API certificate) and admin.conf's certificate-authority-data, the user `cast-<name>-admin`
    with its client-certificate-data and client-key-data, and the context `<name>`, the current
    one. Nothing else is copied: admin.conf must hold exactly one cluster, user and context,
    with no other fields (`exec`, `auth-provider`, `token`, `tokenFile`, `proxy-url`,
    `insecure-skip-tls-verify`, ...), its CA must be the one `ca_hash` (`sha256:<hex>`, the pin
    of the joins) names, and its client certificate issued by that CA; otherwise
    UnsafeKubeconfigError (exit 4). KubeconfigError when admin.conf is malformed. No message
    quotes a value."""
    data = _load(admin_conf, "admin.conf")
    _only({k: "-" for k in data}, TOP_FIELDS, "admin.conf")
    if data.get("preferences"):
        raise UnsafeKubeconfigError("admin.conf has preferences, which cast does not copy; refused")
    current = data.get("current-context")
    if not current:
        raise KubeconfigError("admin.conf has no current-context")
    context_entry, cluster_entry, user_entry = (_one(data, section, "admin.conf")
                                                for section in ("contexts", "clusters", "users"))
    for entry, what in ((context_entry, "context"), (cluster_entry, "cluster"), (user_entry, "user")):
        _only({k: "-" for k in entry}, frozenset({"name", what}), f"admin.conf's {what} entry")
    if context_entry.get("name") != current:
        raise KubeconfigError(f"admin.conf has no context named {current!r}")
    context = _only(context_entry.get("context"), CONTEXT_FIELDS, "admin.conf's context")
    for entry, what in ((cluster_entry, "cluster"), (user_entry, "user")):
        if entry.get("name") != context.get(what):
            raise KubeconfigError(f"admin.conf has no {what} named {context.get(what)!r}")
    source_cluster = _only(cluster_entry.get("cluster"), CLUSTER_FIELDS, "admin.conf's cluster")
    source_user = _only(user_entry.get("user"), USER_FIELDS, "admin.conf's user")
    _checked_credentials(source_cluster, source_user, ca_hash)
    result = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_entry_name(cluster),
                      "cluster": {"certificate-authority-data": source_cluster["certificate-authority-data"],
                                  "server": server}}],
        "users": [{"name": user_entry_name(cluster),
                   "user": {"client-certificate-data": source_user["client-certificate-data"],
                            "client-key-data": source_user["client-key-data"]}}],
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
    not a kubeconfig or `new` lacks the context, its cluster or its user, and
    UnsafeKubeconfigError when those hold a field client_kubeconfig never writes."""
    source = _load(new, "the new kubeconfig")
    context_entry = _named(source, "contexts", context, "the new kubeconfig")
    refs = context_entry.get("context") or {}
    cluster_entry = _named(source, "clusters", refs.get("cluster"), "the new kubeconfig")
    user_entry = _named(source, "users", refs.get("user"), "the new kubeconfig")
    # What cast saved holds only these fields; a file that holds more is not merged.
    _only(refs, CONTEXT_FIELDS, "the new kubeconfig's context")
    _only(cluster_entry.get("cluster"), CLUSTER_FIELDS, "the new kubeconfig's cluster")
    _only(user_entry.get("user"), USER_FIELDS, "the new kubeconfig's user")

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
