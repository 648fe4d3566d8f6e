"""A sandbox load balancer, made real: one process inside the balancer's own network namespace
(its public address on its cloud's bridge), listening on each forward's TCP port and relaying
every connection to a healthy backend's NodePort, round robin. Each backend is health-checked
over HTTP (GET path on the health port, 200 = healthy) every INTERVAL_S: down after
UNHEALTHY_AFTER failures in a row, up again after HEALTHY_AFTER successes (a new backend is
up after its first success, as a cloud's "initial" state). No healthy backend: the connection
is closed at once.

The supervisor writes the balancer's configuration to a JSON file and rewrites it (atomically)
when the cloud's API changes it; this process reads it again when it changes:
  {"address": "198.18.0.9", "forwards": [[80, 30080], [443, 30443]],
   "health": {"port": 30080, "path": "/healthz"}, "backends": ["198.18.0.2", ...]}
and writes what its checks found beside it, `<config>.health` ({"up": [...], "down": [...]}).

`python -m provisioner.sandbox.lb_forwarder CONFIG` (run by the supervisor in the namespace).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

INTERVAL_S = 0.5
CHECK_TIMEOUT_S = 1.0
UNHEALTHY_AFTER = 2
HEALTHY_AFTER = 2
CONNECT_TIMEOUT_S = 2.0
RELOAD_S = 0.2


def healthy(address: str, port: int, path: str) -> bool:
    """One HTTP health check: GET path on address:port answers 200 within CHECK_TIMEOUT_S."""
    conn = http.client.HTTPConnection(address, port, timeout=CHECK_TIMEOUT_S)
    try:
        conn.request("GET", path, headers={"User-Agent": "cast-sandbox-health-check"})
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class Forwarder:
    """The balancer of one configuration file."""

    def __init__(self, config: Path):
        self.config_path = config
        self.health_path = config.with_name(config.name + ".health")
        self.lock = threading.Lock()
        self.config: dict[str, Any] = {}
        self.state: dict[str, tuple[bool, int]] = {}  # backend -> (up, checks in a row against it)
        self.listeners: dict[int, socket.socket] = {}  # port -> listening socket
        self.turn = itertools.count()
        self.mtime = 0.0

    # --- configuration -------------------------------------------------------------------

    def reload(self) -> None:
        try:
            mtime = self.config_path.stat().st_mtime
            if mtime == self.mtime:
                return
            config = json.loads(self.config_path.read_text())
        except (OSError, ValueError):
            return
        self.mtime = mtime
        with self.lock:
            self.config = config
            backends = list(config.get("backends", []))
            self.state = {b: self.state.get(b, (False, -1)) for b in backends}  # -1: never checked
            forwards = {int(listen): int(node_port) for listen, node_port in config.get("forwards", [])}
        for port in list(self.listeners):
            if port not in forwards:
                self.listeners.pop(port).close()
        for port in forwards:
            if port not in self.listeners:
                self._listen(config["address"], port)

    def _listen(self, address: str, port: int) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((address, port))
        server.listen(128)
        self.listeners[port] = server
        threading.Thread(target=self._accept, args=(server, port), daemon=True).start()

    # --- health checks -------------------------------------------------------------------

    def check_all(self) -> None:
        with self.lock:
            backends = list(self.state)
            health = self.config.get("health", {})
        port, path = int(health.get("port", 0)), str(health.get("path", "/"))
        results = {}
        threads = []
        for backend in backends:
            def one(b: str = backend) -> None:
                results[b] = healthy(b, port, path)
            thread = threading.Thread(target=one, daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        with self.lock:
            for backend, ok in results.items():
                if backend not in self.state:
                    continue
                up, streak = self.state[backend]
                if streak < 0:  # the first check decides
                    self.state[backend] = (ok, 1)
                elif ok == up:
                    self.state[backend] = (up, 0)
                else:
                    streak += 1
                    needed = HEALTHY_AFTER if ok else UNHEALTHY_AFTER
                    self.state[backend] = (ok, 0) if streak >= needed else (up, streak)
            report = {"up": sorted(b for b, (u, _) in self.state.items() if u),
                      "down": sorted(b for b, (u, _) in self.state.items() if not u)}
        temporary = self.health_path.with_name(self.health_path.name + ".new")
        temporary.write_text(json.dumps(report))
        os.replace(temporary, self.health_path)

    # --- relaying ------------------------------------------------------------------------

    def pick(self) -> str | None:
        with self.lock:
            up = [b for b, (u, _) in self.state.items() if u]
        return up[next(self.turn) % len(up)] if up else None

    def _accept(self, server: socket.socket, port: int) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # closed: the forward went away
            threading.Thread(target=self._relay, args=(client, port), daemon=True).start()

    def _relay(self, client: socket.socket, port: int) -> None:
        with self.lock:
            node_port = next((int(n) for listen, n in self.config.get("forwards", []) if int(listen) == port), None)
        backend = self.pick()
        if backend is None or node_port is None:
            client.close()
            return
        try:
            upstream = socket.create_connection((backend, node_port), timeout=CONNECT_TIMEOUT_S)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join()
        client.close()
        upstream.close()

    def serve(self) -> None:
        next_check = 0.0
        while True:
            self.reload()
            if time.monotonic() >= next_check:
                self.check_all()
                next_check = time.monotonic() + INTERVAL_S
            time.sleep(RELOAD_S)  # a poll of the configuration file, not a wait for an event


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy source to sink until source ends, then end sink's sending side."""
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            source.shutdown(socket.SHUT_RD)


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        sys.exit("usage: python -m provisioner.sandbox.lb_forwarder CONFIG")
    Forwarder(Path(args[0])).serve()


if __name__ == "__main__":
    main()
