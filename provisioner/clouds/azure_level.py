"""One level of Azure's create chain: resources that need nothing of each other are sent at
once (each PUT answered at once: its operation is not polled), then watched together: one
look at the group's resources of each kind of the level (the kind's own list, served by its
resource provider with the live provisioningState; ARM's generic resource list is a cache that
may lag) once the operations' own estimates say they are done, again with a short backoff for
stragglers. A level of n resources costs n PUTs and, as a rule, one look per kind, whatever n
(more when the work outlasts its Retry-After's window).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import CloudError
from ..parallel import gather
from ..progress import report
from ..retry import poll_until
from . import azure_build as build
from .azure_session import CLOUD

if TYPE_CHECKING:
    from .azure import Provider

WORKERS = 16  # PUTs in flight at once
MAX_HINT_S = 60.0  # the longest wait for an operation's estimate before the first look
# ARM's Retry-After is whole seconds, rounded: an N says the work ends between N - 0.5 and
# N + 0.5 seconds from the answer (a 0: within half a second). The first look goes at the
# window's start (at least FLOOR_S after the answer), the next ones every LOOK_EVERY_S until
# its end, then with a doubling backoff.
FLOOR_S = 0.15
LOOK_EVERY_S = 0.15


def first_look_s(retry_after: float | None) -> float:
    """How long after its PUT's answer an operation is worth the first look."""
    if not retry_after:
        return FLOOR_S
    return min(max(retry_after - 0.5, FLOOR_S), MAX_HINT_S)


def window_end_s(retry_after: float | None) -> float:
    """How long after its PUT's answer an operation should be done, by its Retry-After."""
    return min((retry_after or 0.0) + 0.5, MAX_HINT_S)


class Level:
    """The creates of one level in the resource group `group` of provider `p`: `put` them
    (from any thread), then `wait` for them all (reporting how many are made, unless not
    `progress`)."""

    def __init__(self, p: Provider, group: str, what: str, *, progress: bool = True):
        self.p, self.group, self.what, self.progress = p, group, what, progress
        self._lock = threading.Lock()
        self._sent: dict[tuple[str, str], float] = {}  # (type lowercase, name lowercase) -> look time
        self._window_end = 0.0  # when the last one sent should be done, by its Retry-After

    def put(self, what: str, start: Callable[[Any], Any], kind: str, name: str, *, size: str | None = None) -> str:
        """Send create or update `start(polling)` (a begin_* call) of resource `name` of
        `kind` (e.g. "Microsoft.Network/publicIPAddresses"), without waiting for it; return
        its ARM id."""
        hint = self.p.put_now(what, start, size=size)
        answered = time.monotonic()
        with self._lock:
            self._sent[(kind.lower(), name.lower())] = answered + first_look_s(hint)
            self._window_end = max(self._window_end, answered + window_end_s(hint))
        return build.resource_id(self.p.session.subscription_id, self.group, kind, name)

    def put_all(self, puts: Sequence[Callable[[], object]]) -> list[object]:
        """Run `puts` (each calls self.put) at once; their results in order."""
        if not puts:
            return []
        with ThreadPoolExecutor(max_workers=min(WORKERS, len(puts)), thread_name_prefix="azure-put") as pool:
            return [f.result() for f in [pool.submit(put) for put in puts]]

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
        kinds = sorted({kind for kind, _ in sent})

        def settled() -> bool:
            listed = gather(*(partial(self._list, kind) for kind in kinds))
            states = {(kind, str(r.name).lower()): build.text(r.provisioning_state)
                      for kind, found in zip(kinds, listed, strict=True) for r in found}
            failed = sorted(name for kind, name in sent if states.get((kind, name), "").lower() == "failed")
            if failed:
                raise CloudError(CLOUD, f"{self.what} failed to provision: {', '.join(failed)}")
            done = sum(1 for key in sent if states.get(key, "").lower() == "succeeded")
            if self.progress:
                report(f"{done}/{len(sent)} {self.what} made")
            return done == len(sent)

        poll_until(settled, what=f"{len(sent)} Azure {self.what}", timeout_s=self.p.settings.vm_timeout_s,
                   delays=self._delays())

    def _delays(self) -> Iterator[float]:
        """Every LOOK_EVERY_S until the last operation's Retry-After window ends (the hints
        say the work ends in there), then doubling up to the provider's poll_max_s."""
        gap = LOOK_EVERY_S
        while True:
            if time.monotonic() >= self._window_end:  # later than the hints said: back off
                gap = min(2 * gap, self.p.settings.poll_max_s)
            yield gap

    def _list(self, kind: str) -> list[Any]:
        """The group's resources of `kind` (lowercase ARM type), through that kind's client."""
        session = self.p.session
        operations = {
            "microsoft.network/virtualnetworks": lambda: session.network.virtual_networks,
            "microsoft.network/networksecuritygroups": lambda: session.network.network_security_groups,
            "microsoft.network/publicipaddresses": lambda: session.network.public_ip_addresses,
            "microsoft.network/networkinterfaces": lambda: session.network.network_interfaces,
            "microsoft.compute/virtualmachines": lambda: session.compute.virtual_machines,
        }[kind]()
        return self.p.call(f"list {kind.rsplit('/', 1)[-1]} in {self.group}",
                           lambda: list(operations.list(self.group)))
