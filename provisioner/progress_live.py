"""Progress as a live view on a terminal (rich.live, imported only when one is shown): one row
per scope (each cloud, the mesh, Kubernetes, the cluster) in the order they first appear,
with a spinner while a step runs, its name, its latest report (`vms 3/6 running`) and the
time since the scope began; a row whose steps have all ended shows the last one done,
skipped or failed (a failure stays shown). Details fold onto more lines, never cut."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

from rich.console import Console, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from .terminal import literal

MARK = {"done": ("✓", "green"), "fail": ("✗", "bold red"), "skip": ("-", "dim"), "info": ("·", "cyan"),
        "warn": ("!", "yellow")}
WORD = {"fail": "failed", "skip": "skipped"}
REFRESH_PER_S = 8


@dataclass
class Row:
    """What one scope shows: its running steps (name -> latest report, in start order) and
    the last step that ended."""

    first: float
    last: float
    running: dict[str, str] = field(default_factory=dict)
    step: str = ""
    status: str = ""
    detail: str = ""
    spinner: Spinner = field(default_factory=lambda: Spinner("dots", style="cyan"))

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def elapsed_text(seconds: float) -> str:
    """`4.2s` under a minute, then `3m07s`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


class LiveView:
    """The rows of Progress events, redrawn REFRESH_PER_S times a second until stop()."""

    def __init__(self, console: Console):
        self._rows: dict[str, Row] = {}
        self._lock = threading.Lock()
        # Writes to the terminal go above the rows; stdout piped elsewhere stays where it goes.
        self._live = Live(console=console, get_renderable=self._render, refresh_per_second=REFRESH_PER_S,
                          transient=False, redirect_stdout=sys.stdout.isatty(), redirect_stderr=True)
        self._live.start()

    def event(self, scope: str, step: str, status: str, detail: str) -> None:
        """Apply one Progress event: start marks `step` running, run (a report) updates it,
        any other status ends it."""
        now = time.monotonic()
        with self._lock:
            row = self._rows.setdefault(scope, Row(now, now))
            row.last = now
            if status == "run":
                if step in row.running:  # a late report of an ended step changes nothing
                    row.running[step] = detail
            elif status == "start":
                row.running[step] = detail
            else:
                row.running.pop(step, None)
                if not row.failed:
                    row.step, row.status, row.detail = step, status, detail
        self._live.refresh()

    def stop(self) -> None:
        """Draw the rows a last time, as they stand, and give the terminal back."""
        self._live.stop()

    def _render(self) -> Table:
        now = time.monotonic()
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)  # spinner or mark
        table.add_column(no_wrap=True, min_width=12)  # scope
        table.add_column(no_wrap=True, min_width=12)  # step
        table.add_column(no_wrap=True, min_width=7)  # status word
        table.add_column(no_wrap=True, min_width=6, justify="right")  # elapsed
        table.add_column(overflow="fold")  # detail
        with self._lock:
            for scope, row in self._rows.items():
                table.add_row(*self._cells(scope, row, now))
        return table

    @staticmethod
    def _cells(scope: str, row: Row, now: float) -> tuple[RenderableType, ...]:
        if row.running and not row.failed:
            steps = ", ".join(row.running)
            detail = next((d for d in reversed(row.running.values()) if d), "")
            return (row.spinner, Text(scope, style="bold"), literal(steps), Text(""),
                    Text(elapsed_text(now - row.first), style="cyan"), literal(detail, one_line=True))
        mark, style = MARK.get(row.status, ("·", ""))
        return (Text(mark, style=style), Text(scope, style="bold"), literal(row.step),
                Text(WORD.get(row.status, row.status), style=style),
                Text(elapsed_text(row.last - row.first), style="dim"), literal(row.detail, one_line=True))
