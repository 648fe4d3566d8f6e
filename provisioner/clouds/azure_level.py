"""One level of Azure's create chain: resources that need nothing of each other are sent at
once (each PUT answered at once: its operation is not polled), then watched together: one
look at the resource group's resources (the generic list, with their provisioningState; of the
level's kind where it has one) once the operations' own estimates say they are done, again
with a short backoff for stragglers. A level of n resources costs n PUTs
and, as a rule, one look, whatever n.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import CloudError
from ..progress import report
from ..retry import wait_until
from .azure_session import CLOUD

if TYPE_CHECKING:
    from .azure import Provider

WORKERS = 16  # PUTs in flight at once
MAX_HINT_S = 60.0  # the longest wait for an operation's estimate before the first look
# ARM's Retry-After is whole seconds: a 0 says under half a second is left, so the first look
# waits FLOOR_S; an N says the work may be over half a second sooner than N.
FLOOR_S = 0.15
LOOK_EVERY_S = 0.1  # the first wait between two looks when one found work left (then doubling)


def first_look_s(retry_after: float | None) -> float:
    """How long after its PUT's answer an operation is worth the first look."""
    if not retry_after:
        return FLOOR_S
    return min(max(retry_after - 0.5, FLOOR_S), MAX_HINT_S)


class Level:
    """The creates of one level in the resource group `group` of provider `p`: `put` them
    (from any thread), then `wait` for them all (reporting how many are made, unless not
    `progress`)."""

    def __init__(self, p: Provider, group: str, what: str, *, progress: bool = True):
        self.p, self.group, self.what, self.progress = p, group, what, progress
        self._lock = threading.Lock()
        self._sent: dict[tuple[str, str], float] = {}  # (type lowercase, name lowercase) -> look time
        self._longest_hint = 0.0

    def put(self, what: str, start: Callable[[Any], Any], kind: str, name: str, *, size: str | None = None) -> str:
        """Send create or update `start(polling)` (a begin_* call) of resource `name` of
        `kind` (e.g. "Microsoft.Network/publicIPAddresses"), without waiting for it; return
        its ARM id."""
        from . import azure_build as build

        hint = self.p.put_now(what, start, size=size)
        with self._lock:
            self._sent[(kind.lower(), name.lower())] = time.monotonic() + first_look_s(hint)
            self._longest_hint = max(self._longest_hint, hint or 0.0)
        return build.resource_id(self.p.session.subscription_id, self.group, kind, name)

    def put_all(self, puts: Sequence[Callable[[], object]]) -> list[object]:
        """Run `puts` (each calls self.put) at once; their results in order."""
        if not puts:
            return []
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(puts)), thread_name_prefix="azure-put") as pool:
            return [f.result() for f in [pool.submit(put) for put in puts]]

    @property
    def longest_hint(self) -> float:
        """The longest Retry-After the level's operations gave (0 without one)."""
        return self._longest_hint

    def sleep_until_due(self) -> None:
        """Block until the last operation sent is worth a first look (first_look_s)."""
        with self._lock:
            due = max(self._sent.values(), default=0.0)
        time.sleep(max(0.0, due - time.monotonic()))

    def wait(self) -> None:
        """Block until every resource sent is Succeeded; CloudError naming those that Failed."""
        with self._lock:
            sent = dict(self._sent)
        if not sent:
            return
        self.sleep_until_due()
        rc = self.p.session.resources

        kinds = {kind for kind, _ in sent}
        # One kind: the group's resources of that kind; several (the network level, in a group
        # that holds little else yet): all of the group's, in one list.
        only = f"resourceType eq '{next(iter(kinds))}'" if len(kinds) == 1 else None

        def settled() -> bool:
            listed = self.p.call(f"list resources in {self.group}", lambda: list(rc.resources.list_by_resource_group(
                self.group, filter=only, expand="provisioningState")))
            states = {(str(r.type).lower(), str(r.name).lower()): str(r.provisioning_state or "") for r in listed}
            failed = sorted(name for kind, name in sent if states.get((kind, name), "").lower() == "failed")
            if failed:
                raise CloudError(CLOUD, f"{self.what} failed to provision: {', '.join(failed)}")
            done = sum(1 for key in sent if states.get(key, "").lower() == "succeeded")
            if self.progress:
                report(f"{done}/{len(sent)} {self.what} made")
            return done == len(sent)

        wait_until(settled, what=f"{len(sent)} Azure {self.what}", timeout_s=self.p.settings.vm_timeout_s,
                   initial=LOOK_EVERY_S, maximum=self.p.settings.poll_max_s)
