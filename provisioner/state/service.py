"""Reconcile as a service (`cast reconcile --watch --all`): every cluster of a store, each on
its interval, by any number of replicas against one bucket.

A replica takes a cluster's lease (without waiting: a cluster another replica holds is
skipped), checks in the journal that the cluster is due (its last reconcile began an
interval ago or more), journals `reconcile begin` (naming the replica), runs the reconcile
and journals its end or failure, and lets the lease go. So each cluster is reconciled by one
replica at a time, once per interval; a replica killed mid-run leaves a lease that another
takes over within one lease's time (lease.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import CastError, LockHeldError
from .backend import StateBackend

STEP = ("cluster", "reconcile")


@dataclass(frozen=True)
class Outcome:
    cluster: str
    phase: str  # end, fail, or held (another replica had it)
    lines: tuple[str, ...]


def replica_name() -> str:
    return os.environ.get("CAST_REPLICA") or f"{socket.gethostname()} pid {os.getpid()}"


class _Held:
    """The store as seen by a reconcile run inside the service: the lease the service took
    is the run's, so the engine's own lock() of that cluster is already held."""

    def __init__(self, store: StateBackend, name: str):
        self._store = store
        self._name = name

    def lock(self, cluster: str, command: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext() if cluster == self._name else self._store.lock(cluster, command)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._store, attr)


def last_begin(store: StateBackend, uuid: str) -> float:
    """When the cluster's newest finished reconcile began (0: never). A run that began and
    never ended was cut short (its replica died: whoever holds the lease now took it over), so
    the cluster is due at once."""
    began, finished = 0.0, 0.0
    for e in store.journal_entries(uuid):
        if (e.cloud, e.step) == STEP:
            if e.phase == "begin":
                began = e.at
            elif began:
                finished = began
    return finished


def reconcile_due(store: StateBackend, run: Callable[[Any, str], list[str]], interval_s: float,
                  replica: str | None = None) -> list[Outcome]:
    """One pass over the store: reconcile each cluster that is due and not held elsewhere.
    `run(store, name)` reconciles one cluster and returns its findings."""
    replica = replica or replica_name()
    outcomes = []
    for row in store.clusters():
        if time.time() - last_begin(store, row.uuid) < interval_s:
            continue
        try:
            with store.lock(row.name, "reconcile --all"):
                if time.time() - last_begin(store, row.uuid) < interval_s:
                    continue  # another replica did it while we looked
                store.journal(row.uuid, *STEP, "begin", f"replica {replica}")
                try:
                    lines = run(_Held(store, row.name), row.name)
                except CastError as exc:
                    store.journal(row.uuid, *STEP, "fail", f"replica {replica}: {exc}")
                    outcomes.append(Outcome(row.name, "fail", (str(exc),)))
                    continue
                store.journal(row.uuid, *STEP, "end", f"replica {replica}: {len(lines)} findings")
                outcomes.append(Outcome(row.name, "end", tuple(lines)))
        except LockHeldError as exc:
            outcomes.append(Outcome(row.name, "held", (str(exc),)))
    return outcomes


def watch(store: StateBackend, run: Callable[[Any, str], list[str]], interval_s: float, *,
          stop: threading.Event | None = None, tick_s: float | None = None) -> Iterator[Outcome]:
    """Pass after pass until `stop` is set, yielding each outcome. A replica looks again every
    tick (a quarter of the interval, at most half a lease and 30 s), so that a cluster whose
    replica died is picked up within a lease of its last renewal."""
    from .lease import lease_ttl

    stop = stop or threading.Event()
    tick = tick_s or min(30.0, interval_s / 4, lease_ttl() / 2)
    while not stop.is_set():
        yield from reconcile_due(store, run, interval_s)
        stop.wait(tick)
