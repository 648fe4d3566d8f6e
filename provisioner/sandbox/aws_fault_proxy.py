"""An HTTP proxy on 127.0.0.1 in front of the moto server that counts AWS API calls by action
and answers some of them with an AWS error instead of forwarding them: throttling, 5xx, a
quota. moto itself cannot fail on demand; the SDK cannot tell this proxy from the endpoint.

Like the other emulators (emulator.py), it can hold every API call `delay_s` before answering
it (in the call's own handler thread), calls its `listeners` after every call that may change
what runs (any action but Describe*, Get* and List*), and answers the same control routes for
counting, under /_emulator/ (never forwarded):
  GET    /_emulator/calls   {"total": N, "by_route": {"RunInstances": n, ...}}
  DELETE /_emulator/calls   reset the counters and the log
  GET    /_emulator/log     [{start, end, route, status}] of the calls since then, in order
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from .emulator import CallRecorder, QuietServer, control_refused

CONTROL = "/_emulator/"
MOTO_CONTROL = "/moto-api/"
READ_ONLY = ("Describe", "Get", "List")


@dataclass
class Fault:
    """Answer `code` (with HTTP `status`) to every `every`-th call of `actions` (all actions
    when empty), at most `times` times when set."""

    code: str
    status: int = 400
    actions: frozenset[str] = frozenset()
    every: int = 1
    times: int | None = None
    message: str = "injected by the sandbox fault proxy"
    drop: str | None = None  # "request": close the connection unanswered, the call not made;
    #                          "reply": make the call, then close the connection unanswered
    seen: int = 0
    fired: int = 0

    def fires(self, action: str) -> bool:
        if self.actions and action not in self.actions:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        self.fired += 1
        return True


def throttling(every: int = 3, actions: frozenset[str] = frozenset(),
               times: int | None = None) -> Fault:
    """EC2's throttling answer (HTTP 503 RequestLimitExceeded) to every `every`-th call."""
    return Fault("RequestLimitExceeded", 503, actions, every, times, "Request limit exceeded.")


def s3_fault(code: str = "SlowDown", status: int = 503, actions: frozenset[str] = frozenset(),
             every: int = 1, times: int | None = None) -> Fault:
    """An S3 error answer (SlowDown 503, InternalError 500, ...) to every `every`-th S3 call."""
    return Fault(code, status, actions, every, times, "Please reduce your request rate." if code == "SlowDown"
                 else "We encountered an internal error. Please try again.")


def dropped(when: str = "reply", actions: frozenset[str] = frozenset(), every: int = 1,
            times: int | None = None) -> Fault:
    """A dropped connection: before the call reaches the service ("request") or after the
    service made it, the answer lost ("reply")."""
    return Fault("Dropped", 0, actions, every, times, drop=when)


def s3_action(method: str, path: str) -> str | None:
    """The S3 operation of a REST request on a path-style URL (/bucket[/key][?query]), or None."""
    where, _, query = path.partition("?")
    parts = where.lstrip("/").split("/", 1)
    if not parts[0]:
        return None
    has_key = len(parts) == 2 and bool(parts[1])
    if has_key:
        return {"GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject", "HEAD": "HeadObject",
                "POST": "PostObject"}.get(method)
    if method == "GET":
        return "ListObjectsV2" if "list-type=2" in query else "ListObjects"
    return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "HEAD": "HeadBucket", "POST": "DeleteObjects"}.get(method)


