"""The lifecycle engine: the create flow of DESIGN.md, add-node, remove-node, delete-cluster
and reconcile, as orchestration only. It knows no cloud by name: it drives `clouds.base.Cloud`
objects from the registry. Each command declares its steps as one graph (each cloud's
creation steps, as the cloud declares them, then the cluster-wide ones: firewall-peers, mesh,
latency, kubernetes) and hands it to the one journaled executor (provisioner.graph), so
running the same command again after a crash or a cloud error continues where it stopped.

The steps themselves live by concept: creation (plan, VMs, firewall-peers), cleanup,
mesh_steps, latency_step, kubernetes_steps; the cluster's keys in cluster_keys; how nodes are
reached in node_access.
"""

from __future__ import annotations

import contextlib
import threading
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from . import cloudinit, creation, kubernetes_steps, latency_step, mesh_steps
from .clouds import import_cost_s, open_for_check
from .clouds.base import Cloud, CloudTarget, ClusterRef, Ensured, Owned, refuse_foreign
from .cluster_keys import client_key, client_key_path
from .context import Cluster, Context
from .errors import CastError, ForeignVmError, InputError
from .graph import Graph, Key, Step, StepError, run_graph
from .kubernetes_steps import (  # noqa: F401  (the engine's public API, as cli.py imports it)
    KubernetesError,
    describe_kubernetes,
    kubeconfig_path,
    kubernetes_phase,
    kubernetes_state,
)
from .mesh_steps import MeshError  # noqa: F401  (public API)
from .node_access import NodeSide, NodeSideFactory, ssh_nodes
from .parallel import gather
from .plan import CloudPlan, ClusterPlan, make_plan, refuse_far_clouds
from .progress import Progress
from .reconcile import reconcile
from .regions import RegionMap
from .spec import ClusterSpec, spec_from_dict, with_counts
from .state import ClusterRow, NodeRow, StateStore

if TYPE_CHECKING:
    from .ingress import IngressSteps
    from .nodes.latency import LatencyReport

__all__ = ["Engine", "StepError", "MeshError", "KubernetesError", "kubernetes_phase", "describe_kubernetes",
           "kubernetes_state", "kubeconfig_path"]


