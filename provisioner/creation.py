"""What the cluster should have, and the cloud steps that make it so: the plan (keeping
existing nodes' names and addresses), journaled before any cloud call; each cloud's declared
creation steps (Cloud.creation_steps) put into a graph; the VM requests with their user-data;
firewall-peers (every cloud's firewall open to exactly the nodes' public IPs); user-data
taken back where a cloud allows it; and the node phase that follows the VMs."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from .cloudinit import render_user_data
from .clouds.base import Cloud, CloudTarget, Ensured, StepInputs, Vm, VmRequest
from .cluster_keys import has_host_key, host_key, pin
from .context import Cluster, Context
from .graph import Graph, Key, Step
from .plan import CloudPlan, ClusterPlan, NodePlan, enforceable, make_plan
from .regions import RegionMap
from .spec import ClusterSpec
from .state import NodeRow

if TYPE_CHECKING:
    from .ingress import IngressSteps
    from .node_access import NodeSide
    from .nodes.boot import BootMarker
    from .nodes.latency import LatencyReport
    from .nodes.wireguard import Prepared


def target(cluster: Cluster, cp: CloudPlan) -> CloudTarget:
    """The cluster's target on the cloud of `cp`, as planned."""
    return CloudTarget(
        cluster=cluster.ref,
        region=cp.region,
        zone=cp.zone,
        network_cidr=cp.network_cidr,
        subnet_cidr=cp.subnet_cidr,
        firewall=enforceable(cp.firewall),
        image=cp.image,
    )


def plan_for(ctx: Context, regions: RegionMap, spec: ClusterSpec) -> ClusterPlan:
    """The plan for `spec`, keeping existing nodes' names and addresses, never reusing
    a retired one; the firewalls open to the nodes' public IPs the state knows."""
    store, uuid = ctx.store, ctx.uuid
    rows = store.nodes(uuid)
    indexes: dict[tuple[str, str], list[int]] = {}
    for value in store.allocations(uuid, "node-index"):
        cloud, role, index = value.split("/")
        indexes.setdefault((cloud, role), []).append(int(index))
    return make_plan(
        spec,
        regions,
        existing_nodes={n.name: n.mesh_ip for n in rows},
        ever_allocated_mesh=store.allocations(uuid, "mesh"),
        taken_indexes=indexes,
        node_public_ips=[n.public_ip for n in rows if n.public_ip],
    )


def record_plan(ctx: Context, plan: ClusterPlan) -> None:
    """Journal the planned nodes and their allocations before any cloud call."""
    uuid = ctx.uuid
    known = {n.name for n in ctx.nodes()}
    rows = []
    for n in plan.nodes:
        if n.name in known:
            continue
        _, host_public = host_key(ctx.store, uuid, n.name)
        rows.append(NodeRow(uuid, n.name, n.cloud, n.role, n.mesh_ip, n.size, "planned", None, None, None,
                            host_public, None))
    ctx.store.upsert_nodes(rows)
    ctx.store.allocate(uuid, "mesh", {n.mesh_ip: n.name for n in plan.nodes})
    ctx.store.allocate(uuid, "node-index", {f"{n.cloud}/{n.role}/{n.index}": n.name for n in plan.nodes})


def user_data(ctx: Context, n: NodePlan, authorized: str, master_mesh_ips: Sequence[str]) -> str:
    """The user-data of a VM about to be made: its host key is the cluster's secret for the
    node (a new one when the last was rotated away), pinned in the node's row; the masters'
    mesh addresses are `master_mesh_ips`."""
    private, public = host_key(ctx.store, ctx.uuid, n.name)
    pin(ctx.store, ctx.uuid, n.name, public)
    return render_user_data(
        cluster=ctx.name,
        node=n.name,
        role=n.role,
        cloud=n.cloud,
        host_key_private=private,
        host_key_public=public,
        authorized_key=authorized,
        master_mesh_ips=list(master_mesh_ips),
        apt_source=ctx.cluster.spec.kubernetes,
    )


