"""The plan: from a validated spec and the region map, every network, subnet, firewall rule
and VM a cluster needs, with their addresses. Pure and deterministic: no I/O, no clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import clouds, ipam
from .errors import InputError
from .preflight import PairCheck, check_pairs, overall
from .regions import ROLES, RegionMap
from .spec import ClusterSpec

if TYPE_CHECKING:
    from .clouds.balancing import BalancerPlan, RecordSet

WIREGUARD_PORT = 51820
KUBE_API_PORT = 6443
NODEPORT_RANGE = "30000-32767"
ANYWHERE = "0.0.0.0/0"
ROLE_SHORT = {"master": "m", "worker": "w"}


@dataclass(frozen=True)
class FirewallRule:
    """One inbound rule: protocol (tcp|udp), a port or range "a-b", and source CIDRs."""

    protocol: str
    ports: str
    sources: tuple[str, ...]
    purpose: str

    @property
    def port_range(self) -> tuple[int, int]:
        low, _, high = self.ports.partition("-")
        return int(low), int(high or low)


def firewall_rules(
    role: str,
    ssh_cidrs: Iterable[str],
    api_cidrs: Iterable[str] = (ANYWHERE,),
    nodeport_cidrs: Iterable[str] = (),
    node_ips: Iterable[str] = (),
    ingress_ports: Iterable[int] = (),
) -> tuple[FirewallRule, ...]:
    """The inbound rules of a role: tcp 22 from the SSH CIDRs on both; udp 51820 (WireGuard)
    only from the cluster's own nodes, each public IP as a /32 (no sources while no node has
    an address yet: such a rule is never sent to a cloud, see `enforceable`); masters tcp 6443
    from the API CIDRs; workers tcp+udp 30000-32767 only from the NodePort CIDRs, if any, and
    tcp on each of `ingress_ports` (the ingress controller's NodePorts, behind the cloud's load
    balancer, which keeps the client's address) from anywhere.
    Everything between nodes beyond WireGuard goes through the mesh (the host firewall on wg0)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    peers = tuple(sorted({f"{ipaddress.IPv4Address(ip)}/32" for ip in node_ips}, key=_ip_order))
    rules = [FirewallRule("tcp", "22", tuple(ssh_cidrs), "ssh")]
    if role == "master":
        rules.append(FirewallRule("tcp", str(KUBE_API_PORT), tuple(api_cidrs), "kubernetes-api"))
    rules.append(FirewallRule("udp", str(WIREGUARD_PORT), peers, "wireguard"))
    if role == "worker" and tuple(nodeport_cidrs):
        rules.append(FirewallRule("tcp", NODEPORT_RANGE, tuple(nodeport_cidrs), "nodeport"))
        rules.append(FirewallRule("udp", NODEPORT_RANGE, tuple(nodeport_cidrs), "nodeport"))
    if role == "worker":
        rules += [FirewallRule("tcp", str(port), (ANYWHERE,), "ingress") for port in ingress_ports]
    return tuple(rules)


def _ip_order(cidr: str) -> int:
    return int(ipaddress.IPv4Network(cidr).network_address)


def enforceable(firewall: Mapping[str, tuple[FirewallRule, ...]]) -> dict[str, tuple[FirewallRule, ...]]:
    """The rules a cloud is given: those with at least one source (a rule without sources is
    "anywhere" on some clouds, never "nowhere")."""
    return {role: tuple(r for r in rules if r.sources) for role, rules in firewall.items()}


def node_name(cluster: str, cloud: str, role: str, index: int) -> str:
    """A node's name: `<cluster>-<short>-<m|w><index>`, `short` the cloud's (clouds.CloudInfo). A DNS label."""
    return f"{cluster}-{clouds.info(cloud).short}-{ROLE_SHORT[role]}{index}"


@dataclass(frozen=True)
class NodePlan:
    """One VM to run."""

    name: str
    cloud: str
    role: str
    index: int
    size: str
    image: str
    mesh_ip: str


@dataclass(frozen=True)
class CloudPlan:
    """Everything the cluster has on one cloud."""

    cloud: str
    region: str
    zone: str | None
    network_cidr: str
    subnet_cidr: str
    image: Mapping[str, str]
    firewall: Mapping[str, tuple[FirewallRule, ...]]  # role -> rules
    nodes: tuple[NodePlan, ...]


@dataclass(frozen=True)
class IngressPlan:
    """The cluster's ingress: a load balancer on each cloud with workers (its forwards, health
    check and backends: that cloud's workers), and the records at the domain, if one is given
    (on `dns_provider`, or printed for the user to create when None)."""

    domain: str | None
    dns_provider: str | None
    email: str | None
    balancers: tuple[tuple[str, BalancerPlan], ...]  # (cloud, its load balancer)

    def balancer(self, cloud: str) -> BalancerPlan | None:
        return next((b for c, b in self.balancers if c == cloud), None)

    def records(self, cluster_uuid: str | None, addresses: Mapping[str, str | None]) -> tuple[RecordSet, ...]:
        """The record sets at the domain (none without one): the A set of every load balancer's
        address (`addresses`: cloud -> address; an unknown one shows as a placeholder) and the
        TXT owner record naming the cluster's UUID."""
        from .ingress_dns import wanted_records

        if self.domain is None:
            return ()
        values = [addresses.get(c) or f"<address of the {c} load balancer>" for c, _ in self.balancers]
        return wanted_records(self.domain, cluster_uuid or "<cluster uuid>", values)

    def to_dict(self, cluster_uuid: str | None = None) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "dns_provider": self.dns_provider,
            "email": self.email,
            "load_balancers": [
                {
                    "cloud": cloud,
                    "forwards": [{"port": f.listen, "node_port": f.node_port, "protocol": "tcp"} for f in b.forwards],
                    "health_check": {"protocol": "http", "port": b.health_port, "path": b.health_path},
                    "backends": list(b.backends),
                }
                for cloud, b in self.balancers
            ],
            "records": [{"name": r.name, "type": r.type, "ttl": r.ttl, "values": list(r.values)}
                        for r in self.records(cluster_uuid, {})],
        }


