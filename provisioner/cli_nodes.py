"""`cast add-node`, `cast remove-node` and `cast check-latency`: a running cluster's nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .cli_common import emit_json, make_engine, output_option, start_log
from .completion import complete_cluster, complete_worker
from .render import CLOUD_NAMES, render_latency_matrix
from .terminal import console, literal

if TYPE_CHECKING:
    pass


@click.command("add-node")
@click.argument("name", shell_complete=complete_cluster)
@click.option("--cloud", required=True, type=click.Choice(CLOUD_NAMES), help="The cloud to add nodes on.")
@click.option(
    "--role",
    default="worker",
    show_default=True,
    type=click.Choice(["master", "worker"]),
    help="The role; masters are fixed at creation, so only workers can be added.",
)
@click.option("--count", default=1, show_default=True, type=click.IntRange(min=1), help="How many nodes.")
@output_option
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
def add_node_cmd(ctx: click.Context, name: str, cloud: str, role: str, count: int, output: str, quiet: bool) -> None:
    """Add worker nodes to the cluster NAME on one cloud and join them to the mesh."""
    start_log(ctx, name)
    engine = make_engine(ctx, quiet=quiet or output == "json")
    with engine.progress:
        added = engine.add_node(name, cloud, role, count)
    if output == "json":
        emit_json({"added": added})
    else:
        console().print(literal(f"added {', '.join(added)}"))


@click.command("remove-node")
@click.argument("name", shell_complete=complete_cluster)
@click.argument("node", shell_complete=complete_worker)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
def remove_node_cmd(ctx: click.Context, name: str, node: str, quiet: bool) -> None:
    """Delete the worker NODE of the cluster NAME; its peer is removed from every other node."""
    start_log(ctx, name)
    engine = make_engine(ctx, quiet=quiet)
    with engine.progress:
        engine.remove_node(name, node)
    console().print(literal(f"removed {node}"))



# --- check-latency (nodes over the WireGuard mesh) -------------------------------------


@click.command("check-latency")
@click.argument("name", required=False, shell_complete=complete_cluster)
@click.option(
    "--inventory",
    "inventory",
    type=click.Path(dir_okay=False),
    help="Instead of a cluster: a JSON file listing nodes (name, group or cloud, public_ip, "
    "mesh_ip, ssh_port, host_key as an OpenSSH public key line).",
)
@click.option(
    "--ssh-key",
    "ssh_key",
    type=click.Path(dir_okay=False),
    help="With --inventory: the SSH private key for root on those nodes.",
)
@click.option("--count", default=5, show_default=True, type=click.IntRange(min=1), help="Pings per pair.")
@click.option(
    "--interval", default=0.2, show_default=True, type=click.FloatRange(min=0.01), help="Seconds between pings."
)
@click.option(
    "--threshold-ms",
    default=None,
    type=click.FloatRange(min=0, min_open=True),
    help="Highest average round trip allowed between nodes of different clouds (default: the cluster's, else 10).",
)
@output_option
@click.pass_context
def check_latency_cmd(
    ctx: click.Context,
    name: str | None,
    inventory: str | None,
    ssh_key: str | None,
    count: int,
    interval: float,
    threshold_ms: float | None,
    output: str,
) -> None:
    """Ping every pair of nodes of the cluster NAME over the mesh (through WireGuard, all at
    once; each pair from one side, shown both ways) and judge the pairs between clouds: exit
    3, naming them, if any is over the threshold on average or loses packets.

    \b
    Examples:
      cast check-latency demo
      cast check-latency --inventory hosts.json --ssh-key id_ed25519 --output json
    """
    from .errors import InputError

    if (name is None) == (inventory is None):
        raise InputError("NAME", "give a cluster NAME or --inventory FILE (one of them)", "a cluster name")
    waiting = console(stderr=True).status(f"measuring ({count} pings per pair, {interval:g} s apart)")
    start_log(ctx, name if name is not None else "inventory")
    if name is not None:
        with waiting:
            report = make_engine(ctx, quiet=True).check_latency(
                name, count=count, interval_s=interval, threshold_ms=threshold_ms
            )
    else:
        from .nodes.inventory import load_inventory
        from .nodes.latency import measure_latency
        from .nodes.ssh import SshPool, load_private_key

        if ssh_key is None:
            raise InputError("--ssh-key", "--inventory needs the nodes' SSH private key", "a key file")
        nodes = load_inventory(inventory or "")
        key = load_private_key(ssh_key)
        with SshPool(key) as pool, waiting:
            report = measure_latency(
                pool,
                nodes,
                count=count,
                interval_s=interval,
                threshold_ms=threshold_ms if threshold_ms is not None else 10.0,
            )
    if output == "json":
        emit_json(report.to_dict())
    else:
        render_latency_matrix(report)
    report.raise_on_violations()
