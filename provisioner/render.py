"""Rich rendering for the command line: the tables and lines users read. Pure output: no
state, no cloud. rich is imported on first use, so `cast --help` stays fast. Values are
printed as literal text (terminal.literal) and tables never cut one (terminal.whole)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .clouds import NAMES as CLOUD_NAMES
from .terminal import console, literal, whole

if TYPE_CHECKING:
    from .doctor import Report
    from .plan import ClusterPlan
    from .preflight import PairCheck
    from .regions import Region
    from .state import ClusterRow, NodeRow

VERDICT_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}
NODES_ONLY = "the nodes' own public IPs (a /32 each, once they run)"  # a WireGuard rule before any node has one


def verdict_text(verdict: str) -> str:
    return f"[{VERDICT_STYLE[verdict]}]{verdict}[/]"


def pair_rows(checks: list[PairCheck]) -> list[list[str]]:
    rows = []
    for p in checks:
        measured = f"{p.measured_ms:.2f}" if p.measured_ms is not None else "-"
        rows.append(
            [
                f"{p.clouds[0]} - {p.clouds[1]}",
                f"{p.distance_km:.0f}",
                f"{p.bound_ms:.2f}",
                measured,
                verdict_text(p.verdict),
            ]
        )
    return rows


def render_regions(result: list[tuple[Region, list[PairCheck]]], threshold: float) -> None:
    """The region map as two tables: the regions with each cloud's region, and every cloud pair."""
    from rich.table import Table

    from .preflight import overall

    out = console()
    table = Table(title=f"cast regions (threshold {threshold:g} ms)", title_justify="left")
    table.add_column("region")
    for cloud in CLOUD_NAMES:
        table.add_column(cloud)
    table.add_column("verdict")
    for region, checks in result:
        cells = [literal(region.key, "bold").append("\n").append(literal(region.name, "dim"))]
        for cloud in CLOUD_NAMES:
            c = region.clouds.get(cloud)
            cells.append(literal(c.region).append("\n").append(literal(c.metro, "dim")) if c else literal("-", "dim"))
        table.add_row(*cells, verdict_text(overall(checks)))
    out.print(whole(table))
    pairs = Table(title="cloud pairs: great-circle distance, physical RTT bound, published RTT", title_justify="left")
    for column in ("region", "pair", "km", "bound ms", "published ms", "verdict"):
        pairs.add_column(column, justify="right" if column in ("km", "bound ms", "published ms") else "left")
    for region, checks in result:
        for i, row in enumerate(pair_rows(checks)):
            pairs.add_row(literal(region.key) if i == 0 else "", *row, end_section=i == len(checks) - 1)
    out.print(whole(pairs))


def render_plan(plan: ClusterPlan) -> None:
    """The plan as rich tables on stdout."""
    from rich.table import Table

    out = console()
    spec = plan.spec
    out.print(literal(f"Plan for cluster {spec.name}", "bold"), literal(f"in {plan.region_name} ({spec.region})"))
    for c in plan.clouds:
        title = literal(f"{c.cloud}: {c.region}" + (f" / {c.zone}" if c.zone else ""))
        table = Table(title=title, title_justify="left")
        table.add_column("node")
        table.add_column("role")
        table.add_column("size")
        table.add_column("image")
        table.add_column("subnet")
        table.add_column("mesh address")
        for n in c.nodes:
            table.add_row(*(literal(v) for v in (n.name, n.role, n.size, n.image, c.subnet_cidr, n.mesh_ip)))
        out.print()
        out.print(literal(c.cloud, "bold").append(literal(f": network {c.network_cidr}, subnet {c.subnet_cidr}")))
        for role, rules in c.firewall.items():
            text = ", ".join(f"{r.protocol}/{r.ports} from {' '.join(r.sources) or NODES_ONLY}" for r in rules)
            out.print(literal(f"  firewall {role}: {text}"))
        out.print(whole(table))
    if plan.ingress is not None:
        render_ingress(plan)
    latency = Table(title=f"latency pre-flight (threshold {spec.latency_threshold_ms:g} ms)", title_justify="left")
    for column in ("pair", "km", "bound ms", "published ms", "verdict"):
        latency.add_column(column)
    for row in pair_rows(list(plan.latency)):
        latency.add_row(*row)
    out.print()
    out.print(whole(latency))


def render_ingress(plan: ClusterPlan) -> None:
    """The plan's load balancers (forwards, health check, backends) and DNS records."""
    from rich.table import Table

    out = console()
    ingress = plan.ingress
    assert ingress is not None
    table = Table(title="ingress: a load balancer per cloud with workers", title_justify="left")
    for column in ("cloud", "forwards", "health check", "backends"):
        table.add_column(column)
    for cloud, b in ingress.balancers:
        forwards = ", ".join(f"tcp {f.listen} -> {f.node_port}" for f in b.forwards)
        table.add_row(*(literal(v) for v in (cloud, forwards, f"http {b.health_port} {b.health_path}",
                                             ", ".join(b.backends))))
    out.print()
    out.print(whole(table))
    if ingress.domain is None:
        out.print(literal("  no domain: no DNS record (the load balancers' addresses are shown once they exist)"))
        return
    where = (f"in the {ingress.dns_provider} zone holding {ingress.domain}" if ingress.dns_provider
             else "to create at your DNS provider (no --dns-provider)")
    out.print(literal(f"  records {where}:"))
    for r in ingress.records(None, {}):
        out.print(literal(f"    {r.name} {r.type} {r.ttl} " + " ".join(r.values)))
    if ingress.email:
        out.print(literal(f"  ACME ClusterIssuer (HTTP-01) for {ingress.email}"))


