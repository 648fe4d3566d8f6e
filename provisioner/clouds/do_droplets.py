"""DigitalOcean droplets as cast sees them: reading a droplet into a Vm, grouping requests
into as few create calls as the API allows, and the fingerprint of a public key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .. import tags
from ..keys import md5_fingerprint
from . import do_tags
from .base import Vm, VmRequest

ACTIVE = "active"
GONE = ("archive",)


def tag_value(droplet_tags: Iterable[str], key: str) -> str | None:
    """The value of the plain-string tag `key:value`, if the droplet has one."""
    prefix = f"{key}:"
    return next((t[len(prefix) :] for t in droplet_tags if t.startswith(prefix)), None)


def to_vm(droplet: Mapping[str, Any]) -> Vm:
    """A droplet as a Vm. Its node name is the cast-node tag, else the droplet's name (cast
    names droplets after their node; several made in one call cannot each get their own tag)."""
    droplet_tags = list(droplet.get("tags") or [])
    v4 = (droplet.get("networks") or {}).get("v4") or []
    by_type = {n.get("type"): n.get("ip_address") for n in v4}
    return Vm(
        name=tag_value(droplet_tags, tags.NODE) or str(droplet.get("name", "")),
        cloud_id=str(droplet["id"]),
        state=str(droplet.get("status", "")),
        private_ip=by_type.get("private"),
        public_ip=by_type.get("public"),
        role=tag_value(droplet_tags, tags.ROLE),
        cluster_uuid=tag_value(droplet_tags, tags.CLUSTER_UUID),
        extra={"vpc_uuid": droplet.get("vpc_uuid"), "size": droplet.get("size_slug"), "tags": droplet_tags},
    )


def is_ready(vm: Vm) -> bool:
    """Active with both addresses: what ensure_vms waits for."""
    return vm.state == ACTIVE and bool(vm.public_ip) and bool(vm.private_ip)


MAX_PER_CREATE = 10  # "Up to ten Droplets may be created this way at a time" (API reference)


def batches(requests: Sequence[VmRequest]) -> list[list[VmRequest]]:
    """Requests grouped for multi-create: one call per (role, size, user_data), since a
    call gives every droplet the same size, tags and user data, and at most ten a call."""
    groups: dict[tuple[str, str, str], list[VmRequest]] = {}
    for r in requests:
        groups.setdefault((r.role, r.size, r.user_data), []).append(r)
    return [g[i : i + MAX_PER_CREATE] for g in groups.values() for i in range(0, len(g), MAX_PER_CREATE)]


def droplet_tags(cluster_name: str, cluster_uuid: str, batch: Sequence[VmRequest]) -> list[str]:
    """Tags for one create call: the cluster's, the role's, the firewall's target tag, and the
    node tag when the call makes a single droplet."""
    role = batch[0].role
    if len(batch) == 1:
        base = tags.vm_tags(cluster_name, cluster_uuid, role, batch[0].name)
    else:
        base = {**tags.cluster_tags(cluster_name, cluster_uuid), tags.ROLE: role}
    return [*do_tags.as_plain_strings(base), do_tags.role_target_tag(cluster_uuid, role)]


def fingerprint(public_key: str) -> str:
    """The MD5 fingerprint DigitalOcean gives a key (colon-separated hex of the key blob), so
    droplets can name the key without listing the account's keys."""
    return md5_fingerprint(public_key)
