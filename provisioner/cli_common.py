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
    from .state import StateStore, default_state_dir

    state_dir = ctx.find_root().params.get("state_dir")
    return StateStore(Path(state_dir) if state_dir else default_state_dir())