def vm_requests(ctx: Context, cp: CloudPlan, cloud: Cloud, authorized: str, names: Sequence[str],
                listed: Collection[str] | None = None) -> list[VmRequest]:
    """A request per planned node of `cp` named in `names`. A node whose injected host key
    was rotated away (no secret left) gets new user-data only if its VM is gone; a running
    one keeps its key and needs none. `listed`: the nodes that have a VM, when known (else
    the cloud is asked, only if a key was rotated)."""
    named = set(names)
    wanted = [n for n in cp.nodes if n.name in named]
    rotated = {n.name for n in wanted if not has_host_key(ctx.store, ctx.uuid, n.name)}
    if listed is not None:
        running = set(listed)
    else:
        running = {vm.name for vm in cloud.list_vms(ctx.cluster.ref)} if rotated else set()
    masters = [r.mesh_ip for r in ctx.nodes() if r.role == "master"]  # read once for every request
    return [VmRequest(n.name, n.role, n.size,
                      "" if n.name in rotated & running else user_data(ctx, n, authorized, masters))
            for n in wanted]


def record_vms(ctx: Context, vms: Iterable[Vm]) -> None:
    """The nodes of these VMs are running, at the VMs' addresses; a meshed node whose VM and
    addresses are unchanged stays meshed (add-node leaves it alone: mesh_steps.wireguard)."""
    by_name = {n.name: n for n in ctx.nodes()}
    changed = []
    for vm in vms:
        row = by_name.get(vm.name)
        if row:
            same = (row.cloud_id, row.public_ip, row.private_ip) == (vm.cloud_id, vm.public_ip, vm.private_ip)
            status = row.status if same and row.status == "meshed" else "running"
            if same and status == row.status:
                continue  # nothing to write (a big cloud's add-node: most of its VMs)
            changed.append(
                replace(row, status=status, cloud_id=vm.cloud_id, public_ip=vm.public_ip, private_ip=vm.private_ip))
    ctx.store.upsert_nodes(changed)


def add_cloud_steps(graph: Graph, ctx: Context, cp: CloudPlan, cloud: Cloud, authorized: str, *,
                    repair: bool = False, after: Sequence[Key] = (),
                    running: Collection[str] | None = None) -> tuple[Key, ...]:
    """Declare the creation steps the cloud of `cp` contributes (Cloud.creation_steps), each
    after the steps it needs (and, for those that need none, after `after`). With `repair`
    (reconcile) the VMs step names what was missing; the context's dry_run goes to every step.
    `running`: the planned nodes that have a VM, filled by a step in `after` (StepInputs.running).
    A step's VMs are recorded in the state as it ends (not in a dry run). Returns the keys."""
    inputs = StepInputs(
        public_key=authorized,
        nodes=tuple(n.name for n in cp.nodes),
        requests=lambda names: vm_requests(ctx, cp, cloud, authorized, names, running),
        dry_run=ctx.dry_run,
        repair=repair,
        running=running,
    )

    def run(ensure: Callable[[CloudTarget, StepInputs], Ensured]) -> Callable[[CloudTarget | None], Ensured]:
        def work(t: CloudTarget | None) -> Ensured:
            assert t is not None
            result = ensure(t, inputs)
            if result.vms and not ctx.dry_run:
                record_vms(ctx, result.vms)
            return result
        return work

    keys = []
    for step in cloud.creation_steps():
        needs = tuple((cp.cloud, n) for n in step.needs) or tuple(after)
        keys.append(graph.add(Step(cp.cloud, step.name, run(step.ensure), after=needs)).key)
    return tuple(keys)