class Engine:
    """Runs cluster operations against the clouds, recording everything in `store`.
    `cloud_factory` opens a cloud's provider; `node_side` reaches the cluster's nodes (given
    the path of its SSH client key): both replaceable, by tests."""

    def __init__(
        self,
        store: StateStore,
        regions: RegionMap,
        *,
        progress: Progress | None = None,
        cloud_factory: Callable[[str, str, str | None], Cloud] = open_for_check,
        node_side: NodeSideFactory = ssh_nodes,
    ):
        self.store = store
        self.regions = regions
        self.progress = progress or Progress(None)
        self.cloud_factory = cloud_factory
        self.node_side = node_side

    # --- shared plumbing -----------------------------------------------------------------

    def _load(self, name: str) -> Cluster:
        row = self.store.require_cluster(name)
        return Cluster(row, spec_from_dict(row.spec))

    def _context(self, cluster: Cluster, *, dry_run: bool = False) -> Context:
        return Context(self.store, self.progress, cluster, dry_run=dry_run)

    def _open(self, name: str, plans: Sequence[CloudPlan],
              then: Callable[[CloudPlan, Cloud], object] | None = None, *,
              teardown: bool = False) -> dict[str, Cloud]:
        """The providers of `plans`, with their credentials checked (in parallel) so that a
        missing credential stops the command before anything is made on any cloud. Opened
        here in the calling thread: opening one imports its SDK, and first imports of a
        shared package from several threads can deadlock. The cheapest SDK is opened first
        and each cloud's check starts as soon as it is open, so that its round trips overlap
        the next SDK's import; what a provider needs only after its check is imported while
        that check is on the wire (Cloud.finish_opening). `then` (read-only work: it runs
        before other clouds are checked) follows each cloud's check in the same thread, once
        that cloud is fully open. `teardown` (delete-cluster): each provider finishes opening
        with only what its teardown needs. Raises the first failure once every cloud's work ended."""
        providers: dict[str, Cloud] = {}
        opened = {cp.cloud: threading.Event() for cp in plans}
        abandoned = threading.Event()  # opening a later cloud failed: no `then` starts

        def first(cp: CloudPlan) -> None:
            cloud = providers[cp.cloud]
            try:
                cloud.check_credentials()
            except CastError as exc:
                raise StepError(name, cp.cloud, "credentials", exc, nothing_changed=True) from exc
            if then is not None:
                opened[cp.cloud].wait()
                if not abandoned.is_set():
                    then(cp, cloud)

        order = sorted(plans, key=lambda cp: import_cost_s(cp.cloud))
        with ThreadPoolExecutor(max_workers=max(1, len(plans)), thread_name_prefix="credentials") as pool:
            checks = {}
            try:
                for cp in order:
                    providers[cp.cloud] = self.cloud_factory(cp.cloud, cp.region, cp.zone)
                    checks[cp.cloud] = pool.submit(first, cp)
                    providers[cp.cloud].finish_opening(teardown=teardown)  # while its check is on the wire
                    opened[cp.cloud].set()
            except BaseException:
                abandoned.set()
                raise
            finally:
                for event in opened.values():
                    event.set()
        errors = [e for e in (checks[cp.cloud].exception() for cp in plans) if e is not None]
        if errors:
            raise errors[0]
        return providers

    def _on_clouds(self, clouds: Sequence[CloudPlan], work: Callable[[CloudPlan], object]) -> None:
        """Run `work` on every cloud in parallel; raise the first failure after all finished."""
        gather(*(partial(work, cp) for cp in clouds))

    @contextlib.contextmanager
    def _nodes(self, ctx: Context) -> Iterator[NodeSide]:
        """The cluster's nodes, reached with its SSH client key, for the whole command."""
        client_key(self.store, ctx.uuid, ctx.name)
        with self.node_side(client_key_path(self.store, ctx.uuid)) as nodes:
            yield nodes

    def _run(self, ctx: Context, plan: ClusterPlan, graph: Graph) -> dict[Key, Ensured]:
        targets = {cp.cloud: creation.target(ctx.cluster, cp) for cp in plan.clouds}
        return run_graph(graph, ctx.journal(), targets).results

    # --- ingress (provisioner/ingress.py): load balancers and DNS records -----------------

    def _ingress(self, ctx: Context, plan: ClusterPlan, providers: dict[str, Cloud]) -> IngressSteps | None:
        """The cluster's ingress steps (journaled in `ctx`), or None when its spec asks for none."""
        from .ingress import IngressSteps

        if plan.ingress is None:
            return None
        targets = {cp.cloud: creation.target(ctx.cluster, cp) for cp in plan.clouds}
        return IngressSteps(ctx.cluster.ref, plan, targets, providers, ctx.journal().step)

    def _ingress_ensure(self, ctx: Context, plan: ClusterPlan, providers: dict[str, Cloud], *,
                        exclude: Iterable[str] = ()) -> list[str]:
        """Every load balancer and the DNS records as planned, outside a graph (IngressSteps.ensure)."""
        ingress = self._ingress(ctx, plan, providers)
        return ingress.ensure(exclude=set(exclude)) if ingress is not None else []

    def _check_dns(self, spec: ClusterSpec, row: ClusterRow | None) -> None:
        """Read-only: refuse a domain another owner holds (exit 4) or no zone of the DNS
        provider holds (exit 2), before anything is written."""
        from .ingress import check_dns

        if spec.ingress is not None and spec.ingress.dns_provider is not None:
            check_dns(make_plan(spec, self.regions), row.uuid if row else None)

    # --- create-cluster ------------------------------------------------------------------

    def create_cluster(self, spec: ClusterSpec) -> ClusterRow:
        """Create (or continue creating) the cluster of `spec`. Blocks until every VM runs.
        Raises StepError naming the cloud and step on failure; the state lets a re-run go on."""
        self._same_region(spec)  # read-only, before the lock writes: bad input writes nothing
        with self.store.lock(spec.name, "create-cluster"):
            providers = self._open(spec.name, make_plan(spec, self.regions).clouds)
            row = self._same_region(spec)
            self._check_dns(spec, row)  # read-only: a name owned by another refuses before anything is made
            if row is None:
                row = self.store.create_cluster(str(uuidlib.uuid4()), spec.name, spec.region, spec.to_dict())
                self.progress.line("cluster", "state", "done", f"{spec.name} uuid {row.uuid}")
            else:
                self.store.update_cluster(row.uuid, spec=spec.to_dict())
                self.progress.line("cluster", "state", "info", f"continuing {spec.name} uuid {row.uuid}")
            ctx = self._context(Cluster(row, spec))
            plan = creation.plan_for(ctx, self.regions, spec)
            creation.record_plan(ctx, plan)
            _, authorized = client_key(self.store, row.uuid, row.name)
            _prepare_templates()
            reports: list[LatencyReport] = []
            with self._nodes(ctx) as nodes:
                graph = Graph()
                for cp in plan.clouds:
                    creation.add_cloud_steps(graph, ctx, cp, providers[cp.cloud], authorized)
                creation.add_node_phase(graph, ctx, self.regions, nodes, providers, providers, latency=reports,
                                        ingress=self._ingress(ctx, plan, providers))
                self._run(ctx, plan, graph)
            self.store.update_cluster(row.uuid, status="ready")
            self.progress.line("cluster", "done", "done", f"{len(plan.nodes)} nodes on {len(plan.clouds)} clouds")
        reports[0].raise_on_violations()  # exit 3 naming the pairs; the cluster itself is complete
        result = self.store.cluster(spec.name)
        assert result is not None
        return result

    def _same_region(self, spec: ClusterSpec) -> ClusterRow | None:
        """The cluster of the spec's name, if there is one; InputError when it lives in
        another region. Reads only."""
        row = self.store.cluster(spec.name)
        if row is not None and row.region != spec.region:
            raise InputError("--region", f"cluster {spec.name} already lives in {row.region}", row.region)
        return row

    def check_latency(
        self, name: str, *, count: int = 5, interval_s: float = 0.2, threshold_ms: float | None = None
    ) -> LatencyReport:
        """Ping every pair of nodes over WireGuard (nodes.latency). Returns the
        report; the caller decides what a violation means (the CLI exits 3)."""
        ctx = self._context(self._load(name))
        with self._nodes(ctx) as nodes:
            return latency_step.measure(ctx, nodes, count, interval_s, threshold_ms)

    # --- add-node / remove-node ----------------------------------------------------------

    def add_node(self, name: str, cloud: str, role: str, count: int) -> list[str]:
        """Add `count` workers on `cloud` (a cloud of the cluster's region). Masters are fixed
        at creation. Returns the new node names."""
        if role != "worker":
            raise InputError("--role", "masters are fixed at creation: only workers can be added", "worker")
        if count < 1:
            raise InputError("--count", f"{count} is not a positive number", "1 or more")
        self._grown(name, cloud, count)  # read-only, before the lock writes: bad input writes nothing
        with self.store.lock(name, "add-node"):
            cluster, spec, plan = self._grown(name, cloud, count)
            ctx = self._context(cluster)
            before = {n.name for n in ctx.nodes()}
            creation.record_plan(ctx, plan)
            self.store.update_cluster(cluster.row.uuid, spec=spec.to_dict())
            ctx = ctx.with_spec(spec)
            _, authorized = client_key(self.store, ctx.uuid, ctx.name)
            providers = self._open(name, plan.clouds)  # every cloud's firewall lets the new nodes in
            _prepare_templates()
            with self._nodes(ctx) as nodes:
                graph = Graph()
                creation.add_cloud_steps(graph, ctx, plan.cloud(cloud), providers[cloud], authorized)
                creation.add_node_phase(graph, ctx, self.regions, nodes, providers, {cloud: providers[cloud]},
                                        ingress=self._ingress(ctx, plan, providers), grow=True)
                self._run(ctx, plan, graph)
            return [n.name for n in plan.nodes if n.name not in before]

    def _grown(self, name: str, cloud: str, count: int) -> tuple[Cluster, ClusterSpec, ClusterPlan]:
        """The cluster, its spec with `count` more workers on `cloud`, and that spec's plan.
        Reads only; InputError when there is no such cluster, the cloud is not offered in its
        region or is too far from the others."""
        cluster = self._load(name)
        region = self.regions.region(cluster.spec.region)
        if cloud not in region.clouds:
            raise InputError("--cloud", f"{cloud} is not offered in {cluster.spec.region}", ", ".join(region.clouds))
        current = cluster.spec.cloud(cloud)
        masters = current.masters if current else 0
        workers = (current.workers if current else 0) + count
        sizes = current.sizes if current else region.clouds[cloud].sizes
        spec = with_counts(cluster.spec, cloud, masters, workers, sizes)
        plan = creation.plan_for(self._context(cluster), self.regions, spec)
        refuse_far_clouds(plan)  # a new cloud must be as close as the others
        return cluster, spec, plan

    def _removable(self, name: str, node: str) -> tuple[Cluster, NodeRow]:
        """The cluster and its worker `node`. Reads only; InputError when there is no such
        cluster or node, or the node is a master."""
        cluster = self._load(name)
        rows = {n.name: n for n in self.store.nodes(cluster.row.uuid)}
        if node not in rows:
            workers = ", ".join(sorted(n for n, r in rows.items() if r.role != "master")) or "none"
            raise InputError("NODE", f"cluster {name} has no node {node!r}", workers)
        if rows[node].role == "master":
            raise InputError("NODE", f"{node} is a master: masters are fixed at creation", "a worker")
        return cluster, rows[node]

    def remove_node(self, name: str, node: str) -> None:
        """Delete one worker's VM and forget it; its name and mesh address stay retired."""
        self._removable(name, node)  # read-only, before the lock writes: bad input writes nothing
        with self.store.lock(name, "remove-node"):
            cluster, row = self._removable(name, node)
            ctx = self._context(cluster)
            plan = creation.plan_for(ctx, self.regions, cluster.spec)
            providers = self._open(name, plan.clouds)  # every cloud's firewall forgets the node
            cloud = providers[row.cloud]
            target = creation.target(cluster, plan.cloud(row.cloud))
            self._ingress_ensure(ctx, plan, providers, exclude={node})  # out of its load balancer first
            ctx.journal().step(row.cloud, "remove-vm", lambda: _delete(cloud, target, node))
            current = cluster.spec.cloud(row.cloud)
            assert current is not None
            spec = with_counts(cluster.spec, row.cloud, current.masters, current.workers - 1, current.sizes)
            self.store.delete_node(cluster.row.uuid, node)
            self.store.update_cluster(cluster.row.uuid, spec=spec.to_dict())
            ctx = ctx.with_spec(spec)
            with self._nodes(ctx) as nodes:
                graph = Graph()
                peers = creation.add_firewall_peers(graph, ctx, self.regions, providers, after=())
                mesh = graph.add(Step("mesh", "wireguard", lambda _: mesh_steps.wireguard(ctx, nodes, {}),
                                      after=peers)).key  # drops the removed node's peer everywhere
                last = kubernetes_phase(self.store, cluster.row.uuid)
                graph.add(Step("kubernetes", "remove-node", lambda _: kubernetes_steps.forget_node(ctx, nodes, node),
                               after=(mesh,),
                               when=lambda: bool(last and last[0] == "end" and kubernetes_steps.first_master(ctx))))
                self._run(ctx, plan, graph)

    # --- delete-cluster ------------------------------------------------------------------

    def delete_cluster(self, name: str) -> bool:
        """Delete everything of the cluster on every cloud, in parallel, after the safety
        check on all of them (ForeignVmError: nothing deleted anywhere). The state is kept
        until every cloud confirms. Returns False when there was no such cluster."""
        if self.store.cluster(name) is None:
            return False  # before the lock, which writes: nothing to delete writes nothing
        with self.store.lock(name, "delete-cluster"):
            row = self.store.cluster(name)
            if row is None:
                return False
            cluster = Cluster(row, spec_from_dict(row.spec))
            plan = make_plan(cluster.spec, self.regions)  # only the clouds and their places matter here
            self.store.update_cluster(row.uuid, status="deleting")
            foreign: list[ForeignVmError] = []
            listed: dict[str, list[Owned]] = {}

            def survey(cp: CloudPlan, cloud: Cloud) -> None:
                # Read-only, as soon as the cloud is open: the safety check, then (if it
                # passed) the inventory, ready for when every cloud has passed its check.
                found = cloud.find_foreign_vms(creation.target(cluster, cp))
                self.progress.line(
                    cp.cloud,
                    "safety-check",
                    "fail" if found else "done",
                    ", ".join(vm.name for vm in found) or "no foreign VM",
                )
                try:
                    refuse_foreign(cp.cloud, found)
                except ForeignVmError as refused:
                    foreign.append(refused)
                    return
                listed[cp.cloud] = cloud.list_resources(cluster.ref)

            providers = self._open(name, plan.clouds, then=survey, teardown=True)
            if foreign:  # nothing deleted anywhere: every cloud was checked before this
                raise (
                    foreign[0]
                    if len(foreign) == 1
                    else ForeignVmError(", ".join(f.cloud for f in foreign), [vm for f in foreign for vm in f.vms])
                )

            ingress = self._ingress(self._context(cluster), plan, providers)
            if ingress is not None:
                ingress.delete()  # records and load balancers before the networks
                listed.clear()  # what the load balancers held changed: list again

            def teardown(cp: CloudPlan) -> None:
                cloud = providers[cp.cloud]
                self._context(cluster).journal().step(
                    cp.cloud, "teardown", lambda: _teardown(cloud, cluster.ref, listed.get(cp.cloud)))
                self.store.forget_resources(row.uuid, cp.cloud)

            self._on_clouds(plan.clouds, teardown)
            self.store.forget_cluster(row.uuid)
            return True

    # --- reconcile -----------------------------------------------------------------------

    def reconcile(self, name: str, *, dry_run: bool = False) -> list[str]:
        """Run the creation graph with repair and report, and clean up what carries the
        cluster's UUID but is not in the spec (provisioner.reconcile); with dry_run, only
        report, and write nothing. Returns one line per finding and what was (or would be)
        done."""
        self._load(name)  # read-only, before the lock writes: no such cluster writes nothing
        with self.store.lock(name, "reconcile"):
            ctx = self._context(self._load(name), dry_run=dry_run)
            plan = creation.plan_for(ctx, self.regions, ctx.cluster.spec)
            _, authorized = client_key(self.store, ctx.uuid, ctx.name)
            providers = self._open(name, plan.clouds)
            if not dry_run:
                creation.record_plan(ctx, plan)  # a node the spec wants anew (its row was removed) is journaled
            with self._nodes(ctx) as nodes:
                return reconcile(ctx, self.regions, plan, providers, nodes, authorized,
                                 ingress=self._ingress(ctx, plan, providers))


def _delete(cloud: Cloud, target: CloudTarget, node: str) -> Ensured:
    cloud.delete_vms(target, [node])
    return Ensured(actions=(f"deleted {node}",))


def _teardown(cloud: Cloud, cluster: ClusterRef, listed: list[Owned] | None) -> Ensured:
    # The safety check ran once per cloud above: here only the inventory, through the one executor.
    cloud.delete_resources(cluster, listed)
    return Ensured(actions=("nothing of the cluster left",))


def _prepare_templates() -> None:
    """Have the cloud-init templates compiled on a thread of their own, while the first steps
    (the networks) wait on the clouds: the VM steps then render their user-data at once."""
    threading.Thread(target=cloudinit.prepare_templates, name="templates", daemon=True).start()
