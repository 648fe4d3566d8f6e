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
from .cli_state import reconcile_all, state_group
from .cli_status import kubeconfig_cmd, list_cmd, status_cmd
from .completion import SHELLS, complete_cluster
from .errors import CastError
from .render import CLOUD_NAMES, render_doctor, render_regions
from .terminal import clean, console, literal

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
for _command in (create_cluster_cmd, add_node_cmd, remove_node_cmd, check_latency_cmd, list_cmd, status_cmd,
                 kubeconfig_cmd):
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
