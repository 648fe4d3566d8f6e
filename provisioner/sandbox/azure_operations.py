"""The Azure emulator's long-running operations: an operation id per PUT, DELETE or action;
`Azure-AsyncOperation` URLs (operations/{id}: a status body) and `Location` URLs
(operationresults/{id}: 202 until done, then 204), as ARM's async-operation protocol has them.

An operation takes `op_seconds` (its work goes on whether anyone polls or not, as on ARM: a
client may watch the resource's provisioningState in a list instead); its Retry-After is the
time it still needs in whole seconds (at least `retry_after`), so a client that honours the
hint polls about once.
Polled, it also answers InProgress at least `lro_polls` times (the protocol tests' knob); an
operation polled part-way and then left alone for `abandoned_after_s` completes by itself.
When it completes it runs its `finish` and answers Succeeded.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

from .emulator import Request, Response


@dataclass
class _Operation:
    remaining: int  # polls still answered InProgress
    finish: Callable[[], None]
    due: float  # monotonic time its work is over
    touched: float = field(default_factory=time.monotonic)  # created or last polled
    polled: bool = False
    done: bool = False

    def left_s(self) -> float:
        return max(0.0, self.due - time.monotonic())


class LongRunning:
    """A mixin for the emulator: it sets these attributes and serves `_operation` as a route."""

    url: str
    lro_polls: int
    retry_after: int
    op_seconds: float
    op_by_namespace: dict[str, float]  # op_seconds per resource provider namespace, where set
    abandoned_after_s: float
    _ops: dict[str, _Operation]
    _op_ids: Iterator[int]

    def _init_operations(self) -> None:
        self._ops = {}
        self._op_ids = itertools.count(1)

    def _start(self, sub: str, namespace: str, location: str, kind: str, finish: Callable[[], None]) -> str:
        op_id = f"{next(self._op_ids):06d}-{uuid.uuid4()}"
        seconds = self.op_by_namespace.get(namespace, self.op_seconds)
        self._ops[op_id.lower()] = _Operation(self.lro_polls, finish, time.monotonic() + seconds)
        if self.lro_polls <= 0 and seconds <= 0:
            self._advance(self._ops[op_id.lower()])
        api = "2025-04-01" if namespace == "Microsoft.Resources" else "2024-10-01"
        return (f"{self.url}/subscriptions/{sub}/providers/{namespace}/locations/{location}/{kind}/{op_id}?"
                + urlencode({"api-version": api}))

    def _lro_headers(self, url: str) -> dict[str, str]:
        return {"Azure-AsyncOperation": url, "Retry-After": self._hint(url)}

    def _hint(self, url: str) -> str:
        """The Retry-After for the operation behind `url` (one of _start's)."""
        op = self._ops.get(url.split("?", 1)[0].rsplit("/", 1)[1].lower())
        return self._retry_after(op.left_s() if op is not None else self.op_seconds)

    def _retry_after(self, left_s: float) -> str:
        """The polling hint: the time the operation still needs, at least `retry_after`, in
        whole seconds as ARM sends it (the SDKs read the header as an integer): an operation
        with less than half a second left says 0."""
        return str(max(self.retry_after, int(left_s + 0.5)))

    @staticmethod
    def _advance(op: _Operation) -> None:
        """One poll of `op`: InProgress while it has polls to answer so or work left."""
        if op.done:
            return
        op.touched = time.monotonic()
        op.polled = True
        if op.remaining > 0:
            op.remaining -= 1
            return
        if op.left_s() > 0:
            return
        op.done = True
        op.finish()

    def _finish_abandoned(self, polled_now: str | None = None) -> None:
        """Complete the operations whose work is over and that no poller holds back (never
        polled, or polled past its last InProgress); a poller gone for `abandoned_after_s`
        holds nothing back any more. `polled_now`: the operation this request polls (its
        poll decides)."""
        now = time.monotonic()
        for key, op in list(self._ops.items()):
            if key == (polled_now or "").lower():
                continue
            if not op.done and op.polled and op.remaining > 0 and now - op.touched > self.abandoned_after_s:
                op.remaining = 0
            if not op.done and op.due <= now and (not op.polled or op.remaining == 0):
                op.done = True
                op.finish()
            if op.done and now - op.touched > 10 * self.abandoned_after_s:
                del self._ops[key]  # long finished; nobody will poll it again

    def _operation(self, request: Request, sub: str, ns: str, loc: str, kind: str, op: str) -> Response:
        if request.method != "GET":
            return Response(405, {"error": {"code": "MethodNotAllowed",
                                            "message": f"The requested method {request.method} is not allowed here."}})
        found = self._ops.get(op.lower())
        if found is None:
            return Response(404, {"error": {"code": "OperationNotFound", "message": f"Operation {op} was not found."}})
        self._advance(found)
        retry = {"Retry-After": self._retry_after(found.left_s())}
        if kind.lower() == "operationresults":
            return Response(204 if found.done else 202, None, {} if found.done else retry)
        status = "Succeeded" if found.done else "InProgress"
        return Response(200, {"name": op, "status": status}, {} if found.done else retry)

