"""What a cluster's GCP resources are called and look like: pure, no SDK, no I/O.

GCP networks, subnetworks and firewalls take no labels, so their names start with
`cast-<shortid>-` and their description carries `cast-cluster-uuid=<uuid>`; instances carry
the ownership labels (provisioner.tags). A firewall's rule has one set of source ranges, so a
role's planned rules are grouped by their sources: one GCP firewall per (role, sources),
named `cast-<shortid>-<role>-fw`, then `-fw-2`, ... in the plan's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..plan import FirewallRule
from ..tags import CLUSTER_NAME, CLUSTER_UUID
from .base import ClusterRef

DISK_GB = 20
USER_DATA = "user-data"  # the metadata key cloud-init reads; removed once the node rotated its host key


def prefix(cluster: ClusterRef) -> str:
    """The name prefix of every network, subnetwork and firewall of the cluster."""
    return f"cast-{cluster.short_id}-"


def network_name(cluster: ClusterRef) -> str:
    return f"{prefix(cluster)}net"


def subnetwork_name(cluster: ClusterRef) -> str:
    return f"{prefix(cluster)}subnet"


def instance_name(cluster: ClusterRef, node: str) -> str:
    """The instance name of a node: `<node>-<shortid>`, unique across clusters in a zone."""
    return f"{node}-{cluster.short_id}"


def role_tag(role: str) -> str:
    """The network tag firewalls target for a role."""
    return f"cast-{role}"


def description(cluster: ClusterRef, what: str) -> str:
    """A description that carries the cluster's UUID (for resources without labels)."""
    return f"{CLUSTER_UUID}={cluster.uuid} {CLUSTER_NAME}={cluster.name} {what}"


def owned(cluster: ClusterRef, name: str, text: str | None) -> bool:
    """True when a network/subnetwork/firewall named `name` with description `text` is the cluster's."""
    return name.startswith(prefix(cluster)) and f"{CLUSTER_UUID}={cluster.uuid}" in (text or "").split()


def name_filter(cluster: ClusterRef) -> str:
    """A list filter matching the cluster's name prefix (a regular expression on the name)."""
    return f'name eq "{prefix(cluster)}.*"'


def label_filter(cluster: ClusterRef) -> str:
    return f'labels.{CLUSTER_UUID} = "{cluster.uuid}"'


def image_link(image: Mapping[str, str]) -> str:
    """The image family reference of the region map's image (project + family)."""
    return f"projects/{image['project']}/global/images/family/{image['family']}"


@dataclass(frozen=True)
class FirewallSpec:
    """One GCP firewall as cast wants it, normalised for comparison."""

    name: str
    role: str
    allowed: tuple[tuple[str, tuple[str, ...]], ...]  # (protocol, ports) in plan order
    sources: tuple[str, ...]  # sorted
    target_tags: tuple[str, ...]


def firewall_specs(cluster: ClusterRef, firewall: Mapping[str, tuple[FirewallRule, ...]]) -> list[FirewallSpec]:
    """The GCP firewalls for the plan's rules: per role, one per distinct set of sources."""
    specs = []
    for role, rules in firewall.items():
        groups: dict[tuple[str, ...], list[FirewallRule]] = {}
        for rule in rules:
            groups.setdefault(tuple(sorted(rule.sources)), []).append(rule)
        for index, (sources, group) in enumerate(groups.items(), start=1):
            ports: dict[str, list[str]] = {}
            for rule in group:
                ports.setdefault(rule.protocol, []).append(rule.ports)
            suffix = "" if index == 1 else f"-{index}"
            specs.append(
                FirewallSpec(
                    name=f"{prefix(cluster)}{role}-fw{suffix}",
                    role=role,
                    allowed=tuple((proto, tuple(p)) for proto, p in ports.items()),
                    sources=sources,
                    target_tags=(role_tag(role),),
                )
            )
    return specs