class FaultProxy(CallRecorder):
    """Forwards to `upstream`; `faults` are consulted in order for each call. Calls are
    counted, held and logged by action (CallRecorder)."""

    def __init__(self, upstream: str):
        super().__init__()
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.faults: list[Fault] = []
        self.control_token: str | None = None  # when set, the control routes need it (see emulator.py)
        self.injected: Counter[str] = Counter()  # calls answered with a fault, by action
        self._lock = threading.Lock()
        self._server: QuietServer | None = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the fault proxy is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        """Listen on a free loopback port; return the endpoint URL."""
        self._server = QuietServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def clear(self) -> None:
        """Drop the faults and zero the counters."""
        with self._lock:
            self.faults.clear()
            self.injected.clear()
        self.clear_calls()

    def control(self, method: str, path: str) -> tuple[int, Any]:
        """Answer a control request: (HTTP status, JSON body or None)."""
        what = path.split("?", 1)[0].removeprefix(CONTROL).strip("/")
        if what == "calls" and method == "DELETE":
            with self._lock:
                self.injected.clear()
        answered = self.calls_control(method, what)
        return answered or (404, {"error": f"no control route {method} {path}"})

    def answered(self, action: str, received: float, status: int) -> None:
        """Note a call about to be answered; the listeners wake if it may change what runs."""
        self.call_answered(action, received, status, changes=not action.startswith(READ_ONLY))

    def decide(self, action: str) -> Fault | None:
        """The fault to answer `action` with, if one fires."""
        with self._lock:
            for fault in self.faults:
                if fault.fires(action):
                    self.injected[action] += 1
                    return fault
        return None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def action_of(headers: dict[str, str], body: bytes) -> tuple[str, bool]:
    """The API action of a request, and whether it speaks JSON (SSM) rather than the query
    protocol (EC2, STS)."""
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1], True
    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action", ["?"])[0], False


def error_body(fault: Fault, as_json: bool) -> tuple[bytes, str]:
    """The error document the service would send, and its content type."""
    if as_json:
        return (json.dumps({"__type": fault.code, "message": fault.message}).encode(),
                "application/x-amz-json-1.1")
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
           f"<Code>{fault.code}</Code><Message>{fault.message}</Message></Error></Errors>"
           f"<RequestID>cast-fault-proxy</RequestID></Response>")
    return xml.encode(), "text/xml;charset=UTF-8"


def s3_error_body(fault: Fault) -> tuple[bytes, str]:
    """S3's error document."""
    xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code>'
           f"<Message>{fault.message}</Message><RequestId>cast-fault-proxy</RequestId></Error>")
    return xml.encode(), "application/xml"


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # small writes would otherwise wait on delayed ACKs

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _relay(self) -> None:
            received = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith(CONTROL):
                refused = control_refused({k.lower(): v for k, v in self.headers.items()}, proxy.control_token)
                status, document = ((refused.status, refused.body) if refused is not None
                                    else proxy.control(self.command, self.path))
                payload = b"" if document is None else json.dumps(document).encode()
                self._answer(status, [("Content-Type", "application/json")], payload)
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            action, as_json = action_of(headers, body)
            rest = action == "?" and (s3_action(self.command, self.path) or "?") != "?"
            if rest:  # S3 speaks REST: the operation is the method and the path
                action = s3_action(self.command, self.path) or "?"
            api = not self.path.startswith(MOTO_CONTROL)  # moto's own reset and state: not AWS
            if api:
                proxy.call_received(action)
            fault = proxy.decide(action) if api else None
            if fault is not None and fault.drop == "request":
                proxy.answered(action, received, 0)
                self.close_connection = True
                return
            if fault is not None and fault.drop is None:
                payload, ctype = (s3_error_body(fault) if rest else error_body(fault, as_json))
                proxy.answered(action, received, fault.status)
                self._answer(fault.status, [("Content-Type", ctype)], payload)
                return
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                conn.connect()
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                reply = conn.getresponse()
                payload = reply.read()
                passed = [(k, v) for k, v in reply.getheaders()
                          if k.lower() not in ("transfer-encoding", "connection", "content-length")]
            finally:
                conn.close()
            if api:  # before the answer: a listener may act on what the call changed at once
                proxy.answered(action, received, reply.status)
            if fault is not None:  # drop == "reply": made, but the answer never comes
                self.close_connection = True
                return
            self._answer(reply.status, passed, payload)

        def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()  # the headers go out in one write, the body in the next
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _relay

    return Handler
