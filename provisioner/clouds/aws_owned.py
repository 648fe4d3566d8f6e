"""Ownership on AWS: the cluster's tags in EC2's shapes, the UUID filter every lookup uses,
and the "at most one" rule (clouds.leaks) in EC2's shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import tags
from . import leaks
from .aws_api import CLOUD
from .base import ClusterRef

LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped")


def tag_list(values: Mapping[str, str]) -> list[dict[str, str]]:
    """EC2's [{"Key", "Value"}] form of a tag mapping."""
    return [{"Key": k, "Value": v} for k, v in values.items()]


def tag_specs(resource_types: Sequence[str], values: Mapping[str, str]) -> list[dict[str, Any]]:
    """TagSpecifications that tag each of `resource_types` at creation."""
    return [{"ResourceType": t, "Tags": tag_list(values)} for t in resource_types]


def cluster_tags(cluster: ClusterRef, name: str, **extra: str) -> dict[str, str]:
    """The cluster's tags plus a Name (the console's label) and any extra keys."""
    return {**tags.cluster_tags(cluster.name, cluster.uuid), "Name": name, **extra}


def owned(cluster: ClusterRef, *more: dict[str, Any]) -> list[dict[str, Any]]:
    """Filters selecting what carries the cluster's UUID (plus `more` filters)."""
    return [{"Name": f"tag:{tags.CLUSTER_UUID}", "Values": [cluster.uuid]}, *more]


def tags_of(item: Mapping[str, Any]) -> dict[str, str]:
    """The tags of a described resource as a mapping."""
    return {t["Key"]: t["Value"] for t in item.get("Tags") or item.get("TagSet") or []}


def at_most_one(kind: str, items: list[dict[str, Any]], id_key: str,
                cluster: ClusterRef) -> dict[str, Any] | None:
    """The single item, or None; more than one is a leak (leaks.at_most_one)."""
    return leaks.at_most_one(CLOUD, kind, items, lambda i: str(i[id_key]))
