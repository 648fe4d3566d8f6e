"""What every cloud emulator shares: an HTTP server on 127.0.0.1, a control endpoint, faults
on demand, call counting, and the list of running VMs the sandbox boots as hosts.

Control endpoint (JSON), under /_emulator/ (when `control_token` is set, as the sandbox sets it,
only for requests carrying it in the X-Cast-Sandbox-Token header; 401 otherwise):
  GET    /_emulator/vms                  running VMs: [{id, name, public_ip, private_ip, state}] (never
                                         their user-data, which holds their host keys)
  POST   /_emulator/faults   {"kind": "throttle"|"unavailable"|"quota", "share": 0.3} or {"kind", "next": N};
                              optional "match": a substring of "METHOD PATH" the fault applies to
  DELETE /_emulator/faults               clear every fault
  GET    /_emulator/calls                {"total": N, "by_route": {"POST /x": n}}
  DELETE /_emulator/calls                reset the counters
  GET    /_emulator/log                  the requests since the counters were reset, in order:
                                        [{start, end, route, status}] (start: received, end:
                                        answered, both unix seconds), for timelines
  POST   /_emulator/reset                forget every resource (and faults, counters)
Each emulator renders a fault in its cloud's own error format (`fault_response`).

Cloud-like pacing: `api_delay_s` holds every API request (never a control request) that long
before it is answered, in the request's own handler thread, so concurrent requests are delayed
side by side, not one after another. `listeners` are called after every request that may
change what runs (any method but GET and HEAD): the sandbox wakes on them.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KINDS = ("throttle", "unavailable", "quota")


def path_regex(template: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """A regex for the request paths of an API path template such as `/v2/droplets/{id}`:
    each `{name}` matches one segment; a trailing slash is allowed. Use it with fullmatch."""
    parts = re.split(r"(\{[^}/]+\})", template)
    pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"{pattern}/?", re.IGNORECASE if ignore_case else 0)


@dataclass
class EmulatedVm:
    """A running VM as the sandbox needs it: where it is, and what cloud-init would get."""

    id: str
    name: str
    public_ip: str | None
    private_ip: str | None
    user_data: str  # decoded cloud-init text
    ssh_keys: list[str] = field(default_factory=list)
    state: str = "running"
    created_at: float = 0.0  # unix time the cloud accepted the create (0: unknown)


@dataclass
class Request:
    """One API request, parsed."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    kind: str
    share: float = 0.0
    remaining: int = 0
    match: str | None = None


class Faults:
    """Faults on demand: for a share of calls, or for the next N calls (that match)."""

    def __init__(self, seed: int = 7):
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._random = random.Random(seed)

    def add(self, kind: str, *, share: float = 0.0, next_n: int = 0, match: str | None = None) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self._lock:
            self._faults.append(_Fault(kind, share, next_n, match))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def draw(self, route: str, eligible: tuple[str, ...] = ("throttle", "unavailable")) -> str | None:
        """The fault to answer this request with, if any. `eligible` says which kinds this
        route can suffer (quota only applies where a VM is created)."""
        with self._lock:
            for f in self._faults:
                if f.kind not in eligible or (f.match and f.match not in route):
                    continue
                if f.remaining > 0:
                    f.remaining -= 1
                    return f.kind
                if f.share and self._random.random() < f.share:
                    return f.kind
            self._faults = [f for f in self._faults if f.remaining > 0 or f.share]
        return None


class AddressPool:
    """Hands out addresses from a network in order, never twice."""

    def __init__(self, network: str, first_host: int = 10):
        self._net = ipaddress.IPv4Network(network)
        self._hosts: Iterator[ipaddress.IPv4Address] = iter(list(self._net.hosts())[first_host - 1 :])
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            try:
                return str(next(self._hosts))
            except StopIteration:
                raise RuntimeError(f"address pool {self._net} is exhausted") from None


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server with daemon handler threads and a listen backlog for bursts:
    the default backlog of 5 drops connections a parallel client opens at once, and each
    dropped SYN costs that client a 1 s retransmit."""

    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request (a test ending, a timeout) is normal here: say
        nothing of it. Anything else is printed as before."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


LOG_MAX = 100_000  # requests kept for /_emulator/log


class CallRecorder:
    """What a server does with each cloud API call it serves, for the emulators and the AWS
    fault proxy alike: count it by route, hold it `api_delay_s` (in its own thread: others go
    on), log when it came and went, and wake the `listeners` when it may change what runs
    (before the answer: the caller may act on it at once). The control routes `calls` and
    `log` read and clear this."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_MAX)
        self.api_delay_s = 0.0
        self.pacing: Any = None  # a sandbox.pacing.CloudPacing: per-route delays instead of api_delay_s
        self.listeners: list[Callable[[], None]] = []
        self._calls_lock = threading.Lock()

    def call_received(self, route: str) -> None:
        with self._calls_lock:
            self.calls[route] += 1
        delay = self.pacing.delay_s(route) if self.pacing is not None else self.api_delay_s
        if delay > 0:
            time.sleep(delay)  # the API's own latency, in this call's thread only

    def call_answered(self, route: str, received: float, status: int, *, changes: bool) -> None:
        self.log.append({"start": received, "end": time.time(), "route": route, "status": status})
        if changes:
            for listener in list(self.listeners):
                listener()

    def clear_calls(self) -> None:
        with self._calls_lock:
            self.calls.clear()
            self.log.clear()

    def calls_control(self, method: str, what: str) -> tuple[int, Any] | None:
        """Answer GET/DELETE `calls` and GET `log` as (status, JSON body); None for other routes."""
        if what == "calls" and method == "GET":
            with self._calls_lock:
                return 200, {"total": sum(self.calls.values()), "by_route": dict(self.calls)}
        if what == "calls" and method == "DELETE":
            self.clear_calls()
            return 204, None
        if what == "log" and method == "GET":
            return 200, list(self.log)
        return None


