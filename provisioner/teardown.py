"""Deleting a set of resources as a graph.

Each resource names what must be gone before it (`after`). Each is deleted, in parallel
with the others, as soon as nothing blocks it any more. NotFoundError counts as done;
DependencyError and TransientError are retried after a backoff; a stretch with no progress
longer than the stall budget ends with an error naming what is left. Cloud modules describe their resources
and how to delete one (an inventory, clouds.base.Owned); this module owns the order and the
retries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from . import logs
from .errors import CloudError, DependencyError, NotFoundError, TransientError
from .retry import backoff_delays


@dataclass(frozen=True)
class Deletable:
    """One resource to delete. `delete` raises NotFoundError when it is already gone."""

    key: str  # unique, readable: "subnet subnet-0abc"
    delete: Callable[[], None]
    after: frozenset[str] = field(default_factory=frozenset)


class InventoryItem(Protocol):
    """What delete_inventory needs of an inventory entry (clouds.base.Owned)."""

    @property
    def kind(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def after(self) -> frozenset[str]: ...

    @property
    def delete(self) -> Callable[[], None]: ...


def graph(items: Sequence[InventoryItem]) -> list[Deletable]:
    """The deletion graph of an inventory: each item waits for every other item whose kind is
    in its `after` (a kind with no item waits for nothing)."""
    by_kind: dict[str, set[str]] = {}
    for item in items:
        by_kind.setdefault(item.kind, set()).add(item.key)
    return [
        Deletable(item.key, item.delete,
                  frozenset(k for kind in item.after for k in by_kind.get(kind, ()) if k != item.key))
        for item in items
    ]


def delete_inventory(cloud: str, items: Sequence[InventoryItem], *, stall_budget_s: float = 300.0,
                     workers: int = 8) -> list[str]:
    """delete_in_passes over an inventory's graph; returns the keys in the order they went."""
    return delete_in_passes(cloud, graph(items), stall_budget_s=stall_budget_s, workers=workers)


class Batch:
    """One cloud call that deletes a whole group (EC2's TerminateInstances, DigitalOcean's
    destroy-by-tag), shared by the group's inventory items: the first item to go makes the
    call (again on a later attempt if it failed); an item is then done when `left`, the ids
    of the group still there, no longer holds its id (DependencyError until then). Without
    `left`, an item is done once the call is made. Concurrent items share one listing."""

    def __init__(self, what: str, cloud: str, start: Callable[[], None],
                 left: Callable[[], set[str]] | None = None, *, fresh_s: float = 0.05):
        self.what, self.cloud = what, cloud
        self._start, self._left, self._fresh_s = start, left, fresh_s
        self._lock = threading.Lock()
        self._started = False
        self._seen: tuple[float, set[str]] | None = None

    def deleter(self, ident: str) -> Callable[[], None]:
        """The deleter of the group's member `ident`."""
        def delete() -> None:
            with self._lock:
                if not self._started:
                    self._start()
                    self._started = True
                if self._left is None:
                    return
                if self._seen is None or time.monotonic() - self._seen[0] > self._fresh_s:
                    ids = self._left()
                    self._seen = (time.monotonic(), ids)  # fresh from when it came back: a pass shares it
                still = ident in self._seen[1]
            if still:
                raise DependencyError(self.cloud, f"{ident} ({self.what}) is still being deleted")

        return delete


def delete_in_passes(
    cloud: str,
    items: Sequence[Deletable],
    *,
    stall_budget_s: float = 300.0,
    workers: int = 8,
) -> list[str]:
    """Delete every item, honouring `after`; return the keys in the order they went. Each
    item starts as soon as everything it comes after is gone (no pass waits for its slowest
    item); one refused (in use, transient) is tried again after a backoff, together with the
    others refused meanwhile (so the members of a Batch share one listing). Raises CloudError
    naming what is left when nothing goes for `stall_budget_s`."""
    pending = {i.key: i for i in items}
    done: list[str] = []
    last_progress = time.monotonic()
    delays = backoff_delays(0.1, 5.0)
    running: dict[Future[bool], Deletable] = {}
    waiting: set[str] = set()  # refused: tried again at `release_at`
    release_at: float | None = None

    def stalled() -> CloudError | None:
        if time.monotonic() - last_progress <= stall_budget_s:
            return None
        left = ", ".join(sorted(pending))
        return CloudError(cloud, f"teardown made no progress for {stall_budget_s:.0f}s; left: {left}")

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"teardown-{cloud}") as pool:
        while pending:
            if release_at is not None and time.monotonic() >= release_at:
                waiting.clear()
                release_at = None
            busy = {i.key for i in running.values()}
            for item in pending.values():
                if item.key not in busy and item.key not in waiting and not (item.after & pending.keys()):
                    running[pool.submit(_try_delete, item)] = item
            if not running:  # everything left waits for a retry, or for what cannot go
                failure = stalled()
                if failure is not None:
                    raise failure
                if release_at is None:
                    release_at = time.monotonic() + next(delays)
                time.sleep(max(0.0, release_at - time.monotonic()))
                continue
            timeout = None if release_at is None else max(0.0, release_at - time.monotonic())
            finished, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            refused = []
            for future in finished:
                item = running.pop(future)
                if future.result():
                    del pending[item.key]
                    done.append(item.key)
                    last_progress = time.monotonic()
                    delays = backoff_delays(0.1, 5.0)
                else:
                    refused.append(item.key)
            if refused:
                failure = stalled()
                if failure is not None:
                    raise failure
                if release_at is None:
                    wait_s = next(delays)
                    release_at = time.monotonic() + wait_s
                    logs.retry(f"{cloud} teardown", f"still in use or refused: {', '.join(sorted(refused))}",
                               wait_s, attempt=0)
                waiting.update(refused)
    return done


def _try_delete(item: Deletable) -> bool:
    try:
        item.delete()
    except NotFoundError:
        return True
    except (DependencyError, TransientError):
        return False
    return True
