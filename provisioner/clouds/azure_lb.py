"""Azure's load balancer for the cluster's workers: a Standard Load Balancer in the cluster's
resource group, through azure-mgmt-network (the Provider's session, error mapping and
long-running-operation waits). The SDK is imported lazily.

`<cluster>-lb-ip`, a Standard static public IP, is the frontend `frontend`; the backend pool
`workers` is joined by the workers' NICs (their ip configuration's
loadBalancerBackendAddressPools, changed live, one NIC PUT each); the probe `healthz` is HTTP
GET on the plan's health port and path; one TCP rule per forward `tcp-<listen>` (frontend
port -> NodePort, TCP reset on idle). The public IP and the load balancer carry the cluster's
tags (its UUID).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import tags
from ..errors import CloudError, NotFoundError
from ..parallel import gather
from ..teardown import Deletable, delete_in_passes
from . import azure_build as build
from .azure_session import CLOUD
from .azure_vms import has_uuid
from .balancing import BalancerEnsured, BalancerPlan, LoadBalancing
from .base import CloudResource, CloudTarget, ClusterRef, Vm

if TYPE_CHECKING:
    from .azure import Provider

LB_KIND = "Microsoft.Network/loadBalancers"
PIP_KIND = "Microsoft.Network/publicIPAddresses"
FRONTEND, POOL, PROBE = "frontend", "workers", "healthz"


def lb_name(cluster: ClusterRef) -> str:
    return f"{cluster.name}-lb"


def pip_name(cluster: ClusterRef) -> str:
    return f"{cluster.name}-lb-ip"


def _pool_id(subscription: str, group: str, cluster: ClusterRef) -> str:
    return f"{build.resource_id(subscription, group, LB_KIND, lb_name(cluster))}/backendAddressPools/{POOL}"


class Balancers(LoadBalancing):
    """The cluster's load balancer, in its resource group."""

    def __init__(self, region: str, zone: str | None = None, provider: Provider | None = None):
        from .azure import Provider  # the session, the group lookup and the error mapping

        self.region, self.zone = region, zone
        self.p = provider or Provider(region, zone)

    # --- the contract ------------------------------------------------------------------

    def ensure_load_balancer(self, target: CloudTarget, plan: BalancerPlan, workers: Sequence[Vm], *,
                             dry_run: bool = False) -> BalancerEnsured:
        cluster = target.cluster
        group = self.p.group_of(cluster)
        if group is None:
            if dry_run:
                return BalancerEnsured(actions=(f"create public IP {pip_name(cluster)}",
                                                f"create load balancer {lb_name(cluster)}",
                                                *(f"add {w.name} to the load balancer" for w in workers)))
            self.p.require_group(cluster)
        assert group is not None
        pip, lb, nics = self._read(group, cluster)
        actions: list[str] = []
        if pip is None:
            actions.append(f"create public IP {pip_name(cluster)}")
            if not dry_run:
                pip = self._put_pip(group, cluster)
        wanted_lb = self._model(group, cluster, plan)
        if lb is None or _differs(lb, wanted_lb):
            actions.append(f"{'create' if lb is None else 'repair'} load balancer {lb_name(cluster)} "
                           f"({', '.join(f'{f.listen}->{f.node_port}' for f in plan.forwards)}, probe HTTP "
                           f"{plan.health_port} {plan.health_path})")
            if not dry_run:
                net = self.p.session.network
                self.p.put(f"create load balancer {lb_name(cluster)}", lambda polling: net.load_balancers
                           .begin_create_or_update(group, lb_name(cluster), wanted_lb, polling=polling),
                           group, LB_KIND, lb_name(cluster))
        pool = _pool_id(self.p.session.subscription_id, group, cluster)
        wanted = {w.name for w in workers}
        members = {node for node, nic in nics.items() if _joined(nic, pool)}
        changes = [(node, node in wanted) for node in sorted(set(nics) & (wanted ^ members))]
        missing = sorted(wanted - set(nics))
        if missing:
            raise NotFoundError(CLOUD, f"no network interface of {', '.join(missing)} in {group}: ensure the VMs first")
        actions += [f"{'add' if join else 'remove'} {node} {'to' if join else 'from'} the load balancer"
                    for node, join in changes]
        if dry_run:
            return BalancerEnsured(resources=_resources(pip, lb), actions=tuple(actions),
                                   address=pip.ip_address if pip is not None else None, backends=tuple(sorted(members)))
        gather(*(lambda n=node, j=join: self._join(group, nics[n], pool, j) for node, join in changes))
        pip, lb, _ = self._read(group, cluster, with_nics=False)
        return BalancerEnsured(resources=_resources(pip, lb), actions=tuple(actions),
                               address=pip.ip_address if pip is not None else None, backends=tuple(sorted(wanted)))

    def find_load_balancer(self, cluster: ClusterRef) -> BalancerEnsured | None:
        group = self.p.group_of(cluster)
        if group is None:
            return None
        pip, lb, nics = self._read(group, cluster)
        if pip is None and lb is None:
            return None
        pool = _pool_id(self.p.session.subscription_id, group, cluster)
        return BalancerEnsured(resources=_resources(pip, lb), address=pip.ip_address if pip is not None else None,
                               backends=tuple(sorted(n for n, nic in nics.items() if _joined(nic, pool))))

    def delete_load_balancer(self, target: CloudTarget) -> None:
        group = self.p.group_of(target.cluster)
        if group is not None:
            delete_in_passes(CLOUD, deletables(self, group, target.cluster, detach=True))

    # --- the parts ---------------------------------------------------------------------

    def _read(self, group: str, cluster: ClusterRef, *, with_nics: bool = True) -> tuple[Any, Any, dict[str, Any]]:
        """(public IP, load balancer, the cluster's NICs by node); None for what is absent."""
        net = self.p.session.network

        def get(what: str, operations: Any, name: str) -> Any:
            try:
                found = self.p.call(f"read {what} {name}", lambda: operations.get(group, name))
            except NotFoundError:
                return None
            if not has_uuid(found, cluster):
                raise CloudError(CLOUD, f"{what} {name} in {group} does not carry cluster {cluster.name}'s UUID "
                                        f"({tags.CLUSTER_UUID}): not touching it")
            return found

        def nics() -> dict[str, Any]:
            found = self.p.call(f"list network interfaces in {group}", lambda: list(net.network_interfaces.list(group)))
            return {str((n.tags or {}).get(tags.NODE)): n for n in found if has_uuid(n, cluster) and
                    (n.tags or {}).get(tags.NODE)}

        pip, lb, by_node = gather(lambda: get("public IP", net.public_ip_addresses, pip_name(cluster)),
                                  lambda: get("load balancer", net.load_balancers, lb_name(cluster)),
                                  nics if with_nics else dict)
        return pip, lb, by_node

    def _put_pip(self, group: str, cluster: ClusterRef) -> Any:
        net = self.p.session.network
        model = build.public_ip(self.region, tags.cluster_tags(cluster.name, cluster.uuid), None)
        return self.p.lro(f"create public IP {pip_name(cluster)}", lambda: net.public_ip_addresses
                          .begin_create_or_update(group, pip_name(cluster), model))

    def _model(self, group: str, cluster: ClusterRef, plan: BalancerPlan) -> Any:
        from azure.mgmt.network import models as m

        lb_id = build.resource_id(self.p.session.subscription_id, group, LB_KIND, lb_name(cluster))
        pip_id = build.resource_id(self.p.session.subscription_id, group, PIP_KIND, pip_name(cluster))

        def ref(kind: str, name: str) -> Any:
            return m.SubResource(id=f"{lb_id}/{kind}/{name}")

        rules = [m.LoadBalancingRule(name=f"tcp-{f.listen}", properties=m.LoadBalancingRulePropertiesFormat(
            frontend_ip_configuration=ref("frontendIPConfigurations", FRONTEND),
            backend_address_pool=ref("backendAddressPools", POOL), probe=ref("probes", PROBE), protocol="Tcp",
            frontend_port=f.listen, backend_port=f.node_port, enable_tcp_reset=True, idle_timeout_in_minutes=4,
            disable_outbound_snat=True)) for f in plan.forwards]
        return m.LoadBalancer(
            location=self.region, tags=tags.cluster_tags(cluster.name, cluster.uuid),
            sku=m.LoadBalancerSku(name="Standard", tier="Regional"),
            properties=m.LoadBalancerPropertiesFormat(
                frontend_ip_configurations=[m.FrontendIPConfiguration(
                    name=FRONTEND, properties=m.FrontendIPConfigurationPropertiesFormat(
                        public_ip_address=m.PublicIPAddress(id=pip_id)))],
                backend_address_pools=[m.BackendAddressPool(name=POOL)],
                probes=[m.Probe(name=PROBE, properties=m.ProbePropertiesFormat(
                    protocol="Http", port=plan.health_port, request_path=plan.health_path, interval_in_seconds=5,
                    number_of_probes=2, probe_threshold=2))],
                load_balancing_rules=rules))

    def _join(self, group: str, nic: Any, pool: str, join: bool) -> None:
        """Put one NIC's primary ip configuration into the pool, or take it out (a NIC PUT)."""
        from azure.mgmt.network import models as m

        conf = nic.ip_configurations[0]
        kept = [p for p in (conf.load_balancer_backend_address_pools or []) if (p.id or "").lower() != pool.lower()]
        conf.load_balancer_backend_address_pools = kept + ([m.BackendAddressPool(id=pool)] if join else [])
        net = self.p.session.network
        verb = "add" if join else "remove"
        self.p.put(f"{verb} network interface {nic.name} {'to' if join else 'from'} the load balancer",
                   lambda polling: net.network_interfaces.begin_create_or_update(group, nic.name, nic,
                                                                                 polling=polling),
                   group, "Microsoft.Network/networkInterfaces", nic.name)


