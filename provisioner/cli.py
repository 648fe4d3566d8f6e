"""The command line: click commands only (their rendering is in render.py). No cloud SDK is imported here;
heavier modules are imported inside the commands that need them, so `cast --help` is fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .cli_common import emit_json, make_engine, output_option, start_log, store_of
from .cli_create import create_cluster_cmd
from .cli_nodes import add_node_cmd, check_latency_cmd, remove_node_cmd
from .cli_sandbox import sandbox_group
from .cli_state import cluster_rows, reconcile_all, state_group
from .completion import SHELLS, complete_cluster
from .errors import CastError
from .render import CLOUD_NAMES, render_cluster, render_doctor, render_regions
from .terminal import clean, console, literal, whole

if TYPE_CHECKING:
    pass



class CastGroup(click.Group):
    """Turns our errors into a message on stderr (naming the command's log, when it has one)
    and their exit code, and ends the command's log (see provisioner.logs)."""

    def invoke(self, ctx: click.Context) -> Any:
        from . import logs

        try:
            result = super().invoke(ctx)
        except CastError as exc:
            path = logs.finish(exc, exit_code=exc.exit_code)
            click.echo(f"error: {clean(exc)}{f' (log: {path})' if path else ''}", err=True)
            sys.exit(exc.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit) as exc:
            logs.finish(exit_code=getattr(exc, "exit_code", 1))
            raise
        except Exception as exc:
            path = logs.finish(exc, exit_code=1)
            if path is None:
                raise
            click.echo(f"error: unexpected {type(exc).__name__}: {clean(exc)} (log, with the traceback: {path})",
                       err=True)
            sys.exit(1)
        except BaseException as exc:  # KeyboardInterrupt: the log says where it stopped
            logs.finish(exc, exit_code=130)
            raise
        logs.finish()
        return result


@click.group(cls=CastGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="cast", prog_name="cast", message="%(prog)s %(version)s")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CAST_HOME",
    help="Where cast keeps its state and secrets (default: the user's data directory; env CAST_HOME).",
)
@click.option(
    "--state",
    envvar="CAST_STATE",
    metavar="s3://BUCKET/PREFIX",
    help="A state store shared by a team, on object storage: s3://BUCKET/PREFIX or azblob://ACCOUNT/CONTAINER/PREFIX "
    "(env CAST_STATE); default: the local one.",
)
@click.option(
    "--state-key",
    envvar="CAST_STATE_KEY",
    metavar="kms://alias/NAME|file://PATH",
    help="The key that seals secrets before they reach --state's bucket (env CAST_STATE_KEY).",
)
@click.option(
    "--lock-wait",
    type=click.FloatRange(min=0),
    default=0.0,
    envvar="CAST_LOCK_WAIT",
    metavar="SECONDS",
    help="How long to wait for a cluster's lock held by another run (env CAST_LOCK_WAIT; default 0: exit 4).",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    envvar="CAST_VERBOSE",
    help="Also print the command's log on stderr: each cloud API call, SSH command and retry (env CAST_VERBOSE=1). "
    "The log itself is always written, under <state dir>/logs/<cluster>/.",
)
def cli(state_dir: Path | None, state: str | None, state_key: str | None, lock_wait: float, verbose: bool) -> None:
    """cast builds one Kubernetes cluster across AWS, GCP, Azure and DigitalOcean.

    It creates each cloud's network, subnet and firewall, boots the VMs, joins every node into
    one WireGuard full mesh and checks that cross-cloud latency stays under a threshold.
    Everything it creates carries the cluster's UUID, and `cast delete-cluster` removes it all.

    \b
    Exit codes: 0 done; 1 failed; 2 bad input; 3 latency over the threshold;
    4 refused for safety (a VM without the cluster's UUID, a lock held by another run).
    Each command that works on clouds or nodes logs every API call, SSH command and retry
    to <state dir>/logs/<cluster>/ (an error names its file; --verbose prints it too).
    """


# --- regions ---------------------------------------------------------------------------


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
                        "pairs": [p.to_dict() for p in checks],
                    }
                    for r, checks in result
                ],
            }
        )
        return
    render_regions(result, threshold)


