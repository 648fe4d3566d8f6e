"""`cast state …`: the state store itself (unlock a cluster, move a cluster between the local
store and a bucket, make a key file), and `cast reconcile --all`, the reconcile service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .cli_common import emit_json, output_option, store_of
from .completion import complete_cluster
from .errors import InputError
from .terminal import console, literal


@click.group("state")
def state_group() -> None:
    """The state store: where each cluster's journal, resources and sealed secrets live.

    \b
    Local by default (--state-dir / CAST_HOME); for a team, a bucket:
      export CAST_STATE=s3://team-bucket/cast CAST_STATE_KEY=kms://alias/cast-state
    """


def local_store(ctx: click.Context) -> Any:
    """The local SQLite store of this invocation (--state-dir / CAST_HOME, else the default)."""
    from .state import StateStore, default_state_dir

    state_dir = ctx.find_root().params.get("state_dir")
    return StateStore(Path(state_dir) if state_dir else default_state_dir())


def remote_store(ctx: click.Context) -> Any:
    """The bucket store of --state / CAST_STATE; InputError when none is named."""
    store = store_of(ctx)
    if getattr(store, "objects", None) is None:
        raise InputError("--state", "name the bucket to move to or from (or set CAST_STATE)",
                         "s3://BUCKET/PREFIX or azblob://ACCOUNT/CONTAINER/PREFIX")
    return store


@state_group.command("unlock")
@click.argument("name", shell_complete=complete_cluster)
@click.option("--force", is_flag=True, help="Break a live lease too (its holder's next write is then refused).")
@click.pass_context
def unlock_cmd(ctx: click.Context, name: str, force: bool) -> None:
    """Release the lock of the cluster NAME left by a run that is gone.

    Refuses (exit 4, naming the holder) while the lease is live, unless --force. On a local
    store the lock of a dead process on this host is taken over by the next run anyway.
    """
    store = store_of(ctx)
    objects = getattr(store, "objects", None)
    if objects is None:
        holder = store.lock_holder(name)
        if holder is None:
            console().print(literal(f"{name}: not locked"))
            return
        raise InputError("NAME", f"{name} is locked in the local store by {holder.describe()}; the next run "
                         "takes it over once that process is gone", "a cluster in a bucket (--state s3://…)")
    from .state.lease import holder_of

    remote: Any = store  # a RemoteStateStore: it has objects
    doc, before = remote.break_lock(name, force=force)
    if doc is None or before == "released":
        console().print(literal(f"{name}: not locked"))
        return
    console().print(literal(f"{name}: unlocked ({before} lease of {holder_of(doc).describe()}, "
                            f"token {doc.get('token')})"))


def _moved(output: str, moved: Any) -> None:
    if output == "json":
        emit_json(moved.__dict__)
        return
    console().print(literal(f"moved {moved.name} ({moved.uuid}) from {moved.source} to {moved.target}: "
                            f"{moved.nodes} nodes, {moved.secrets} secrets, {moved.journal} journal entries"))


@state_group.command("push")
@click.argument("name", shell_complete=complete_cluster)
@output_option
@click.pass_context
def push_cmd(ctx: click.Context, name: str, output: str) -> None:
    """Move the cluster NAME from the local store to the bucket of --state (CAST_STATE).

    Its secrets are sealed on this machine with --state-key before they leave it. Run it
    again after an interruption: it continues. The local copy is forgotten once the bucket's
    copy is checked.
    """
    from .state.transfer import move

    _moved(output, move(local_store(ctx), remote_store(ctx), name, "state push", remote_first=True))


@state_group.command("pull")
@click.argument("name")
@output_option
@click.pass_context
def pull_cmd(ctx: click.Context, name: str, output: str) -> None:
    """Move the cluster NAME from the bucket of --state (CAST_STATE) to the local store."""
    from .state.transfer import move

    _moved(output, move(remote_store(ctx), local_store(ctx), name, "state pull", remote_first=True))


@state_group.command("new-key")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def new_key_cmd(file: Path) -> None:
    """Write a new random key to FILE (mode 0600) for --state-key file://FILE, for teams without KMS.

    Keep it like a password: whoever has it (and the bucket) can read the clusters' secrets.
    """
    from .state.sealing import new_key_file

    new_key_file(file)
    console().print(literal(f"wrote a new key to {file}; use --state-key file://{file.resolve()}"))


def cluster_rows(ctx: click.Context) -> list[tuple[Any, int, str]]:
    """(cluster, node count, where its state lives) for `cast list`: the store of --state,
    and the local store too when --state names a bucket."""
    stores = [store_of(ctx)]
    if getattr(stores[0], "objects", None) is not None:
        stores.append(local_store(ctx))
    return [(c, len(s.nodes(c.uuid)), s.location) for s in stores for c in s.clusters()]


def reconcile_all(ctx: click.Context, *, dry_run: bool, watch: bool, interval_s: float, output: str) -> None:
    """Reconcile every cluster of the store that is due (each at most once per interval, one
    replica at a time); with watch, until interrupted."""
    import threading

    from .state import service

    def run(store: Any, name: str) -> list[str]:
        from .cli import make_engine

        engine = make_engine(ctx, quiet=True)
        engine.store = store
        lines: list[str] = engine.reconcile(name, dry_run=dry_run)
        return lines

    store = store_of(ctx)
    outcomes = (service.watch(store, run, interval_s, stop=threading.Event()) if watch
                else iter(service.reconcile_due(store, run, 0.0)))
    for outcome in outcomes:
        if output == "json":
            emit_json({"cluster": outcome.cluster, "phase": outcome.phase, "findings": list(outcome.lines)})
        elif outcome.phase == "held":
            console().print(literal(f"{outcome.cluster}: skipped, another replica holds it"))
        else:
            for line in outcome.lines or (f"{outcome.cluster}: everything matches the spec",):
                console().print(literal(f"{outcome.cluster}: {line}" if outcome.lines else line))
