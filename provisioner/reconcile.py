"""reconcile as a graph: the creation graph run with repair and report, plus the clean-up of
what carries the cluster's UUID but is not in the spec (cleanup.py), then the mesh's drift
looked at and, unless a dry run, repaired live, and Kubernetes set up where it is due."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import cleanup, creation, kubernetes_steps, mesh_steps
from .clouds.base import Cloud, CloudTarget, Ensured
from .context import Context
from .errors import HostKeyMismatchFound
from .graph import Graph, Key, Step, run_graph
from .node_access import NodeSide
from .plan import CloudPlan, ClusterPlan
from .regions import RegionMap

if TYPE_CHECKING:
    from .ingress import IngressSteps
    from .nodes.boot import BootMarker


@dataclass
class Findings:
    """What a reconcile run learns as its steps go (read by the later steps' predicates)."""

    running: dict[str, set[str]] = field(default_factory=dict)  # cloud -> planned nodes with a VM
    gone: set[str] = field(default_factory=set)  # planned nodes whose VM was missing
    drift: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    meshed: bool = False


def reconcile(ctx: Context, regions: RegionMap, plan: ClusterPlan, providers: dict[str, Cloud],
              nodes: NodeSide, authorized: str, *, ingress: IngressSteps | None = None) -> list[str]:
    """Compare every cloud of `plan` to it and repair what differs; clean up what carries the
    cluster's UUID but is not in the spec; with ctx.dry_run, only report (nothing journaled).
    Returns one line per finding and what was (or would be) done; `ingress`, when the spec
    has it: the load balancers and records repaired after the VMs. Raises
    HostKeyMismatchFound (nothing done on any node) when a node shows another host key."""
    dry_run = ctx.dry_run
    kube = kubernetes_steps.kubernetes_phase(ctx.store, ctx.uuid)
    phase = kube[0] if kube else None
    seen = Findings()

    def kube_due() -> bool:
        return bool(seen.gone) or phase not in ("end", "skip")

    def repair_mesh() -> bool:
        seen.meshed = not dry_run and not seen.mismatched and bool(seen.drift or seen.gone or kube_due())
        return seen.meshed

    def drift(_: CloudTarget | None) -> Ensured:
        seen.drift, seen.mismatched = mesh_steps.drift(ctx, nodes, skip=seen.gone)
        return Ensured(actions=tuple(seen.drift))

    graph = Graph()
    for cp in plan.clouds:
        strays = _strays(graph, ctx, cp, providers[cp.cloud], seen)
        # what runs is known before anything is made: the strays step lists it, the vms step reuses it
        creation.add_cloud_steps(graph, ctx, cp, providers[cp.cloud], authorized, repair=True,
                                 after=(strays,), running=seen.running.setdefault(cp.cloud, set()))
    peers = creation.add_firewall_peers(  # the recreated VMs' new addresses
        graph, ctx, regions, providers, after=graph.keys("vms") + graph.keys("strays"),
        when=lambda: bool(seen.gone) and not dry_run)
    balancers = ingress.add_steps(graph, after=graph.keys("vms") + peers, dry_run=dry_run) if ingress else ()
    external_ips = ingress.external_ips if ingress is not None else tuple
    graph.add(Step("mesh", "drift", drift, after=peers))
    markers: dict[str, BootMarker] = {}
    mesh = graph.add(Step("mesh", "wireguard", lambda _: mesh_steps.wireguard(ctx, nodes, markers),
                          after=(("mesh", "drift"),), when=repair_mesh)).key
    creation.add_forget_user_data(graph, ctx, providers, after=(mesh,), when=lambda: seen.meshed)
    graph.add(Step("kubernetes", "bootstrap", lambda _: kubernetes_steps.bootstrap(ctx, nodes, markers, external_ips),
                   after=(mesh, *balancers), when=lambda: seen.meshed and kube_due(),
                   skip=lambda: kubernetes_steps.skip_reason(markers)))
    outcome = run_graph(graph, ctx.journal(), {cp.cloud: creation.target(ctx.cluster, cp) for cp in plan.clouds})

    report = outcome.actions([*(cp.cloud for cp in plan.clouds), "dns"])
    if seen.mismatched:  # refused (exit 4), dry run or not: nothing is done on any node
        raise HostKeyMismatchFound(seen.mismatched, [*report, *seen.drift])
    report.extend(seen.drift if dry_run else [f"{line}: repaired" for line in seen.drift])
    if kube_due() and phase != "skip":
        done = "would be set up" if dry_run else "set up"
        report.append(f"kubernetes: {kubernetes_steps.describe_kubernetes(kube)}: {done}")
    return report


def _strays(graph: Graph, ctx: Context, cp: CloudPlan, cloud: Cloud, seen: Findings) -> Key:
    """Declare the cloud's `strays` step (cleanup.stray_vms); the planned nodes it finds
    without a VM are `seen.gone`."""
    wanted = {n.name for n in cp.nodes}

    def work(t: CloudTarget | None) -> Ensured:
        assert t is not None
        running = seen.running.setdefault(cp.cloud, set())
        result = cleanup.stray_vms(cloud, t, wanted, running, dry_run=ctx.dry_run)
        seen.gone.update(wanted - running)
        return result

    return graph.add(Step(cp.cloud, "strays", work)).key
