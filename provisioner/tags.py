"""The ownership keys every cloud resource of a cluster carries, in one place.

Each provider formats them as its cloud takes them (key-value tags or labels, which need
lowercase keys and values: these are; plain strings; or, where a resource takes no tags,
the cluster's short id in its name and the full UUID in its description).
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
