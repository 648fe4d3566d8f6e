"""The ownership keys every cloud resource of a cluster carries, in one place.

Each cloud formats them its own way: AWS tags and Azure tags take them as they are;
GCP labels need lowercase keys and values (they are already); DigitalOcean tags are
plain strings `key:value`. Where a resource takes no labels (GCP networks and firewalls),
its name carries the cluster's short id and its description the full UUID.
"""

from __future__ import annotations

CLUSTER_UUID = "cast-cluster-uuid"
CLUSTER_NAME = "cast-cluster"
ROLE = "cast-role"
NODE = "cast-node"
MANAGED_BY = "cast-managed-by"


def short_id(cluster_uuid: str) -> str:
    """The first 8 hex digits of the UUID: short enough for names with length limits."""
    return cluster_uuid.replace("-", "")[:8]


def cluster_tags(cluster_name: str, cluster_uuid: str) -> dict[str, str]:
    """Tags for every resource of the cluster that can carry tags."""
    return {CLUSTER_UUID: cluster_uuid, CLUSTER_NAME: cluster_name, MANAGED_BY: "cast"}


def vm_tags(cluster_name: str, cluster_uuid: str, role: str, node: str) -> dict[str, str]:
    """Tags for a VM: the cluster's tags plus its role and node name."""
    return {**cluster_tags(cluster_name, cluster_uuid), ROLE: role, NODE: node}


def as_plain_strings(tags: dict[str, str]) -> list[str]:
    """Tags as plain `key:value` strings, for clouds whose tags are strings (DigitalOcean)."""
    return [f"{key}:{value}" for key, value in tags.items()]


def uuid_tag_string(cluster_uuid: str) -> str:
    """The one plain-string tag that marks ownership on DigitalOcean."""
    return f"{CLUSTER_UUID}:{cluster_uuid}"


def role_target_tag(cluster_uuid: str, role: str) -> str:
    """A plain-string tag naming one role of one cluster, for clouds whose firewalls target
    VMs by tag (DigitalOcean): `cast-role:<role>:<uuid>`. DigitalOcean tags allow letters,
    digits, ':', '-' and '_' (up to 255 characters), so ':' needs no replacement."""
    return f"{ROLE}:{role}:{cluster_uuid}"
