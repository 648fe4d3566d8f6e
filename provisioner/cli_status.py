"""`cast list`, `cast status` and `cast kubeconfig`: the clusters as the state store knows them
(no cloud is called)."""

from __future__ import annotations

import click

from .cli_common import emit_json, output_option, store_of
from .cli_state import cluster_rows
from .completion import complete_cluster
from .render import render_cluster
from .terminal import console, literal, whole


@click.command("list")
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


@click.command("status")
@click.argument("name", shell_complete=complete_cluster)
@output_option
@click.pass_context
def status_cmd(ctx: click.Context, name: str, output: str) -> None:
    """One cluster: its spec, status and nodes, as the state store knows them."""
    show_cluster(ctx, name, output)


@click.command("kubeconfig")
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
