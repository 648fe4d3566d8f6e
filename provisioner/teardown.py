"""Deleting a set of resources as a graph, in passes.

Each resource names what must be gone before it (`after`). Each pass deletes, in parallel,
every resource nothing blocks any more. NotFoundError counts as done; DependencyError and
TransientError are retried in a later pass; a stretch with no progress longer than the
stall budget ends with an error naming what is left. Cloud modules describe their resources
and how to delete one; this module owns the order and the retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import logs
from .errors import CloudError, DependencyError, NotFoundError, TransientError
from .retry import backoff_delays


@dataclass(frozen=True)
class Deletable:
    """One resource to delete. `delete` raises NotFoundError when it is already gone."""

    key: str  # unique, readable: "subnet subnet-0abc"
    delete: Callable[[], None]
    after: frozenset[str] = field(default_factory=frozenset)


def delete_in_passes(
    cloud: str,
    items: Sequence[Deletable],
    *,
    stall_budget_s: float = 300.0,
    workers: int = 8,
) -> list[str]:
    """Delete every item, honouring `after`; return the keys in the order they went.
    Raises CloudError naming what is left when no pass makes progress for `stall_budget_s`."""
    pending = {i.key: i for i in items}
    done: list[str] = []
    last_progress = time.monotonic()
    delays = backoff_delays(0.1, 5.0)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"teardown-{cloud}") as pool:
        while pending:
            ready = [i for i in pending.values() if not (i.after & pending.keys())]
            results = list(pool.map(_try_delete, ready))
            progressed = False
            for item, gone in zip(ready, results, strict=True):
                if gone:
                    del pending[item.key]
                    done.append(item.key)
                    progressed = True
            if progressed:
                last_progress = time.monotonic()
                delays = backoff_delays(0.1, 5.0)
                continue
            if time.monotonic() - last_progress > stall_budget_s:
                left = ", ".join(sorted(pending))
                raise CloudError(cloud, f"teardown made no progress for {stall_budget_s:.0f}s; left: {left}")
            wait = next(delays)
            logs.retry(f"{cloud} teardown", f"still in use or refused: {', '.join(sorted(i.key for i in ready))}",
                       wait, attempt=0)
            time.sleep(wait)
    return done


def _try_delete(item: Deletable) -> bool:
    try:
        item.delete()
    except NotFoundError:
        return True
    except (DependencyError, TransientError):
        return False
    return True