def deletables(balancers: Balancers, group: str, cluster: ClusterRef, *, detach: bool = False) -> list[Deletable]:
    """The cluster's load balancer and its public IP as teardown items (the IP after the load
    balancer), keys `load-balancer <name>` and `public-ip <name>`. With `detach` the workers'
    NICs leave the pool first (`detach <node>` items): deleting the load balancer alone, not
    the whole resource group, with the VMs staying."""
    pip, lb, nics = balancers._read(group, cluster, with_nics=detach)
    net, p = balancers.p.session.network, balancers.p
    pool = _pool_id(p.session.subscription_id, group, cluster)
    items = [Deletable(f"detach {node}", partial(balancers._join, group, nic, pool, False))
             for node, nic in sorted(nics.items()) if _joined(nic, pool)]
    if lb is not None:
        items.append(Deletable(f"load-balancer {lb.name}", lambda: p.lro(
            f"delete load balancer {lb.name}", lambda: net.load_balancers.begin_delete(group, lb.name)),
            frozenset(i.key for i in items)))
    if pip is not None:
        items.append(Deletable(f"public-ip {pip.name}", lambda: p.lro(
            f"delete public IP {pip.name}", lambda: net.public_ip_addresses.begin_delete(group, pip.name)),
            frozenset(i.key for i in items if i.key.startswith("load-balancer "))))
    return items


def _joined(nic: Any, pool: str) -> bool:
    confs = nic.ip_configurations or []
    return any((p.id or "").lower() == pool.lower() for c in confs for p in (c.load_balancer_backend_address_pools
                                                                            or []))


def _differs(lb: Any, wanted: Any) -> bool:
    def shape(x: Any) -> tuple[Any, ...]:
        fronts = tuple((f.name, (f.public_ip_address.id or "").lower() if f.public_ip_address else "")
                       for f in x.frontend_ip_configurations or [])
        probes = tuple((p.name, str(p.protocol).lower(), p.port, p.request_path) for p in x.probes or [])
        rules = tuple(sorted((r.name, str(r.protocol).lower(), r.frontend_port, r.backend_port)
                             for r in x.load_balancing_rules or []))
        pools = tuple(sorted(p.name for p in x.backend_address_pools or []))
        return fronts, probes, rules, pools, str(x.sku.name if x.sku else "").lower()

    return shape(lb) != shape(wanted)


def _resources(pip: Any, lb: Any) -> tuple[CloudResource, ...]:
    return tuple(CloudResource(kind, r.id, r.name) for kind, r in (("public-ip", pip), ("load-balancer", lb))
                 if r is not None)
