"""Waiting and retrying with names and budgets: jittered exponential backoff, never a fixed
sleep. Only TransientError is retried."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from . import logs
from .errors import CastError, TransientError

T = TypeVar("T")


DEFAULT_RETRY_BUDGET_S = 120.0


def retry_budget_s() -> float:
    """How long cast keeps retrying throttling and 5xx answers from a cloud before it gives
    up: $CAST_RETRY_BUDGET_S seconds, 120 by default."""
    text = os.environ.get("CAST_RETRY_BUDGET_S")
    if not text:
        return DEFAULT_RETRY_BUDGET_S
    try:
        value = float(text)
    except ValueError:
        raise CastError(f"CAST_RETRY_BUDGET_S: {text!r} is not a number of seconds") from None
    if value < 0:
        raise CastError(f"CAST_RETRY_BUDGET_S: {text!r} is negative")
    return value


class DeadlineError(CastError):
    """A wait ran out of time. The message says what was awaited."""


def backoff_delays(initial: float = 0.1, maximum: float = 5.0, factor: float = 2.0):
    """An endless series of jittered, growing delays (full jitter above half the step)."""
    step = initial
    while True:
        yield step / 2 + random.random() * step / 2
        step = min(maximum, step * factor)


def retry_transient(
    fn: Callable[[], T], *, budget_s: float | None = None, initial: float = 0.2, maximum: float = 10.0,
    what: str = "a cloud call",
) -> T:
    """Call `fn` until it returns, retrying TransientError with backoff for at most
    `budget_s` seconds (default: retry_budget_s()); then the last TransientError is raised.
    Other errors pass through. Each retry is logged (`what`, the error, the wait)."""
    deadline = time.monotonic() + (retry_budget_s() if budget_s is None else budget_s)
    for attempt, delay in enumerate(backoff_delays(initial, maximum), start=2):
        try:
            return fn()
        except TransientError as exc:
            if time.monotonic() + delay > deadline:
                raise
            logs.retry(what, str(exc), delay, attempt)
            time.sleep(delay)
    raise AssertionError("unreachable")


def wait_until(
    check: Callable[[], T | None], *, what: str, timeout_s: float, initial: float = 0.1, maximum: float = 5.0
) -> T:
    """Poll `check` with backoff until it returns something other than None or False, and
    return that. Raises DeadlineError naming `what` after `timeout_s` seconds. A wait of more
    than one check is logged (what, how many checks, how long)."""
    return poll_until(check, what=what, timeout_s=timeout_s, delays=backoff_delays(initial, maximum))


def poll_until(check: Callable[[], T | None], *, what: str, timeout_s: float, delays: Iterable[float]) -> T:
    """wait_until with the waits between checks taken from `delays` (an endless series)."""
    started = time.monotonic()
    deadline = started + timeout_s
    for checks, delay in enumerate(delays, start=1):
        result = check()
        if result is not None and result is not False:
            if checks > 1:
                logs.waited(what, checks, logs.elapsed_ms(started), done=True)
            return result
        if time.monotonic() >= deadline:
            logs.waited(what, checks, logs.elapsed_ms(started), done=False)
            raise DeadlineError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
    raise AssertionError("unreachable")