@cli.command("delete-cluster")
@click.argument("name", shell_complete=complete_cluster)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
def delete_cluster_cmd(ctx: click.Context, name: str, yes: bool, quiet: bool) -> None:
    """Delete everything the cluster NAME has on every cloud, found by its UUID.

    Refuses (exit 4, nothing deleted) when a network of the cluster holds a VM without the
    cluster's UUID. Running it again after a failure, or twice, is harmless.
    """
    store = store_of(ctx)
    row = store.cluster(name)
    if row is None:
        console(stderr=True).print(literal(f"no cluster named {name!r} in {store.location}: nothing to delete"))
        return
    if not yes:
        click.confirm(f"Delete cluster {name} ({row.uuid}) and everything it has on every cloud?", abort=True)
    start_log(ctx, name)
    engine = make_engine(ctx, quiet=quiet)
    with engine.progress:
        engine.delete_cluster(name)
    console().print(literal(f"deleted cluster {name}"))


@cli.command("reconcile")
@click.argument("name", required=False, shell_complete=complete_cluster)
@click.option("--all", "every", is_flag=True, help="Every cluster of the store, each once per --interval "
              "(replicas against one bucket share the work: one cluster, one replica at a time).")
@click.option("--dry-run", is_flag=True, help="Only report what differs from the spec.")
@click.option("--watch", is_flag=True, help="Repeat every --interval until interrupted.")
@click.option("--interval", default="1h", show_default=True, help="How often with --watch: 30s, 10m, 1h.")
@output_option
@click.pass_context
def reconcile_cmd(ctx: click.Context, name: str | None, every: bool, dry_run: bool, watch: bool, interval: str,
                  output: str) -> None:
    """Compare the clouds to the cluster's spec and repair what was deleted or changed out of band."""
    import time

    from .errors import InputError

    seconds = parse_interval(interval)
    if every == bool(name):
        raise InputError("NAME", "name one cluster or give --all", "a cluster name, or --all")
    if every:
        reconcile_all(ctx, dry_run=dry_run, watch=watch, interval_s=seconds, output=output)
        return
    assert name is not None
    start_log(ctx, name)
    while True:
        report = make_engine(ctx, quiet=True).reconcile(name, dry_run=dry_run)
        if output == "json":
            emit_json({"cluster": name, "dry_run": dry_run, "findings": report})
        elif report:
            for line in report:
                console().print(literal(line))
        else:
            console().print(literal(f"{name}: everything matches the spec"))
        if not watch:
            return
        time.sleep(seconds)  # the --watch period the user asked for, not a wait for an event


def parse_interval(text: str) -> float:
    """`30s`, `10m`, `1h` or plain seconds."""
    from .errors import InputError

    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise InputError("--interval", f"{text!r} is not a duration", "e.g. 30s, 10m, 1h") from None
    if value <= 0:
        raise InputError("--interval", f"{text!r} is not positive", "e.g. 30s, 10m, 1h")
    return value


# --- list and status -------------------------------------------------------------------


@cli.command("list")
@output_option
@click.pass_context
def list_cmd(ctx: click.Context, output: str) -> None:
    """The clusters in the state store."""
    from rich.table import Table

    store = store_of(ctx)
    rows = cluster_rows(ctx)
    if output == "json":
        emit_json([{"name": c.name, "uuid": c.uuid, "region": c.region, "status": c.status, "nodes": n,
                    "state": where} for c, n, where in rows])
        return
    if not rows:
        console().print(literal(f"No clusters in {store.location}."))
        return
    table = Table()
    for column in ("name", "region", "status", "nodes", "uuid", "state"):
        table.add_column(column)
    for c, n, where in rows:
        table.add_row(*(literal(v) for v in (c.name, c.region, c.status, n, c.uuid, where)))
    console().print(whole(table))


def show_cluster(ctx: click.Context, name: str, output: str) -> None:
    """Print one cluster as the state store knows it: its spec, nodes and (in JSON) the
    resources cast made for it."""
    store = store_of(ctx)
    cluster = store.require_cluster(name)
    from .engine import kubeconfig_path, kubernetes_state

    nodes = store.nodes(cluster.uuid)
    kubeconfig = kubeconfig_path(store, cluster.uuid)
    state = kubernetes_state(store, cluster.uuid)
    kubernetes = {"state": state, "kubeconfig": str(kubeconfig) if kubeconfig else None}
    from .ingress_status import balancers

    raw = cluster.spec.get("ingress") if isinstance(cluster.spec, dict) else None
    domain = raw.get("domain") if isinstance(raw, dict) and isinstance(raw.get("domain"), str) else None
    lbs = balancers(store.journal_entries(cluster.uuid), {n.name for n in nodes})
    ingress = {"domain": domain, "load_balancers": [{"cloud": b.cloud, "address": b.address,
                                                      "backends": list(b.backends)} for b in lbs]}
    if output == "json":
        emit_json(
            {
                "name": cluster.name,
                "uuid": cluster.uuid,
                "region": cluster.region,
                "status": cluster.status,
                "kubernetes": kubernetes,
                "ingress": ingress if domain or lbs else None,
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
                "resources": [
                    {"cloud": cloud, "kind": kind, "id": rid, "name": rname}
                    for cloud, kind, rid, rname in store.resources(cluster.uuid)
                ],
            }
        )
        return
    render_cluster(cluster, nodes, state, ingress=(domain, lbs))


