"""Waiting and retrying with names and budgets: jittered exponential backoff, never a fixed
sleep. Only TransientError is retried."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import CastError, TransientError

T = TypeVar("T")


class DeadlineError(CastError):
    """A wait ran out of time. The message says what was awaited."""


def backoff_delays(initial: float = 0.1, maximum: float = 5.0, factor: float = 2.0):
    """An endless series of jittered, growing delays (full jitter above half the step)."""
    step = initial
    while True:
        yield step / 2 + random.random() * step / 2
        step = min(maximum, step * factor)


def retry_transient(fn: Callable[[], T], *, budget_s: float = 120.0, initial: float = 0.2, maximum: float = 10.0) -> T:
    """Call `fn` until it returns, retrying TransientError with backoff for at most
    `budget_s` seconds; then the last TransientError is raised. Other errors pass through."""
    deadline = time.monotonic() + budget_s
    for delay in backoff_delays(initial, maximum):
        try:
            return fn()
        except TransientError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def wait_until(
    check: Callable[[], T | None], *, what: str, timeout_s: float, initial: float = 0.1, maximum: float = 5.0
) -> T:
    """Poll `check` with backoff until it returns something other than None or False, and
    return that. Raises DeadlineError naming `what` after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    for delay in backoff_delays(initial, maximum):
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise DeadlineError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
    raise AssertionError("unreachable")
