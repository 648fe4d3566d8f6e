"""Progress of long work on stderr. On a terminal: a live view with a row per cloud and phase
(progress_live.py). Through a pipe: one whole line per event with its elapsed time, never cut.
With console=None (quiet and JSON modes): nothing. Code that runs inside a step (a cloud's
wait for its VMs, say) says how far it has got with `report()`, knowing nothing of where or
whether that is shown."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from . import logs
from .terminal import is_tty, literal

if TYPE_CHECKING:
    from rich.console import Console

    from .progress_live import LiveView

STATUS_STYLE = {"start": "dim", "run": "cyan", "done": "green", "fail": "bold red", "skip": "dim", "info": "cyan",
                "warn": "yellow"}

_here = threading.local()  # .reporter: where report() goes in this thread, while a step runs in it


def report(detail: str) -> None:
    """Say how far the step running in this thread has got (e.g. `3/6 running`): shown as
    the step's detail until the next report or the step's end, once per change. Does
    nothing outside a step (Progress.reporting). Never pass a secret."""
    reporter: Callable[[str], None] | None = getattr(_here, "reporter", None)
    if reporter is not None:
        reporter(detail)


class Progress:
    """Thread-safe progress events. With console=None it shows nothing. Use it as a context
    manager (or call close()) so that a live view ends before the command prints its result."""

    def __init__(self, console: Console | None):
        self.console = console
        self.started = time.monotonic()
        self.live = console is not None and console.is_interactive and is_tty(console)
        self._lock = threading.Lock()
        self._view: LiveView | None = None
        self._reported: dict[tuple[str, str], str] = {}

    def line(self, scope: str, step: str, status: str, detail: str = "") -> None:
        """An event of `step` in `scope` (a cloud, "mesh", "kubernetes", "cluster"): status
        start, run (a report: see update), done, fail, skip, info or warn, and its detail.
        Through a pipe: `[  1.2s] aws           network        done  vpc-0abc`. Never pass a secret.
        The event also goes to the command log, quiet or not."""
        logs.logger("step").info("%s %s %s%s", scope, step, status, f" {detail}" if detail else "")
        if self.console is None:
            return
        with self._lock:
            if status == "start":
                self._reported.pop((scope, step), None)
            if self.live:
                if self._view is None:
                    from .progress_live import LiveView

                    self._view = LiveView(self.console)
                self._view.event(scope, step, status, detail)
                return
            elapsed = time.monotonic() - self.started
            self.console.print(
                literal(f"[{elapsed:6.1f}s]", "dim"),
                literal(f"{scope:<13} {step:<14}"),
                literal(f"{status:<5}", STATUS_STYLE.get(status, "")),
                literal(detail, one_line=True),
                soft_wrap=True,
            )

    def update(self, scope: str, step: str, detail: str) -> None:
        """How far the running `step` in `scope` has got; an unchanged detail is not shown again."""
        with self._lock:
            if self._reported.get((scope, step)) == detail:
                return
            self._reported[(scope, step)] = detail
        self.line(scope, step, "run", detail)

    @contextlib.contextmanager
    def reporting(self, scope: str, step: str) -> Iterator[None]:
        """While inside, report() from this thread updates `step` in `scope`."""
        previous = getattr(_here, "reporter", None)
        _here.reporter = partial(self.update, scope, step)
        try:
            yield
        finally:
            _here.reporter = previous

    def close(self) -> None:
        """End the live view (its last rows stay on the screen). Harmless when there is none."""
        with self._lock:
            view, self._view = self._view, None
        if view is not None:
            view.stop()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