def render_cluster(cluster: ClusterRow, nodes: list[NodeRow], kubernetes: str | None = None,
                   ingress: tuple[str | None, Sequence[Any]] = (None, ())) -> None:
    """A cluster's status line, where its Kubernetes stands, its ingress (`ingress`: the domain
    and each cloud's load balancer, ingress_status.BalancerState), and its nodes."""
    from rich import box
    from rich.table import Table

    out = console()
    out.print(literal(cluster.name, "bold"), literal(f"{cluster.status} in {cluster.region}, uuid {cluster.uuid}"))
    if kubernetes:
        out.print(literal(f"kubernetes: {kubernetes}"))
    domain, lbs = ingress
    if domain or lbs:
        at = "; ".join(f"{b.cloud} {b.address} ({_workers(b.backends)})" for b in lbs) or "no load balancer yet"
        out.print(literal(f"ingress: {domain + ' -> ' if domain else ''}{at}"))
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("node", "cloud", "role", "size", "status", "public ip", "mesh ip"):
        table.add_column(column, no_wrap=column in ("node", "public ip", "mesh ip"))
    for n in nodes:
        table.add_row(*(literal(v) for v in (n.name, n.cloud, n.role, n.size, n.status, n.public_ip or "-", n.mesh_ip)))
    out.print(whole(table))


def _workers(names: Sequence[str]) -> str:
    if not names:
        return "no worker"
    return ", ".join(names) if len(names) <= 3 else f"{len(names)} workers"


def render_latency_matrix(report: Any) -> None:
    """The round-trip matrix (average ms, source rows by cloud, target columns), violations
    in red, pairs inside one cloud dimmed (never judged)."""
    from rich.table import Table

    names = sorted(
        {(p.source_group, p.source) for p in report.pairs} | {(p.target_group, p.target) for p in report.pairs}
    )
    cells = {(p.source, p.target): p for p in report.pairs}
    bad = {(p.source, p.target) for p in report.violations()}
    table = Table(title=f"round trip over the mesh, avg ms (threshold {report.threshold_ms:g} ms between clouds)")
    table.add_column("cloud")
    table.add_column("from \\ to")
    for group, name in names:
        table.add_column(literal(name).append("\n").append(literal(group, "dim")), justify="right")
    previous = None
    for group, source in names:
        row: list[Any] = [literal(group) if group != previous else "", literal(source)]
        previous = group
        for _, target in names:
            pair = cells.get((source, target))
            if pair is None:
                row.append("[dim]-[/]")
                continue
            text = "lost" if pair.avg_ms is None else f"{pair.avg_ms:.1f}"
            if pair.loss and pair.avg_ms is not None:
                text += f" ({pair.loss:.0%} lost)"
            style = "bold red" if (source, target) in bad else ("dim" if not pair.cross_group else "green")
            row.append(f"[{style}]{text}[/]")
        table.add_row(*row)
    out = console()
    out.print(whole(table))
    verdict = "ok" if report.ok else "fail"
    out.print(f"{len(report.pairs)} pairs, {len(report.violations())} over the threshold: {verdict_text(verdict)}")


def render_doctor(report: Report) -> None:
    """`cast doctor`: a table of the clouds, what each check found and what to do for each
    cloud that cannot be used, then the sandbox's needs of this machine and whether it runs."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("cloud", "usable", "credentials", "endpoint"):
        table.add_column(column, no_wrap=column != "credentials", overflow="fold")
    for a in report.clouds:
        endpoint = escape(a.endpoint) + (" [cyan](sandbox)[/]" if a.sandbox else "")
        usable = "[green]yes[/]" if a.usable else "[bold red]no[/]"
        table.add_row(a.cloud, usable, escape(a.credentials or "none found"), endpoint)
    out.print(whole(table))
    for a in report.clouds:
        out.print(f"[bold]{a.cloud}[/]: {escape(a.detail)}")
        if a.fix:
            out.print(f"  [yellow]to fix[/]: {escape(a.fix)}")
    missing = [c for c in report.local if not c.ok]
    have = ", ".join(c.name for c in report.local if c.ok) or "none"
    out.print(f"\nthe sandbox's needs of this machine: {'[green]all there[/]' if not missing else ''}")
    out.print(f"  present: {escape(have)}")
    for c in missing:
        out.print(f"  [yellow]missing[/] {c.name}: {escape(c.detail)}")
    sandbox = report.sandbox
    if sandbox["running"]:
        out.print(f"sandbox: running (pid {sandbox['pid']}, delays of {sandbox['region']})")
    else:
        out.print("sandbox: not running (start it with `cast sandbox up`, as root)")
    if report.usable:
        out.print("[green]every cloud asked about is usable[/]")
    else:
        out.print("[bold red]not every cloud is usable[/]")
