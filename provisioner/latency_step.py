"""The latency check over the mesh: every pair of nodes pings at once (nodes.latency). The
create flow runs it as the step mesh/latency; `cast check-latency` measures on its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .clouds.base import Ensured
from .context import Context
from .mesh_steps import members
from .node_access import NodeSide

if TYPE_CHECKING:
    from .nodes.latency import LatencyReport


def measure(ctx: Context, nodes: NodeSide, count: int, interval_s: float,
            threshold_ms: float | None = None) -> LatencyReport:
    """Ping every pair of nodes over WireGuard (once, from one side: nodes.latency), against
    `threshold_ms` (default: the spec's). Blocks for about count x interval_s."""
    threshold = threshold_ms if threshold_ms is not None else ctx.cluster.spec.latency_threshold_ms
    return nodes.measure_latency(members(ctx), count=count, interval_s=interval_s, threshold_ms=threshold)


def latency(ctx: Context, nodes: NodeSide, reports: list[LatencyReport]) -> Ensured:
    """The create flow's mesh/latency step (a short check: 3 pings per pair), its report
    appended to `reports`. A fresh mesh can hiccup once, so pairs over the threshold are
    measured a second time and only what is over in both counts."""
    ctx.progress.update("mesh", "latency", "measuring every pair, 3 pings each")
    report = measure(ctx, nodes, count=3, interval_s=0.2)
    if report.violations():
        ctx.progress.update("mesh", "latency", f"{len(report.violations())} pairs over the threshold: measuring again")
        report = measure(ctx, nodes, count=5, interval_s=0.2)
    reports.append(report)
    cross = [p.avg_ms for p in report.pairs if p.cross_group and p.avg_ms is not None]
    worst = f"worst cross-cloud {max(cross):.1f} ms" if cross else "no cross-cloud pair"
    return Ensured(actions=(f"{len(report.pairs)} pairs, {worst}, {len(report.violations())} over",))
