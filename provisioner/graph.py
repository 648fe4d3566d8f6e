"""The one journaled executor of the lifecycle: a command's work is a graph of named steps
(per cloud, keyed by the cloud's name, and cluster-wide: mesh, kubernetes, ...), each run as
soon as the steps it comes after are done, side by side where the edges allow.

Every step is journaled in the state store before and after ("begin", then "end" with its
actions, or "fail" with the error), its resources recorded, its progress shown; a failure
becomes a StepError naming the scope and the step. Steps that do not depend on a failed one
still run to their end (what they made is kept for the re-run); then the first failure is
raised. In a dry run nothing is journaled nor recorded: the state store is left as it was.

Adding a step is declaring it: `Graph.add(Step(scope, name, work, after=...))`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from .clouds.base import CloudTarget, Ensured
from .errors import CastError
from .progress import Progress
from .state import StateStore

Key = tuple[str, str]  # (scope, step name): ("aws", "network"), ("mesh", "wireguard")
MAX_WORKERS = 16  # steps at once: every cloud's steps side by side, with room to spare


class StepError(CastError):
    """A step failed on a cloud; the message says which, why, and how to go on."""

    def __init__(self, cluster: str, cloud: str, step: str, cause: Exception, *, nothing_changed: bool = False):
        self.cloud = cloud
        self.step = step
        self.cause = cause
        if nothing_changed:
            hint = "Fix that, then run the same command again: nothing has been changed on any cloud yet."
        else:
            hint = (
                f"Run the same command again to continue from here, or `cast delete-cluster {cluster}` to remove "
                f"everything made so far."
            )
        super().__init__(f"{cloud}: step {step} failed: {cause}\n{hint}")
        if isinstance(cause, CastError):
            self.exit_code = cause.exit_code


@dataclass(frozen=True)
class Step:
    """One named step. `work` gets the scope's cloud target (None for a cluster-wide scope)
    as the steps before left it. `when`, asked once the step is ready: False means the step
    is not needed this time (not run, not journaled). `skip`, likewise: a reason means the
    step is skipped visibly (journaled "skip" with the reason)."""

    scope: str
    name: str
    work: Callable[[CloudTarget | None], Ensured]
    after: tuple[Key, ...] = ()
    when: Callable[[], bool] | None = None
    skip: Callable[[], str | None] | None = None

    @property
    def key(self) -> Key:
        return (self.scope, self.name)


@dataclass
class Graph:
    """The steps of one command, in the order they were declared (the order of reports)."""

    steps: dict[Key, Step] = field(default_factory=dict)

    def add(self, step: Step) -> Step:
        """Declare `step`; the steps it comes after must be declared first (so there is no cycle)."""
        if step.key in self.steps:
            raise ValueError(f"step {step.scope}/{step.name} declared twice")
        unknown = [k for k in step.after if k not in self.steps]
        if unknown:
            raise ValueError(f"step {step.scope}/{step.name} comes after undeclared {unknown}")
        self.steps[step.key] = step
        return step

    def keys(self, name: str) -> tuple[Key, ...]:
        """Every declared step called `name`, on whichever scope: ("aws", "vms"), ("gcp", "vms")."""
        return tuple(k for k in self.steps if k[1] == name)


@dataclass
class Journal:
    """Where steps are recorded: the cluster's journal and resources in `store`, and progress."""

    store: StateStore
    cluster_name: str
    cluster_uuid: str
    progress: Progress
    dry_run: bool = False

    def begin(self, scope: str, step: str) -> None:
        if not self.dry_run:
            self.store.journal(self.cluster_uuid, scope, step, "begin")
        self.progress.line(scope, step, "start")

    def end(self, scope: str, step: str, result: Ensured) -> None:
        if not self.dry_run:
            self.store.record_resources(self.cluster_uuid, scope, [(r.kind, r.id, r.name) for r in result.resources])
            self.store.journal(self.cluster_uuid, scope, step, "end", "; ".join(result.actions))
        self.progress.line(scope, step, "done", "; ".join(result.actions) or "in place")

    def fail(self, scope: str, step: str, exc: Exception) -> StepError:
        detail = str(exc) if isinstance(exc, CastError) else f"{type(exc).__name__}: {exc}"
        if not self.dry_run:
            self.store.journal(self.cluster_uuid, scope, step, "fail", detail)
        self.progress.line(scope, step, "fail", detail)
        return StepError(self.cluster_name, scope, step, exc)

    def skipped(self, scope: str, step: str, reason: str) -> None:
        if not self.dry_run:
            self.store.journal(self.cluster_uuid, scope, step, "skip", reason)
        self.progress.line(scope, step, "skip", reason)

    def step(self, scope: str, step: str, work: Callable[[], Ensured]) -> Ensured:
        """Run one journaled step outside a graph; a failure becomes StepError."""
        self.begin(scope, step)
        try:
            with self.progress.reporting(scope, step):
                result = work()
        except Exception as exc:
            raise self.fail(scope, step, exc) from exc
        self.end(scope, step, result)
        return result


