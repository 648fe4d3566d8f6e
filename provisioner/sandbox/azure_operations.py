"""The Azure emulator's long-running operations: an operation id per PUT, DELETE or action,
answered InProgress for `lro_polls` polls (with Retry-After) before it runs its `finish` and
answers Succeeded; `Azure-AsyncOperation` URLs (operations/{id}: a status body) and `Location`
URLs (operationresults/{id}: 202 until done, then 204), as ARM's async-operation protocol has
them. An operation nobody polls for `abandoned_after_s` completes by itself.
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
    touched: float = field(default_factory=time.monotonic)  # created or last polled
    done: bool = False


class LongRunning:
    """A mixin for the emulator: it sets these attributes and serves `_operation` as a route."""

    url: str
    lro_polls: int
    retry_after: int
    abandoned_after_s: float
    _ops: dict[str, _Operation]
    _op_ids: Iterator[int]

    def _init_operations(self) -> None:
        self._ops = {}
        self._op_ids = itertools.count(1)

    def _start(self, sub: str, namespace: str, location: str, kind: str, finish: Callable[[], None]) -> str:
        op_id = f"{next(self._op_ids):06d}-{uuid.uuid4()}"
        self._ops[op_id.lower()] = _Operation(self.lro_polls, finish)
        if self.lro_polls <= 0:
            self._advance(self._ops[op_id.lower()])
        api = "2025-04-01" if namespace == "Microsoft.Resources" else "2024-10-01"
        return (f"{self.url}/subscriptions/{sub}/providers/{namespace}/locations/{location}/{kind}/{op_id}?"
                + urlencode({"api-version": api}))

    def _lro_headers(self, url: str) -> dict[str, str]:
        return {"Azure-AsyncOperation": url, "Retry-After": str(self.retry_after)}

    @staticmethod
    def _advance(op: _Operation) -> None:
        if op.done:
            return
        op.touched = time.monotonic()
        if op.remaining > 0:
            op.remaining -= 1
            return
        op.done = True
        op.finish()

    def _finish_abandoned(self) -> None:
        now = time.monotonic()
        for key, op in list(self._ops.items()):
            if not op.done and now - op.touched > self.abandoned_after_s:
                op.remaining = 0
                self._advance(op)
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
        retry = {"Retry-After": str(self.retry_after)}
        if kind.lower() == "operationresults":
            return Response(204 if found.done else 202, None, {} if found.done else retry)
        status = "Succeeded" if found.done else "InProgress"
        return Response(200, {"name": op, "status": status}, {} if found.done else retry)

