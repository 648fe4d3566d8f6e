"""DigitalOcean's tag formats: its tags are plain strings, so the cluster's keys (provisioner.tags)
go in as `key:value`. DigitalOcean tags allow letters, digits, ':', '-' and '_' (up to 255
characters), so ':' needs no replacement."""

from __future__ import annotations

from ..tags import CLUSTER_UUID, ROLE


def as_plain_strings(tags: dict[str, str]) -> list[str]:
    """Tags as plain `key:value` strings."""
    return [f"{key}:{value}" for key, value in tags.items()]


def uuid_tag_string(cluster_uuid: str) -> str:
    """The one plain-string tag that marks ownership."""
    return f"{CLUSTER_UUID}:{cluster_uuid}"


def role_target_tag(cluster_uuid: str, role: str) -> str:
    """The tag naming one role of one cluster, which that role's firewall targets:
    `cast-role:<role>:<uuid>`."""
    return f"{ROLE}:{role}:{cluster_uuid}"
