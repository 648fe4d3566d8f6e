"""The command line: click commands and rich rendering only. No cloud SDK is imported here;
heavier modules are imported inside the commands that need them, so `cast --help` is fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .errors import CastError

if TYPE_CHECKING:
    from rich.console import Console

    from .plan import ClusterPlan
    from .preflight import PairCheck
    from .state import StateStore

CLOUD_NAMES = ("aws", "gcp", "azure", "digitalocean")
SHORT = {"aws": "aws", "gcp": "gcp", "azure": "azure", "digitalocean": "do"}
VERDICT_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


# --- output helpers --------------------------------------------------------------------


def console(stderr: bool = False) -> Console:
    """A rich console on stdout (data) or stderr (progress, warnings)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def emit_json(data: Any) -> None:
    """Print data as JSON on stdout (for --output json)."""
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def output_option(f: Any) -> Any:
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="How to print the result.",
    )(f)


def verdict_text(verdict: str) -> str:
    return f"[{VERDICT_STYLE[verdict]}]{verdict}[/]"


class CastGroup(click.Group):
    """Turns our errors into a message on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CastError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


def store_of(ctx: click.Context) -> StateStore:
    from .state import StateStore, default_state_dir

    state_dir = ctx.find_root().params.get("state_dir")
    return StateStore(Path(state_dir) if state_dir else default_state_dir())


@click.group(cls=CastGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cast")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CAST_HOME",
    help="Where cast keeps its state and secrets (default: the user's data directory; env CAST_HOME).",
)
def cli(state_dir: Path | None) -> None:
    """cast builds one Kubernetes cluster across AWS, GCP, Azure and DigitalOcean.

    It creates each cloud's network, subnet and firewall, boots the VMs, joins every node into
    one WireGuard full mesh and checks that cross-cloud latency stays under a threshold.
    Everything it creates carries the cluster's UUID, and `cast delete-cluster` removes it all.

    \b
    Exit codes: 0 done; 1 failed; 2 bad input; 3 latency over the threshold;
    4 refused for safety (a VM without the cluster's UUID, a lock held by another run).
    """


# --- regions ---------------------------------------------------------------------------


def _pair_rows(checks: list[PairCheck]) -> list[list[str]]:
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


@cli.command("regions")
@output_option
@click.option(
    "--latency-threshold-ms",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The round-trip threshold for the verdicts (default: the region map's, 10 ms).",
)
def regions_cmd(output: str, latency_threshold_ms: float | None) -> None:
    """The region map: each cast region's cloud regions and every cloud pair's expected RTT.

    The bound is the physical lower limit (great-circle distance, light in fibre at about
    200 km per ms one way); "published" is a measured figure where one is known. A pair fails
    when either is over the threshold and warns within 20% of it.
    """
    from rich.table import Table

    from .preflight import check_pairs, overall
    from .regions import load_region_map

    regions = load_region_map()
    threshold = latency_threshold_ms or regions.latency_threshold_ms
    result = []
    for region in regions.regions.values():
        checks = check_pairs(region, region.clouds, threshold)
        result.append((region, checks))
    if output == "json":
        emit_json(
            {
                "threshold_ms": threshold,
                "regions": [
                    {
                        "key": r.key,
                        "name": r.name,
                        "verdict": overall(checks),
                        "clouds": {
                            c.cloud: {
                                "region": c.region,
                                "zone": c.zone,
                                "metro": c.metro,
                                "lat": c.lat,
                                "lon": c.lon,
                                "sizes": dict(c.sizes),
                                "image": dict(c.image),
                            }
                            for c in r.clouds.values()
                        },
                        "pairs": [
                            {
                                "clouds": list(p.clouds),
                                "distance_km": round(p.distance_km, 1),
                                "bound_ms": round(p.bound_ms, 2),
                                "measured_ms": p.measured_ms,
                                "source": p.source,
                                "verdict": p.verdict,
                            }
                            for p in checks
                        ],
                    }
                    for r, checks in result
                ],
            }
        )
        return
    out = console()
    table = Table(title=f"cast regions (threshold {threshold:g} ms)", title_justify="left")
    table.add_column("region")
    for cloud in CLOUD_NAMES:
        table.add_column(cloud)
    table.add_column("verdict")
    for region, checks in result:
        cells = [f"[bold]{region.key}[/]\n[dim]{region.name}[/]"]
        for cloud in CLOUD_NAMES:
            c = region.clouds.get(cloud)
            cells.append(f"{c.region}\n[dim]{c.metro}[/]" if c else "[dim]-[/]")
        table.add_row(*cells, verdict_text(overall(checks)))
    out.print(table)
    pairs = Table(title="cloud pairs: great-circle distance, physical RTT bound, published RTT", title_justify="left")
    for column in ("region", "pair", "km", "bound ms", "published ms", "verdict"):
        pairs.add_column(column, justify="right" if column in ("km", "bound ms", "published ms") else "left")
    for region, checks in result:
        for i, row in enumerate(_pair_rows(checks)):
            pairs.add_row(region.key if i == 0 else "", *row, end_section=i == len(checks) - 1)
    out.print(pairs)


# --- create-cluster --------------------------------------------------------------------


def spec_options(f: Any) -> Any:
    options = [
        click.option("--region", help="The cast region (see `cast regions`)."),
        click.option(
            "--cloud",
            "clouds",
            multiple=True,
            metavar="CLOUD:MASTERS:WORKERS",
            help="Nodes on one cloud, e.g. aws:1:2. Repeat for each cloud.",
        ),
        click.option(
            "--size",
            "sizes",
            multiple=True,
            metavar="CLOUD:ROLE:SIZE",
            help="A VM size other than the region's default, e.g. aws:worker:t3.large.",
        ),
        click.option(
            "--ssh-cidr",
            "ssh_cidrs",
            multiple=True,
            metavar="CIDR",
            help="Where SSH (tcp 22) may come from; repeatable (default 0.0.0.0/0, key-only).",
        ),
        click.option(
            "--latency-threshold-ms",
            type=float,
            default=None,
            help="The highest cross-cloud round-trip time allowed (default 10).",
        ),
        click.option(
            "-f",
            "--file",
            "spec_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="A cluster YAML file; flags override it.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def render_plan(plan: ClusterPlan) -> None:
    """The plan as rich tables on stdout."""
    from rich.table import Table

    out = console()
    spec = plan.spec
    out.print(f"[bold]Plan for cluster {spec.name}[/] in {plan.region_name} ({spec.region})")
    for c in plan.clouds:
        table = Table(title=f"{c.cloud}: {c.region}" + (f" / {c.zone}" if c.zone else ""), title_justify="left")
        table.add_column("node")
        table.add_column("role")
        table.add_column("size")
        table.add_column("image")
        table.add_column("subnet")
        table.add_column("mesh address")
        for n in c.nodes:
            table.add_row(n.name, n.role, n.size, n.image, c.subnet_cidr, n.mesh_ip)
        out.print(f"\n[bold]{c.cloud}[/]: network {c.network_cidr}, subnet {c.subnet_cidr}")
        for role, rules in c.firewall.items():
            text = ", ".join(f"{r.protocol}/{r.ports} from {' '.join(r.sources)}" for r in rules)
            out.print(f"  firewall {role}: {text}")
        out.print(table)
    latency = Table(title=f"latency pre-flight (threshold {spec.latency_threshold_ms:g} ms)", title_justify="left")
    for column in ("pair", "km", "bound ms", "published ms", "verdict"):
        latency.add_column(column)
    for row in _pair_rows(list(plan.latency)):
        latency.add_row(*row)
    out.print()
    out.print(latency)


def warn_latency(plan: ClusterPlan) -> None:
    """Refuse (LatencyError, before anything is created) pairs over the threshold; warn near it."""
    from .errors import InputError

    failing = [p for p in plan.latency if p.verdict == "fail"]
    if failing:
        pairs = "; ".join(p.describe() for p in failing)
        raise InputError(
            "--cloud",
            f"these clouds are too far apart in {plan.spec.region} for {plan.spec.latency_threshold_ms:g} ms: {pairs}",
            "drop one of them, pick another region, or raise --latency-threshold-ms",
        )
    err = console(stderr=True)
    for p in plan.latency:
        if p.verdict == "warn":
            err.print(
                f"[yellow]warning[/]: {p.describe()} is within 20% of the "
                f"{plan.spec.latency_threshold_ms:g} ms threshold"
            )


@cli.command("create-cluster")
@click.argument("name", required=False)
@spec_options
@click.option("--dry-run", is_flag=True, help="Print the plan and stop: no credentials needed, nothing created.")
@output_option
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
def create_cluster_cmd(
    ctx: click.Context,
    name: str | None,
    region: str | None,
    clouds: tuple[str, ...],
    sizes: tuple[str, ...],
    ssh_cidrs: tuple[str, ...],
    latency_threshold_ms: float | None,
    spec_file: Path | None,
    dry_run: bool,
    output: str,
    quiet: bool,
) -> None:
    """Create the cluster NAME (or the name in -f FILE) across the given clouds.

    \b
    Example:
      cast create-cluster demo --region us-east --cloud aws:1:2 --cloud gcp:0:2 --dry-run
    Run again after any failure: every step looks up what exists and creates only what is missing.
    """
    from .plan import make_plan
    from .regions import load_region_map
    from .spec import build_spec

    regions = load_region_map()
    spec = build_spec(
        regions,
        name=name,
        region=region,
        cloud_flags=clouds,
        size_flags=sizes,
        ssh_cidrs=ssh_cidrs,
        latency_threshold_ms=latency_threshold_ms,
        file=spec_file,
    )
    plan = make_plan(spec, regions)
    warn_latency(plan)
    if dry_run:
        if output == "json":
            emit_json(plan.to_dict())
        else:
            render_plan(plan)
        return
    from .engine import Engine

    engine = Engine(store_of(ctx), regions, progress=None if quiet or output == "json" else console(stderr=True))
    summary = engine.create_cluster(spec)
    show_cluster(ctx, summary.name, output)


# --- list and status -------------------------------------------------------------------


@cli.command("list")
@output_option
@click.pass_context
def list_cmd(ctx: click.Context, output: str) -> None:
    """The clusters in the state store."""
    from rich.table import Table

    store = store_of(ctx)
    rows = [(c, len(store.nodes(c.uuid))) for c in store.clusters()]
    if output == "json":
        emit_json(
            [{"name": c.name, "uuid": c.uuid, "region": c.region, "status": c.status, "nodes": n} for c, n in rows]
        )
        return
    if not rows:
        console().print(f"No clusters in {store.root}.")
        return
    table = Table()
    for column in ("name", "region", "status", "nodes", "uuid"):
        table.add_column(column)
    for c, n in rows:
        table.add_row(c.name, c.region, c.status, str(n), c.uuid)
    console().print(table)


def show_cluster(ctx: click.Context, name: str, output: str) -> None:
    from rich.table import Table

    from .errors import InputError

    store = store_of(ctx)
    cluster = store.cluster(name)
    if cluster is None:
        known = ", ".join(c.name for c in store.clusters()) or "none"
        raise InputError("NAME", f"no cluster named {name!r}", known)
    nodes = store.nodes(cluster.uuid)
    if output == "json":
        emit_json(
            {
                "name": cluster.name,
                "uuid": cluster.uuid,
                "region": cluster.region,
                "status": cluster.status,
                "spec": cluster.spec,
                "nodes": [
                    {
                        "name": n.name,
                        "cloud": n.cloud,
                        "role": n.role,
                        "size": n.size,
                        "status": n.status,
                        "mesh_ip": n.mesh_ip,
                        "public_ip": n.public_ip,
                        "private_ip": n.private_ip,
                        "cloud_id": n.cloud_id,
                    }
                    for n in nodes
                ],
            }
        )
        return
    out = console()
    out.print(f"[bold]{cluster.name}[/] {cluster.status} in {cluster.region}, uuid {cluster.uuid}")
    table = Table()
    for column in ("node", "cloud", "role", "size", "status", "public ip", "private ip", "mesh ip"):
        table.add_column(column)
    for n in nodes:
        table.add_row(n.name, n.cloud, n.role, n.size, n.status, n.public_ip or "-", n.private_ip or "-", n.mesh_ip)
    out.print(table)


@cli.command("status")
@click.argument("name")
@output_option
@click.pass_context
def status_cmd(ctx: click.Context, name: str, output: str) -> None:
    """One cluster: its spec, status and nodes, as the state store knows them."""
    show_cluster(ctx, name, output)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="cast")


if __name__ == "__main__":
    main()
