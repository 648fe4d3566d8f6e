"""What `provisioner.progress.report()` says while cloud or node code runs, read from a real
Progress printing its plain lines into a buffer."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

from rich.console import Console

from provisioner.progress import Progress


@contextlib.contextmanager
def reports(scope: str = "cloud", step: str = "vms") -> Iterator[list[str]]:
    """Inside, code reporting from this thread is heard; on leaving, the list holds each
    distinct report in order."""
    buffer = io.StringIO()
    progress = Progress(Console(file=buffer, soft_wrap=True))
    said: list[str] = []
    try:
        with progress.reporting(scope, step):
            yield said
    finally:
        said.extend(line.split(" run ", 1)[1].strip() for line in buffer.getvalue().splitlines() if " run " in line)
