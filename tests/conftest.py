"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def command_log(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A command log (provisioner.logs) for the test: everything logged from here on goes to
    it. Call the fixture's value to end the log and get its text."""
    from provisioner import logs

    logs.start(tmp_path / "cast-home", "test", "test")

    def read() -> str:
        path = logs.finish()
        return path.read_text() if path is not None else ""

    yield read
    logs.finish()
