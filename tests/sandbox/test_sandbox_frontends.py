"""The sandbox's load-balancer forwarder and DNS server on loopback (no root: loopback addresses
stand in for the namespaces' public ones): connections go round robin to the backends whose
HTTP health check passes, a backend that stops is marked down and gets no more, a new
configuration is picked up; the DNS server answers the zones' A and TXT records, NXDOMAIN
inside a zone, REFUSED outside."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from provisioner.sandbox.dns_server import Zones, resolver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Backend:
    """An HTTP server on address:port answering its name (and 200 on /healthz)."""

    def __init__(self, address: str, port: int, name: str):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"ok" if self.path == "/healthz" else name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer((address, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fetch(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as r:
            return r.read().decode()
    except OSError:
        return None


def until(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def forwarder(tmp_path: Path):
    node_port, listen = free_port(), free_port()
    backends = {name: Backend(address, node_port, name) for name, address in (("one", "127.0.0.2"),
                                                                            ("two", "127.0.0.3"))}
    config = tmp_path / "lb.json"
    document = {"address": "127.0.0.1", "forwards": [[listen, node_port]],
                "health": {"port": node_port, "path": "/healthz"}, "backends": ["127.0.0.2", "127.0.0.3"]}
    config.write_text(json.dumps(document))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    process = subprocess.Popen([sys.executable, "-m", "provisioner.sandbox.lb_forwarder", str(config)], env=env)
    try:
        yield listen, backends, config, document
    finally:
        process.kill()
        process.wait()
        for b in backends.values():
            b.stop()


def test_connections_go_round_robin_to_healthy_backends(forwarder):
    listen, _, _, _ = forwarder
    until(lambda: set(Counter(fetch(listen) for _ in range(6))) == {"one", "two"})
    seen = Counter(fetch(listen) for _ in range(20))
    assert seen == {"one": 10, "two": 10}


def test_a_stopped_backend_is_marked_down_and_gets_nothing(forwarder):
    listen, backends, config, _ = forwarder
    until(lambda: set(Counter(fetch(listen) for _ in range(6))) == {"one", "two"})
    backends["two"].stop()
    until(lambda: json.loads((config.parent / "lb.json.health").read_text())["down"] == ["127.0.0.3"])
    assert Counter(fetch(listen) for _ in range(10)) == {"one": 10}


def test_a_new_configuration_is_picked_up(forwarder):
    listen, _, config, document = forwarder
    until(lambda: set(Counter(fetch(listen) for _ in range(6))) == {"one", "two"})
    temporary = config.with_name("lb.json.new")
    temporary.write_text(json.dumps({**document, "backends": ["127.0.0.2"]}))
    os.replace(temporary, config)
    until(lambda: Counter(fetch(listen) for _ in range(6)) == {"one": 6})


def test_dns_answers_the_zones(tmp_path: Path):
    from dnslib import QTYPE, RCODE, DNSRecord
    from dnslib.server import DNSLogger, DNSServer

    config = tmp_path / "dns.json"
    config.write_text(json.dumps({"address": "127.0.0.1", "zones": [{"zone": "example.test", "records": [
        {"name": "app.example.test", "type": "A", "ttl": 60, "values": ["198.18.0.9", "198.18.1.9"]},
        {"name": "app.example.test", "type": "TXT", "ttl": 60, "values": ["heritage=cast,cast/owner=u"]}]}]}))
    zones = Zones(config)
    zones.reload()
    port = free_port()
    server = DNSServer(resolver(zones), address="127.0.0.1", port=port,
                       logger=DNSLogger(log="-request,-reply,-truncated,-data", prefix=False))
    server.start_thread()
    try:
        def ask(name: str, kind: str) -> DNSRecord:
            return DNSRecord.parse(DNSRecord.question(name, kind).send("127.0.0.1", port, timeout=3))

        a = ask("app.example.test", "A")
        assert sorted(str(r.rdata) for r in a.rr if r.rtype == QTYPE.A) == ["198.18.0.9", "198.18.1.9"]
        assert a.header.aa == 1
        txt = ask("app.example.test", "TXT")
        assert [str(r.rdata) for r in txt.rr] == ['"heritage=cast,cast/owner=u"']
        assert ask("nothing.example.test", "A").header.rcode == RCODE.NXDOMAIN
        assert ask("example.org", "A").header.rcode == RCODE.REFUSED
    finally:
        server.stop()