@cli.command("status")
@click.argument("name", shell_complete=complete_cluster)
@output_option
@click.pass_context
def status_cmd(ctx: click.Context, name: str, output: str) -> None:
    """One cluster: its spec, status and nodes, as the state store knows them."""
    show_cluster(ctx, name, output)


@cli.command("kubeconfig")
@click.argument("name", shell_complete=complete_cluster)
@click.option(
    "--merge",
    is_flag=True,
    help="Also merge it into ~/.kube/config (or $KUBECONFIG's first file) under a context named NAME.",
)
@output_option
@click.pass_context
def kubeconfig_cmd(ctx: click.Context, name: str, merge: bool, output: str) -> None:
    """Print the path of the cluster NAME's kubeconfig (fetched from its first master, mode
    0600), e.g. `export KUBECONFIG=$(cast kubeconfig NAME)`. Exit 1 when the cluster has none
    yet, saying why (in the sandbox, the Kubernetes steps are skipped)."""
    from .engine import kubeconfig_path, kubernetes_state
    from .errors import CastError

    store = store_of(ctx)
    row = store.require_cluster(name)
    path = kubeconfig_path(store, row.uuid)
    if path is None:
        raise CastError(f"cluster {name} has no kubeconfig: Kubernetes {kubernetes_state(store, row.uuid)}")
    merged_into = None
    if merge:
        from .kube.user_config import merge_into_user_config
        from .private_files import read_private_file

        merged_into = merge_into_user_config((read_private_file(path) or b"").decode(), name)
    if output == "json":
        merged = str(merged_into) if merged_into else None
        emit_json({"cluster": name, "path": str(path), "context": name, "merged_into": merged})
        return
    click.echo(str(path))
    if merged_into:
        console(stderr=True).print(literal(f"merged into {merged_into} as context {name}"))


# --- completion ------------------------------------------------------------------------


@cli.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_cmd(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish): commands, options, cluster
    names and a cluster's workers complete on Tab.

    \b
    Enable it, e.g.:
      bash: eval "$(cast completion bash)"   # in ~/.bashrc
      zsh:  eval "$(cast completion zsh)"    # in ~/.zshrc
      fish: cast completion fish > ~/.config/fish/completions/cast.fish
    """
    from .completion import completion_script

    click.echo(completion_script(cli, shell))


# --- doctor ----------------------------------------------------------------------------


@cli.command("doctor")
@click.argument("clouds", nargs=-1, type=click.Choice(CLOUD_NAMES), metavar="[CLOUD]...")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="How long, in seconds, each check may wait for an answer.")
@output_option
@click.pass_context
def doctor_cmd(ctx: click.Context, clouds: tuple[str, ...], timeout: float, output: str) -> None:
    """Whether cast can work from here (like SkyPilot's `sky check`), for each CLOUD (default all).

    Per cloud: the credential source found (never the secret), one cheap authenticated call,
    and the endpoint in use (marked when it is the sandbox's, on loopback); then the tools the
    sandbox needs on this machine and whether it runs. All clouds are checked at once. Exit 0
    when every cloud named is usable, 1 otherwise, saying what to do for each one that is not.
    """
    from .doctor import diagnose
    from .regions import load_region_map

    report = diagnose(clouds or CLOUD_NAMES, load_region_map(), store_of(ctx).root, timeout_s=timeout)
    if output == "json":
        emit_json(report.to_dict())
    else:
        render_doctor(report)
    if not report.usable:
        ctx.exit(1)


cli.add_command(sandbox_group)
cli.add_command(state_group)
for _command in (create_cluster_cmd, add_node_cmd, remove_node_cmd, check_latency_cmd):
    cli.add_command(_command)


def main() -> None:
    """The console script's entry point. It ends the process without the interpreter's
    shutdown, which takes about half a second once the cloud SDKs are loaded and does nothing
    cast needs: by then every command has closed its files and joined its threads."""
    import logging
    import os

    try:
        cli(prog_name="cast")
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    main()
