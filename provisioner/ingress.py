"""The cluster's ingress steps, cloud-blind: a load-balancer step on each cloud with workers
(its backends exactly that cloud's workers), then a DNS step holding every load balancer's
address at the domain (ingress_dns: only records cast owns). Load balancers come from the
registry in clouds.balancing, by cloud name; nothing here names a cloud.

The engine declares them in its step graph with `add_steps` (create, add-node, reconcile:
after the VMs and firewall-peers), runs `IngressSteps.ensure` before a worker goes
(remove-node, with the worker excluded), `check_dns` before anything is made, and `delete`
before the networks go (delete-cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from .clouds.balancing import BalancerEnsured, LoadBalancing, balances, open_balancers, open_dns
from .clouds.base import Cloud, CloudTarget, ClusterRef, Ensured
from .graph import Graph, Key, Step
from .ingress_dns import check_records, delete_records, describe, ensure_records, wanted_records
from .parallel import gather
from .plan import ClusterPlan, IngressPlan

DNS_STEP = ("dns", "records")  # (the journal's "cloud", step) of the DNS step
LB_STEP = "load-balancer"

# Runs one journaled step: (cloud, step name, work) -> what the work returned.
StepRunner = Callable[[str, str, Callable[[], Ensured]], Ensured]


def _unjournaled(cloud: str, step: str, work: Callable[[], Ensured]) -> Ensured:
    return work()


def check_dns(plan: ClusterPlan, cluster_uuid: str | None) -> None:
    """Read-only, before anything is made: the DNS provider's zone holds the domain (else
    InputError, exit 2) and the name is free for the cluster or already its own (else
    RecordOwnedError, exit 4). Nothing without a domain and a DNS provider."""
    ingress = plan.ingress
    if ingress is None or ingress.domain is None or ingress.dns_provider is None:
        return
    check_records(open_dns(ingress.dns_provider, ingress.domain), ingress.domain, cluster_uuid)


@dataclass
class IngressSteps:
    """The ingress of one cluster: `plan` (with its ingress), a target and a provider per cloud
    of the plan, and `step`, which runs (and journals) one step."""

    ref: ClusterRef
    plan: ClusterPlan
    targets: Mapping[str, CloudTarget]
    providers: Mapping[str, Cloud]
    step: StepRunner = _unjournaled
    open_lb: Callable[[str, str, str | None], LoadBalancing] = open_balancers
    _balancers: dict[str, LoadBalancing] = field(default_factory=dict)
    _results: dict[str, BalancerEnsured | None] = field(default_factory=dict)  # of add_steps' steps

    @property
    def ingress(self) -> IngressPlan:
        assert self.plan.ingress is not None
        return self.plan.ingress

    def balancing(self, cloud: str) -> LoadBalancing:
        """The load balancing of `cloud`, opened once (in the calling thread: it imports the SDK)."""
        if cloud not in self._balancers:
            target = self.targets[cloud]
            self._balancers[cloud] = self.open_lb(cloud, target.region, target.zone)
        return self._balancers[cloud]

    def clouds(self) -> list[str]:
        """The plan's clouds that can have a load balancer (their module is installed)."""
        return [c for c in self.targets if balances(c)]

    # --- ensure ----------------------------------------------------------------------------

    def ensure(self, *, exclude: Collection[str] = ()) -> list[str]:
        """Every load balancer as planned (backends: the cloud's planned workers but `exclude`;
        a cloud left without one loses its load balancer), in parallel, each a journaled step,
        then the DNS records. Returns one line per change."""
        clouds = self.clouds()
        for cloud in clouds:
            self.balancing(cloud)  # opened here, in the calling thread: it imports the SDK
        done = gather(*(partial(self._run, c, partial(self._balance, c, exclude, False)) for c in clouds))
        lines = [f"{c}: {a}" for c, made in zip(clouds, done, strict=True) for a in made.actions
                 if not a.startswith("at ")]
        if self.ingress.domain is not None:
            dns = self.step(*DNS_STEP, lambda: self._ensure_dns(self._addresses(), False))
            lines += [f"dns: {a}" for a in dns.actions if self.ingress.dns_provider is not None]
        return lines

    def add_steps(self, graph: Graph, *, after: Sequence[Key], dry_run: bool = False) -> tuple[Key, ...]:
        """Declare, in `graph`, a (cloud, "load-balancer") step on every cloud that can have
        one, after `after` (its backends: the cloud's planned workers; a cloud left without
        any loses its load balancer), then ("dns", "records") after all of them. The graph's
        executor journals them. Returns the keys declared."""
        def balancer(cloud: str) -> Step:
            self.balancing(cloud)  # opened here, in the calling thread: it imports the SDK
            return Step(cloud, LB_STEP, lambda _: self._balance(cloud, (), dry_run), after=tuple(after))

        keys = [graph.add(balancer(c)).key for c in self.clouds()]
        if self.ingress.domain is not None:
            records = graph.add(Step(*DNS_STEP, lambda _: self._ensure_dns(self._addresses(), dry_run),
                                     after=tuple(keys)))
            keys.append(records.key)
        return tuple(keys)

    def _balance(self, cloud: str, exclude: Collection[str], dry_run: bool) -> BalancerEnsured:
        """One cloud's load-balancer step: its balancer as planned (backends: the planned workers
        but `exclude`), or deleted when no worker is left; what it made is kept for the DNS step
        and external_ips. The address line alone (nothing changed) is reported as in place."""
        wanted = self._backends(cloud, exclude)
        if not wanted:
            self._results[cloud] = None
            if self.balancing(cloud).find_load_balancer(self.ref) is None:
                return BalancerEnsured()
            return self._delete_balancer(cloud, dry_run)
        made = self._results[cloud] = self._ensure_balancer(cloud, wanted, dry_run)
        return made if any(not a.startswith("at ") for a in made.actions) else replace(made, actions=())

    def _addresses(self) -> list[str]:
        return [r.address for r in self._results.values() if r is not None and r.address]

    def external_ips(self) -> tuple[str, ...]:
        """The addresses of the load balancers add_steps made that deliver on the port they
        were reached on (LoadBalancing.keeps_port): the ingress controller's Service must take
        them as externalIPs. Known once those steps ran."""
        return tuple(sorted(r.address for c, r in self._results.items()
                            if r is not None and r.address and self.balancing(c).keeps_port))

    def _run(self, cloud: str, work: Callable[[], Ensured]) -> BalancerEnsured:
        result = self.step(cloud, LB_STEP, work)
        return result if isinstance(result, BalancerEnsured) else BalancerEnsured(actions=result.actions)

    def _backends(self, cloud: str, exclude: Collection[str]) -> tuple[str, ...]:
        planned = self.ingress.balancer(cloud)
        return tuple(n for n in (planned.backends if planned else ()) if n not in exclude)

    def _ensure_balancer(self, cloud: str, backends: Sequence[str], dry_run: bool) -> BalancerEnsured:
        planned = self.ingress.balancer(cloud)
        assert planned is not None
        plan = replace(planned, backends=tuple(backends))
        vms = [vm for vm in self.providers[cloud].list_vms(self.ref) if vm.name in plan.backends]
        vms.sort(key=lambda vm: plan.backends.index(vm.name))
        made = self.balancing(cloud).ensure_load_balancer(self.targets[cloud], plan, vms, dry_run=dry_run)
        where = f"at {made.address or 'an address to be allocated'}: {', '.join(made.backends) or 'no backend'}"
        return replace(made, actions=(*made.actions, where))

    def _delete_balancer(self, cloud: str, dry_run: bool,
                         why: str = "delete the load balancer: the cloud has no worker left") -> BalancerEnsured:
        if not dry_run:
            self.balancing(cloud).delete_load_balancer(self.targets[cloud])
        return BalancerEnsured(actions=(why,))

    def _ensure_dns(self, addresses: Sequence[str], dry_run: bool) -> Ensured:
        domain, provider = self.ingress.domain, self.ingress.dns_provider
        assert domain is not None
        if provider is None:
            wanted = wanted_records(domain, self.ref.uuid, addresses)
            return Ensured(actions=("no DNS provider: create these records at yours:", *describe(wanted)))
        zone = open_dns(provider, domain)
        return Ensured(actions=tuple(ensure_records(zone, domain, self.ref.uuid, addresses, dry_run=dry_run)))

    # --- delete ----------------------------------------------------------------------------

    def delete(self) -> None:
        """The cluster's records (those it owns), then every load balancer, in parallel.
        Harmless when none is left."""
        ingress = self.plan.ingress
        if ingress is None:
            return
        if ingress.domain is not None and ingress.dns_provider is not None:
            domain, provider = ingress.domain, ingress.dns_provider
            self.step(*DNS_STEP, lambda: Ensured(actions=tuple(
                delete_records(open_dns(provider, domain), domain, self.ref.uuid))))
        clouds = self.clouds()
        for cloud in clouds:
            self.balancing(cloud)

        def one(cloud: str) -> None:
            if self.balancing(cloud).find_load_balancer(self.ref) is not None:
                self._run(cloud, lambda: self._delete_balancer(cloud, False, why="deleted the load balancer"))

        gather(*(partial(one, c) for c in clouds))

