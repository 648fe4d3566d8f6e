"""The ingress contract: a load balancer per cloud in front of that cloud's workers, and the
DNS zone that holds the cluster's round-robin A records. Written once, like `base.Cloud`.

A cloud's provider implements `LoadBalancing` beside `base.Cloud` (same rules: official SDK,
errors mapped, lookups by the cluster's UUID, ensures idempotent and dry-run safe, blocking
with polling and a deadline). A DNS provider implements `DnsZone`; records take no tags, so
ownership is not the zone's business: the cloud-blind ingress step keeps a TXT owner record
beside each name it manages and never touches a name it does not own.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .base import CloudTarget, ClusterRef, Ensured, Vm

Z = TypeVar("Z")


def zone_for(domain: str, zones: Iterable[Z], name: Callable[[Z], str] = str) -> Z | None:
    """The one of `zones` whose name (`name(zone)`, trailing dot or not) is `domain` itself or
    its longest suffix by whole labels; None when none is. Every DNS provider finds the zone
    holding a domain this way."""
    wanted = domain.lower().rstrip(".")

    def label(zone: Z) -> str:
        return name(zone).lower().rstrip(".")

    fits = [z for z in zones if label(z) and (wanted == label(z) or wanted.endswith("." + label(z)))]
    return max(fits, key=lambda z: len(label(z)), default=None)

HTTP_NODEPORT = 30080  # the ingress controller's fixed NodePorts on every worker
HTTPS_NODEPORT = 30443
HEALTH_PATH = "/healthz"  # answered 200 by ingress-nginx's default server on the HTTP port


@dataclass(frozen=True)
class Forward:
    """One TCP port on the load balancer forwarded to one NodePort on the backends."""

    listen: int
    node_port: int


@dataclass(frozen=True)
class BalancerPlan:
    """What the cluster wants of one cloud's load balancer: its forwards, its health check
    (HTTP GET `health_path` on `health_port`, 200 = healthy) and its backends (node names:
    that cloud's workers, and only them)."""

    forwards: tuple[Forward, ...] = (Forward(80, HTTP_NODEPORT), Forward(443, HTTPS_NODEPORT))
    health_port: int = HTTP_NODEPORT
    health_path: str = HEALTH_PATH
    backends: tuple[str, ...] = ()


@dataclass(frozen=True)
class BalancerEnsured(Ensured):
    """What ensure_load_balancer found or made: `address` is the balancer's public IPv4
    (None only in a dry run before it exists), `backends` the node names now registered."""

    address: str | None = None
    backends: tuple[str, ...] = ()


class LoadBalancing(ABC):
    """The load-balancer half of a provider (mixed into its `Provider` beside `base.Cloud`)."""

    # Whether the balancer delivers packets on the port they arrived on (80/443) rather than on
    # the NodePorts (GCP's passthrough balancer): the ingress controller's Service then takes its
    # address as an externalIP, so that kube-proxy hands those packets to the controller.
    keeps_port: bool = False

    @abstractmethod
    def ensure_load_balancer(
        self, target: CloudTarget, plan: BalancerPlan, workers: Sequence[Vm], *, dry_run: bool = False
    ) -> BalancerEnsured:
        """The cluster's one L4 load balancer on this cloud, with a static public IPv4, the
        plan's forwards and health check, and exactly `workers` (the VMs named in
        `plan.backends`) as backends: missing backends are added, others removed, live.
        Everything made carries the cluster's UUID (tags, labels, or name and description
        where the cloud takes no tags). Idempotent; dry_run changes nothing."""

    @abstractmethod
    def find_load_balancer(self, cluster: ClusterRef) -> BalancerEnsured | None:
        """The cluster's load balancer as the cloud reports it, or None."""

    @abstractmethod
    def delete_load_balancer(self, target: CloudTarget) -> None:
        """Delete the cluster's load balancer and everything made for it (rules, pools,
        health checks, its public IP) and block until gone. Harmless when none exists.
        delete-cluster runs this before the networks go."""


@dataclass(frozen=True)
class RecordSet:
    """All records of one type at one name. `name` is absolute, without the trailing dot
    ("apps.example.com"); TXT values are given unquoted."""

    name: str
    type: str  # "A" or "TXT"
    values: tuple[str, ...]
    ttl: int = 60


class DnsZone(ABC):
    """The user's zone that holds `domain`, on one DNS provider, found by the longest zone
    name that is a suffix of the domain. Raises InputError (exit 2) naming the domain and the
    provider when the account has no such zone."""

    provider: str = ""

    @abstractmethod
    def record_sets(self, name: str) -> list[RecordSet]:
        """The record sets at exactly `name` (every type)."""

    @abstractmethod
    def upsert(self, record: RecordSet) -> None:
        """Create or replace the record set of `record.type` at `record.name`."""

    @abstractmethod
    def delete(self, record: RecordSet) -> None:
        """Delete the record set of `record.type` at `record.name`; absent counts as done."""


DNS_PROVIDERS = {
    "route53": "provisioner.clouds.aws_dns",
    "clouddns": "provisioner.clouds.gcp_dns",
    "azuredns": "provisioner.clouds.azure_dns",
    "digitalocean": "provisioner.clouds.do_dns",
}


def open_dns(provider: str, domain: str) -> DnsZone:
    """The zone holding `domain` on DNS `provider` (a key of DNS_PROVIDERS), its module and SDK
    imported on first use. Raises KeyError for an unknown provider."""
    zone: type[DnsZone] = importlib.import_module(DNS_PROVIDERS[provider]).Zone
    return zone(domain)  # type: ignore[call-arg]


# A cloud's load-balancer module, imported on first use: it exposes `Balancers(region, zone)`.
LB_MODULES = {
    "aws": "provisioner.clouds.aws_lb",
    "gcp": "provisioner.clouds.gcp_lb",
    "azure": "provisioner.clouds.azure_lb",
    "digitalocean": "provisioner.clouds.do_lb",
}


def balances(cloud: str) -> bool:
    """Whether cast can make load balancers on `cloud` (its module is installed)."""
    return cloud in LB_MODULES and importlib.util.find_spec(LB_MODULES[cloud]) is not None


def open_balancers(cloud: str, region: str, zone: str | None = None) -> LoadBalancing:
    """The load balancing of `cloud` in `region`, its module and SDK imported on first use (in
    the calling thread). Raises KeyError for a cloud without a load-balancer module."""
    if not balances(cloud):
        raise KeyError(cloud)
    balancers: type[LoadBalancing] = importlib.import_module(LB_MODULES[cloud]).Balancers
    return balancers(region, zone)  # type: ignore[call-arg]