@dataclass
class Outcome:
    """What a graph run did: each step's result (steps not needed are absent)."""

    results: dict[Key, Ensured]
    order: list[Key]

    def actions(self, scopes: Iterable[str] | None = None) -> list[str]:
        """Every action of the steps that ran, "scope: action", scope by scope in the order
        given (default: as declared), steps in declared order."""
        keys = [k for k in self.order if k in self.results]
        if scopes is not None:
            wanted = list(scopes)
            keys = sorted((k for k in keys if k[0] in wanted), key=lambda k: wanted.index(k[0]))
        return [f"{k[0]}: {line}" for k in keys for line in self.results[k].actions]


def run_graph(graph: Graph, journal: Journal, targets: dict[str, CloudTarget] | None = None,
              *, max_workers: int = MAX_WORKERS) -> Outcome:
    """Run every step of `graph`, each once the steps it comes after are done (a step whose
    `when` said no counts as done). Blocks until no step can run any more. A step's
    Ensured.network_cidr, where it differs from its scope's target, replaces that target's
    network and subnet blocks for the later steps of the scope (a cloud that chose its block).
    Raises the first StepError once every running step has ended."""
    targets = dict(targets or {})
    lock = threading.Lock()
    results: dict[Key, Ensured] = {}
    done: set[Key] = set()
    failed: list[StepError] = []
    blocked: set[Key] = set()
    started: set[Key] = set()

    def execute(step: Step) -> Ensured | None:
        if step.when is not None and not step.when():
            return None
        reason = step.skip() if step.skip is not None else None
        if reason is not None:
            journal.skipped(step.scope, step.name, reason)
            return None
        with lock:
            target = targets.get(step.scope)
        result = journal.step(step.scope, step.name, lambda: step.work(target))
        cidr = result.network_cidr
        if target is not None and cidr and cidr != target.network_cidr:
            with lock:
                targets[step.scope] = replace(targets[step.scope], network_cidr=cidr, subnet_cidr=cidr)
        return result

    running: dict[Future[Ensured | None], Step] = {}
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="step") as pool:
        while True:
            for key, step in graph.steps.items():
                if key in started or key in blocked:
                    continue
                if any(k in blocked for k in step.after):
                    blocked.add(key)
                elif all(k in done for k in step.after):
                    started.add(key)
                    running[pool.submit(execute, step)] = step
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                try:
                    result = future.result()
                except StepError as exc:
                    failed.append(exc)
                    blocked.add(step.key)
                    continue
                except Exception as exc:  # a when/skip predicate failed: the step's own failure
                    failed.append(journal.fail(step.scope, step.name, exc))
                    blocked.add(step.key)
                    continue
                if result is not None:
                    results[step.key] = result
                done.add(step.key)
    if failed:
        raise failed[0]
    return Outcome(results, list(graph.steps))
