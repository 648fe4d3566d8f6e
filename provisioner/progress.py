"""Progress of long work: a line per cloud and step with elapsed time, on stderr (rich), or
nothing (quiet and JSON modes)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from . import logs

if TYPE_CHECKING:
    from rich.console import Console

STATUS_STYLE = {"start": "dim", "done": "green", "fail": "bold red", "skip": "dim", "info": "cyan", "warn": "yellow"}


class Progress:
    """Thread-safe progress lines. With console=None it prints nothing."""

    def __init__(self, console: Console | None):
        self.console = console
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def line(self, scope: str, step: str, status: str, detail: str = "") -> None:
        """One line: `[  1.2s] aws        network        done  vpc-0abc`. Never pass a secret.
        The line also goes to the command log, quiet or not."""
        logs.logger("step").info("%s %s %s%s", scope, step, status, f" {detail}" if detail else "")
        if self.console is None:
            return
        elapsed = time.monotonic() - self.started
        style = STATUS_STYLE.get(status, "")
        with self._lock:
            self.console.print(
                f"[dim]\\[{elapsed:6.1f}s][/] {scope:<13} {step:<14} [{style}]{status:<5}[/] {detail}",
                highlight=False,
                no_wrap=True,
                overflow="ellipsis",
            )
