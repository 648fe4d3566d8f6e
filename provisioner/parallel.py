"""Independent work at once: the lookups of one step, say, whose answers do not depend on each
other, cost one round trip instead of one each; the clouds of a cluster are worked on side by
side. The first call runs in the calling thread (it keeps that thread's SDK clients and
connections); the others each in a thread of their own, at most `max_workers` at a time."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def gather(*calls: Callable[[], Any], prefer: type[BaseException] | None = None,
           max_workers: int | None = None) -> tuple[Any, ...]:
    """Run every call at once and return their results in order. Every call finishes before
    an error is raised: the first one (of type `prefer`, when one is)."""
    if len(calls) <= 1:
        return tuple(call() for call in calls)
    rest = calls[1:]
    with ThreadPoolExecutor(max_workers=min(max_workers or len(rest), len(rest)), thread_name_prefix="gather") as pool:
        futures = [pool.submit(call) for call in rest]
        first: tuple[Any, BaseException | None]
        try:
            first = (calls[0](), None)
        except Exception as exc:  # raised below, once every other call has finished
            first = (None, exc)
        errors = [e for e in (first[1], *(f.exception() for f in futures)) if e is not None]
    if errors:
        raise next((e for e in errors if prefer is not None and isinstance(e, prefer)), errors[0])
    return (first[0], *(f.result() for f in futures))