def add_firewall_peers(graph: Graph, ctx: Context, regions: RegionMap, clouds: dict[str, Cloud],
                       after: Sequence[Key], when: Callable[[], bool] | None = None) -> tuple[Key, ...]:
    """Declare firewall-peers on every cloud in `clouds`: WireGuard open to exactly the
    nodes' current public IPs (the rules updated in place), planned when the step runs, after
    `after` (every VM that will be in the mesh): every node must accept every peer."""
    def step(name: str, cloud: Cloud) -> Step:
        def work(t: CloudTarget | None) -> Ensured:
            assert t is not None
            cp = plan_for(ctx, regions, ctx.cluster.spec).cloud(name)
            return cloud.ensure_firewall(replace(t, firewall=enforceable(cp.firewall)))
        return Step(name, "firewall-peers", work, after=tuple(after), when=when)

    return tuple(graph.add(step(name, cloud)).key for name, cloud in clouds.items())


def add_forget_user_data(graph: Graph, ctx: Context, clouds: dict[str, Cloud], after: Sequence[Key],
                         when: Callable[[], bool] | None = None) -> tuple[Key, ...]:
    """Declare user-data on the clouds in `clouds` that can take it back: once every node
    rotated its host key, the user-data (with the first key) is removed from what they serve."""
    def step(name: str, cloud: Cloud) -> Step:
        def work(t: CloudTarget | None) -> Ensured:
            assert t is not None
            return cloud.forget_user_data(t, [n.name for n in ctx.nodes() if n.cloud == name])
        return Step(name, "user-data", work, after=tuple(after), when=when)

    return tuple(graph.add(step(name, cloud)).key for name, cloud in clouds.items() if cloud.removes_user_data)


def add_node_phase(graph: Graph, ctx: Context, regions: RegionMap, nodes: NodeSide, providers: dict[str, Cloud],
                   user_data_on: dict[str, Cloud], *, latency: list[LatencyReport] | None = None,
                   ingress: IngressSteps | None = None, grow: bool = False) -> None:
    """Declare what follows the VMs in create-cluster and add-node: firewall-peers on every
    cloud of `providers`, once every VM step of the graph is done; the nodes reached and booted
    meanwhile, then the mesh once both are done (mesh_steps); the user-data taken back on
    `user_data_on` once the nodes are booted (their host keys rotated); the latency check
    (latency_step, when `latency` collects its report); Kubernetes (kubernetes_steps), skipped visibly where no node can
    run it. With `ingress`, the load balancers and DNS records once firewall-peers is done,
    and Kubernetes after them (the controller's Service takes some balancers' addresses).
    `grow` (add-node): the mesh step touches the meshed nodes only to give them their new peers."""
    from . import kubernetes_steps, latency_step, mesh_steps

    markers: dict[str, BootMarker] = {}
    vms = graph.keys("vms")
    peers = add_firewall_peers(graph, ctx, regions, providers, after=vms)
    balancers = ingress.add_steps(graph, after=peers, dry_run=ctx.dry_run) if ingress is not None else ()
    external_ips = ingress.external_ips if ingress is not None else tuple
    # The nodes are reached and booted (SSH only) while firewall-peers opens WireGuard to them.
    ready: dict[str, tuple[BootMarker, Prepared]] = {}
    booted = graph.add(Step("mesh", "nodes", lambda _: mesh_steps.nodes_step(ctx, nodes, ready, grow=grow),
                            after=vms)).key
    mesh = graph.add(Step("mesh", "wireguard", lambda _: mesh_steps.wireguard(ctx, nodes, markers, ready, grow=grow),
                          after=(*peers, booted))).key
    # The first host key is gone from every node once they are booted: the user-data that
    # holds it goes while the mesh comes up.
    add_forget_user_data(graph, ctx, user_data_on, after=(booted,))
    before_kube = mesh
    if latency is not None:
        before_kube = graph.add(Step("mesh", "latency", lambda _: latency_step.latency(ctx, nodes, latency),
                                     after=(mesh,))).key
    graph.add(Step("kubernetes", "bootstrap", lambda _: kubernetes_steps.bootstrap(ctx, nodes, markers, external_ips),
                   after=(before_kube, *balancers), skip=lambda: kubernetes_steps.skip_reason(markers)))
