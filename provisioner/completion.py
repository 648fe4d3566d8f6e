"""Shell completion (click's own, through `_CAST_COMPLETE`): the clusters of the state store,
and the workers of the cluster named before. It only reads: a missing or unreadable store
completes nothing and creates nothing. `cast completion SHELL` prints the script."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click
    from click.shell_completion import CompletionItem

    from .state import ClusterRow, StateStore

SHELLS = ("bash", "zsh", "fish")


def _store(ctx: click.Context) -> StateStore:
    from .state import StateStore, default_state_dir

    state_dir = ctx.find_root().params.get("state_dir")
    return StateStore(Path(state_dir) if state_dir else default_state_dir())


def _clusters(ctx: click.Context) -> tuple[StateStore, list[ClusterRow]]:
    import sqlite3

    from .errors import CastError

    store = _store(ctx)
    try:
        return store, store.clusters()
    except (CastError, sqlite3.Error, OSError):  # a broken or newer store: nothing to offer
        return store, []


def complete_cluster(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The names of the clusters in the state store that start with `incomplete`."""
    from click.shell_completion import CompletionItem

    _, clusters = _clusters(ctx)
    return [CompletionItem(c.name) for c in clusters if c.name.startswith(incomplete)]


def complete_worker(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The workers (the nodes remove-node takes) of the cluster given as NAME, starting with
    `incomplete`."""
    import sqlite3

    from click.shell_completion import CompletionItem

    from .errors import CastError

    store, clusters = _clusters(ctx)
    cluster = next((c for c in clusters if c.name == ctx.params.get("name")), None)
    if cluster is None:
        return []
    try:
        nodes = store.nodes(cluster.uuid)
    except (CastError, sqlite3.Error, OSError):
        return []
    return [CompletionItem(n.name) for n in nodes if n.role == "worker" and n.name.startswith(incomplete)]


def completion_script(cli: click.Command, shell: str, prog_name: str = "cast") -> str:
    """The completion script of `shell` for the command line `cli`, as click writes it."""
    from click.shell_completion import get_completion_class

    completion = get_completion_class(shell)
    if completion is None:
        raise KeyError(shell)
    return completion(cli, {}, prog_name, f"_{prog_name.upper()}_COMPLETE").source()