CONTROL_TOKEN_HEADER = "x-cast-sandbox-token"
CONTROL_TOKEN_ENV = "CAST_SANDBOX_TOKEN"  # where the sandbox's env (`cast sandbox env`) holds it


def control_refused(headers: dict[str, str], token: str | None) -> Response | None:
    """The 401 for a control request without the sandbox's control token, or None when it may
    go on (it carries the token, or no token is set). `headers` have lower-case names."""
    import hmac

    if token is None or hmac.compare_digest(headers.get(CONTROL_TOKEN_HEADER, ""), token):
        return None
    return Response(401, {"error": f"the sandbox's control routes need its token in {CONTROL_TOKEN_HEADER}"})


class EmulatorServer(CallRecorder):
    """Base of the emulators: subclasses implement `handle` and `fault_response`, and keep
    their resources under `self.lock`. `control_token`, when set, guards the control routes."""

    cloud = "?"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__()
        self.control_token: str | None = None
        self.lock = threading.RLock()
        self.faults = Faults()
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the second waits for the
            # client's delayed ACK (~40 ms a request).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                emulator._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        self._httpd = QuietServer((host, port), Handler)
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"{self.cloud}-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what subclasses provide -------------------------------------------------------

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def fault_response(self, kind: str, request: Request) -> Response:
        raise NotImplementedError

    def running_vms(self) -> list[EmulatedVm]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget every resource. Subclasses extend it."""
        self.faults.clear()
        self.clear_calls()

    def route_of(self, request: Request) -> str:
        """A route name for counting: the method and the path with ids folded."""
        path = re.sub(r"/[0-9a-f]{8,}[-0-9a-f]*", "/{id}", request.path)
        return f"{request.method} {path}"

    def fault_kinds_for(self, request: Request) -> tuple[str, ...]:
        """Which faults may hit this request; subclasses add "quota" where a VM is created."""
        return ("throttle", "unavailable")

    # --- plumbing ----------------------------------------------------------------------

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        received = time.time()
        route = "?"
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        request = Request(
            method=h.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        try:
            if request.path.startswith("/_emulator/"):
                response = control_refused(request.headers, self.control_token) or self._control(request)
            else:
                route = self.route_of(request)
                self.call_received(route)
                fault = self.faults.draw(f"{request.method} {request.path}", self.fault_kinds_for(request))
                response = self.fault_response(fault, request) if fault else self.handle(request)
        except Exception as exc:  # an emulator bug must be loud in the tests, not a hang
            response = Response(500, {"error": {"code": 500, "message": f"emulator error: {exc!r}"}})
        if not request.path.startswith("/_emulator/"):
            self.call_answered(route, received, response.status, changes=request.method not in ("GET", "HEAD"))
        self._send(h, response)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, response: Response) -> None:
        if isinstance(response.body, bytes):
            payload = response.body
        elif response.body is None:
            payload = b""
        else:
            payload = json.dumps(response.body).encode()
        h.send_response(response.status)
        headers = {"Content-Type": "application/json", **response.headers}
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(payload)

    def _control(self, request: Request) -> Response:
        what = request.path.removeprefix("/_emulator/").strip("/")
        if what == "vms" and request.method == "GET":
            shown = ("id", "name", "public_ip", "private_ip", "state")
            return Response(200, [{k: v for k, v in asdict(vm).items() if k in shown} for vm in self.running_vms()])
        if what == "faults" and request.method == "POST":
            spec = request.json() or {}
            try:
                self.faults.add(
                    spec["kind"],
                    share=float(spec.get("share", 0.0)),
                    next_n=int(spec.get("next", 0)),
                    match=spec.get("match"),
                )
            except (KeyError, ValueError) as exc:
                return Response(400, {"error": str(exc)})
            return Response(204)
        if what == "faults" and request.method == "DELETE":
            self.faults.clear()
            return Response(204)
        answered = self.calls_control(request.method, what)
        if answered is not None:
            return Response(*answered)
        if what == "reset" and request.method == "POST":
            with self.lock:
                self.reset()
            return Response(204)
        return Response(404, {"error": f"no control route {request.method} {request.path}"})