@dataclass(frozen=True)
class ClusterPlan:
    """The whole plan of a cluster."""

    spec: ClusterSpec
    region_name: str
    clouds: tuple[CloudPlan, ...]
    latency: tuple[PairCheck, ...]
    ingress: IngressPlan | None = None

    @property
    def nodes(self) -> tuple[NodePlan, ...]:
        return tuple(n for c in self.clouds for n in c.nodes)

    @property
    def latency_verdict(self) -> str:
        return overall(self.latency)

    def cloud(self, name: str) -> CloudPlan:
        return next(c for c in self.clouds if c.cloud == name)

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data, for `--output json`."""
        data: dict[str, Any] = {
            "name": self.spec.name,
            "region": {"key": self.spec.region, "name": self.region_name},
            "clouds": [
                {
                    "cloud": c.cloud,
                    "region": c.region,
                    "zone": c.zone,
                    "network": c.network_cidr,
                    "subnet": c.subnet_cidr,
                    "image": dict(c.image),
                    "firewall": {
                        role: [
                            {"protocol": r.protocol, "ports": r.ports, "sources": list(r.sources), "purpose": r.purpose}
                            for r in rules
                        ]
                        for role, rules in c.firewall.items()
                    },
                    "nodes": [
                        {
                            "name": n.name,
                            "role": n.role,
                            "size": n.size,
                            "image": n.image,
                            "subnet": c.subnet_cidr,
                            "mesh_ip": n.mesh_ip,
                        }
                        for n in c.nodes
                    ],
                }
                for c in self.clouds
            ],
            "mesh": str(ipam.MESH),
            "services": str(ipam.SERVICES),
            "pods": str(ipam.PODS),
            "latency": {
                "threshold_ms": self.spec.latency_threshold_ms,
                "verdict": self.latency_verdict,
                "pairs": [p.to_dict() for p in self.latency],
            },
        }
        if self.ingress is not None:
            data["ingress"] = self.ingress.to_dict()
        return data


def make_plan(
    spec: ClusterSpec,
    regions: RegionMap,
    *,
    account_ranges: Iterable[str] = (),
    existing_nodes: Mapping[str, str] | None = None,
    ever_allocated_mesh: Iterable[str] = (),
    taken_indexes: Mapping[tuple[str, str], Iterable[int]] | None = None,
    node_public_ips: Iterable[str] = (),
) -> ClusterPlan:
    """The plan for `spec`.

    `existing_nodes` maps node name to its mesh address for nodes that already exist (they
    keep their address); new nodes get fresh addresses, never one in `ever_allocated_mesh`.
    `taken_indexes` lists, per (cloud, role), node indexes ever used, so a new node never takes
    the name of a removed one. Each cloud's network and subnet are its provider's plan_network,
    given `account_ranges` (the ranges the account's networks use, where the cloud picks its
    network from free blocks). `node_public_ips` are the cluster's nodes' public addresses
    (every cloud's): the only sources WireGuard is open to.
    """
    node_ips = tuple(node_public_ips)
    existing = dict(existing_nodes or {})
    taken = {k: set(v) for k, v in (taken_indexes or {}).items()}
    region = regions.region(spec.region)
    ingress = _ingress_plan(spec)
    ingress_ports = sorted({f.node_port for _, b in ingress.balancers for f in b.forwards}) if ingress else []

    wanted: list[tuple[str, str, int, str]] = []  # cloud, role, index, name
    for c in spec.clouds:
        for role in ROLES:
            used = taken.setdefault((c.cloud, role), set())
            live = sorted(i for i in used if node_name(spec.name, c.cloud, role, i) in existing)
            keep = live[: c.count(role)]
            index = 0
            while len(keep) < c.count(role):
                index += 1
                if index not in used:
                    keep.append(index)
                    used.add(index)
            for i in sorted(keep):
                wanted.append((c.cloud, role, i, node_name(spec.name, c.cloud, role, i)))

    new_names = [w[3] for w in wanted if w[3] not in existing]
    fresh = ipam.allocate_mesh_addresses(len(new_names), [*ever_allocated_mesh, *existing.values()])
    mesh: dict[str, str] = dict(existing)
    mesh.update({name: str(ip) for name, ip in zip(new_names, fresh, strict=True)})

    cloud_plans = []
    for c in spec.clouds:
        cr = region.clouds[c.cloud]
        provider = clouds.provider_class(c.cloud)
        network, subnet = provider.plan_network(account_ranges)
        nodes = tuple(
            NodePlan(
                name=name,
                cloud=cloud,
                role=role,
                index=index,
                size=c.sizes[role],
                image=provider.image_label(cr.image),
                mesh_ip=mesh[name],
            )
            for cloud, role, index, name in wanted
            if cloud == c.cloud
        )
        cloud_plans.append(
            CloudPlan(
                cloud=c.cloud,
                region=cr.region,
                zone=cr.zone,
                network_cidr=network,
                subnet_cidr=subnet,
                image=cr.image,
                firewall={
                    role: firewall_rules(role, spec.ssh_cidrs, spec.api_cidrs, spec.nodeport_cidrs, node_ips,
                                         ingress_ports)
                    for role in ROLES
                },
                nodes=nodes,
            )
        )
    latency = tuple(check_pairs(region, [c.cloud for c in spec.clouds], spec.latency_threshold_ms))
    if ingress is not None:
        ingress = _with_backends(ingress, cloud_plans)
    return ClusterPlan(spec=spec, region_name=region.name, clouds=tuple(cloud_plans), latency=latency,
                       ingress=ingress)


def _ingress_plan(spec: ClusterSpec) -> IngressPlan | None:
    """The spec's ingress without backends yet (the load balancers' forwards decide which
    NodePorts the workers' firewall opens), or None."""
    from .clouds.balancing import BalancerPlan

    if spec.ingress is None:
        return None
    balancers = tuple((c.cloud, BalancerPlan()) for c in spec.clouds if c.workers > 0)
    return IngressPlan(spec.ingress.domain, spec.ingress.dns_provider, spec.ingress.email, balancers)


def _with_backends(ingress: IngressPlan, clouds: Iterable[CloudPlan]) -> IngressPlan:
    """`ingress` with each load balancer's backends: its cloud's planned workers."""
    from dataclasses import replace

    workers = {c.cloud: tuple(n.name for n in c.nodes if n.role == "worker") for c in clouds}
    balancers = tuple((cloud, replace(b, backends=workers.get(cloud, ()))) for cloud, b in ingress.balancers)
    return replace(ingress, balancers=balancers)


def refuse_far_clouds(plan: ClusterPlan) -> None:
    """Raise InputError (exit 2) when a pair of the plan's clouds is over the latency
    threshold by its physical bound or its published figure."""
    failing = [p for p in plan.latency if p.verdict == "fail"]
    if failing:
        pairs = "; ".join(p.describe() for p in failing)
        raise InputError(
            "--cloud",
            f"these clouds are too far apart in {plan.spec.region} for "
            f"{plan.spec.latency_threshold_ms:g} ms: {pairs}",
            "drop one of them, pick another region, or raise --latency-threshold-ms",
        )
