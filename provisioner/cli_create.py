"""`cast create-cluster`: a cluster from flags or a cluster file (or, with --dry-run, its plan)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .cli_common import emit_json, make_engine, output_option, start_log
from .render import render_plan
from .terminal import console, literal

if TYPE_CHECKING:
    from .plan import ClusterPlan


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
            "--api-cidr",
            "api_cidrs",
            multiple=True,
            metavar="CIDR",
            help="Where the Kubernetes API (tcp 6443 on masters) may be reached from; repeatable (default 0.0.0.0/0).",
        ),
        click.option(
            "--nodeport-cidr",
            "nodeport_cidrs",
            multiple=True,
            metavar="CIDR",
            help="Open NodePorts (tcp+udp 30000-32767 on workers) to CIDR; repeatable (default: closed).",
        ),
        click.option(
            "--ingress",
            is_flag=True,
            default=False,
            help="A load balancer per cloud with workers (tcp 80/443 to the ingress controller's NodePorts).",
        ),
        click.option(
            "--ingress-domain",
            metavar="DOMAIN",
            help="The app's DNS name (e.g. apps.example.com): an A record of every load balancer; implies --ingress.",
        ),
        click.option(
            "--dns-provider",
            metavar="PROVIDER",
            help="Where the domain's zone is: route53, clouddns, azuredns, digitalocean, or none (cast prints the "
                 "records to create; the default).",
        ),
        click.option(
            "--acme-email",
            metavar="EMAIL",
            help="The e-mail of an ACME (Let's Encrypt) ClusterIssuer for the ingress controller's certificates.",
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


def warn_latency(plan: ClusterPlan) -> None:
    """Refuse (InputError, before anything is created) pairs over the threshold; warn near it."""
    from .plan import refuse_far_clouds

    refuse_far_clouds(plan)
    err = console(stderr=True)
    for p in plan.latency:
        if p.verdict == "warn":
            err.print(
                literal("warning", "yellow").append(literal(
                    f": {p.describe()} is within 20% of the {plan.spec.latency_threshold_ms:g} ms threshold"))
            )


@click.command("create-cluster")
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
    api_cidrs: tuple[str, ...],
    nodeport_cidrs: tuple[str, ...],
    ingress: bool,
    ingress_domain: str | None,
    dns_provider: str | None,
    acme_email: str | None,
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
        api_cidrs=api_cidrs,
        nodeport_cidrs=nodeport_cidrs,
        latency_threshold_ms=latency_threshold_ms,
        file=spec_file,
        ingress=ingress,
        ingress_domain=ingress_domain,
        dns_provider=dns_provider,
        acme_email=acme_email,
    )
    plan = make_plan(spec, regions)
    warn_latency(plan)
    if dry_run:
        if output == "json":
            emit_json(plan.to_dict())
        else:
            render_plan(plan)
        return
    start_log(ctx, spec.name)
    engine = make_engine(ctx, regions, quiet=quiet or output == "json")
    with engine.progress:
        row = engine.create_cluster(spec)
    from .cli_status import show_cluster

    show_cluster(ctx, row.name, output)
