"""What the command modules share: JSON output, the --output option, the state store of the
invocation and the start of a command's log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .state import StateStore


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


def start_log(ctx: click.Context, cluster: str) -> None:
    """Begin this command's log for `cluster` under the state root: every cloud API call, SSH
    command and retry from here on, on stderr too with --verbose (see provisioner.logs)."""
    from importlib.metadata import version

    from . import logs

    logs.start(store_of(ctx).root, cluster, ctx.info_name or "command",
               verbose=bool(ctx.find_root().params.get("verbose")), version=version("cast"))


def store_of(ctx: click.Context) -> StateStore:
    """The state store of this invocation: --state (CAST_STATE) if given, else the local one of
    --state-dir (CAST_HOME); one object per invocation, so that a lease it holds is seen by all."""
    from .state import default_state_dir, open_store

    root = ctx.find_root()
    if "cast_store" not in root.meta:
        params = root.params
        state_dir = params.get("state_dir")
        root.meta["cast_store"] = open_store(params.get("state"), Path(state_dir) if state_dir else default_state_dir(),
                                             key=params.get("state_key"), lock_wait_s=params.get("lock_wait") or 0.0)
    store: StateStore = root.meta["cast_store"]  # either backend: both keep state.backend's contract
    return store


def make_engine(ctx: click.Context, regions: Any = None, *, quiet: bool = False) -> Any:
    """The lifecycle engine on this state store, with progress on stderr unless quiet. Run
    its work inside `with engine.progress:`, so that a live view ends before the result."""
    from .engine import Engine
    from .progress import Progress
    from .regions import load_region_map
    from .terminal import console

    return Engine(
        store_of(ctx), regions or load_region_map(), progress=Progress(None if quiet else console(stderr=True))
    )
