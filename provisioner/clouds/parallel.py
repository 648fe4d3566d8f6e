"""Independent cloud calls at once: the lookups of one step, say, whose answers do not depend on
each other, cost one API round trip instead of one each. Each call runs in a thread of its own
(the providers' SDK clients are per thread or thread-safe)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def gather(*calls: Callable[[], Any], prefer: type[BaseException] | None = None) -> tuple[Any, ...]:
    """Run every call at once and return their results in order. Every call finishes before
    an error is raised: the first one (of type `prefer`, when one is)."""
    if len(calls) <= 1:
        return tuple(call() for call in calls)
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="gather") as pool:
        futures = [pool.submit(call) for call in calls]
        errors = [e for e in (f.exception() for f in futures) if e is not None]
    if errors:
        raise next((e for e in errors if prefer is not None and isinstance(e, prefer)), errors[0])
    return tuple(f.result() for f in futures)
