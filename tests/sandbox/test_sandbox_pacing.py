"""The sandbox slowed to cloud-like pacing: an API delay that holds every request side by side
(never one after another), the AWS fault proxy doing the same and counting, and VM hosts that
answer SSH a boot delay after the VM's create, not after the supervisor noticed the VM. No
root needed: the supervisor is tested with a recording stand-in for its hosts."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provisioner.sandbox.aws_fault_proxy import FaultProxy
from provisioner.sandbox.do_emulator import DigitalOceanEmulator
from provisioner.sandbox.emulator import EmulatedVm
from provisioner.sandbox.supervisor import Sandbox

DELAY_S = 0.3


def _call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[float, Any]:
    """(seconds the call took, its answer: JSON decoded, else the text, or None when empty)."""
    request = urllib.request.Request(url, data=body, method=method, headers={"Authorization": "Bearer test"})
    start = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        as_json = "json" in response.headers.get("Content-Type", "")
    return time.monotonic() - start, (json.loads(raw) if as_json else raw.decode()) if raw else None


def _at_once(calls: list[Any]) -> tuple[float, list[float]]:
    """Run the calls together: (wall seconds, each one's seconds)."""
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        took = [f.result()[0] for f in [pool.submit(c) for c in calls]]
    return time.monotonic() - start, took


@pytest.fixture(scope="module")
def emulator() -> Iterator[DigitalOceanEmulator]:
    with DigitalOceanEmulator(checker=False) as made:
        assert isinstance(made, DigitalOceanEmulator)
        yield made


def test_the_api_delay_holds_every_request_side_by_side_and_spares_control_calls(emulator):
    emulator.api_delay_s = DELAY_S
    try:
        _call(f"{emulator.url}/_emulator/calls", "DELETE")
        wall, took = _at_once([lambda: _call(f"{emulator.url}/v2/account")] * 4)
        assert min(took) >= DELAY_S
        assert wall < 2 * DELAY_S  # four at once: not 4 x the delay
        seconds, counted = _call(f"{emulator.url}/_emulator/calls")
        assert seconds < DELAY_S
        assert counted["total"] == 4
        _, log = _call(f"{emulator.url}/_emulator/log")
        assert len(log) == 4 and all(entry["end"] - entry["start"] >= DELAY_S for entry in log)
    finally:
        emulator.api_delay_s = 0.0


def test_only_calls_that_may_change_what_runs_wake_the_listeners(emulator):
    woken: list[float] = []
    emulator.listeners.append(lambda: woken.append(time.monotonic()))
    try:
        _call(f"{emulator.url}/v2/account")
        assert woken == []
        _call(f"{emulator.url}/v2/tags", "POST", json.dumps({"name": "pacing"}).encode())
        assert len(woken) == 1
    finally:
        emulator.listeners.clear()


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = b"<Response/>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def test_the_aws_proxy_delays_side_by_side_counts_by_action_and_wakes_on_launches():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    woken: list[str] = []
    try:
        with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}") as proxy:
            proxy.api_delay_s = DELAY_S
            proxy.listeners.append(lambda: woken.append("woken"))
            describe = lambda: _call(proxy.endpoint, "POST", b"Action=DescribeVpcs&Version=2016-11-15")  # noqa: E731
            wall, took = _at_once([describe] * 4)
            assert min(took) >= DELAY_S and wall < 2 * DELAY_S
            assert woken == []
            _call(proxy.endpoint, "POST", b"Action=RunInstances&Version=2016-11-15")
            assert woken == ["woken"]
            seconds, counted = _call(f"{proxy.endpoint}/_emulator/calls")
            assert seconds < DELAY_S
            assert counted == {"total": 5, "by_route": {"DescribeVpcs": 4, "RunInstances": 1}}
            _call(f"{proxy.endpoint}/_emulator/calls", "DELETE")
            assert _call(f"{proxy.endpoint}/_emulator/log")[1] == []
    finally:
        upstream.shutdown()
        upstream.server_close()


class _RecordingHosts:
    """Stands in for LocalHosts: records when each host was wired, served and removed."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []

    def add_host(self, name: str, group: str, public_ip: str, host_key: str, authorized_key: str,
                 ssh_port: int = 22, *, serve: bool = True) -> None:
        self.events.append(("wired", name, time.time()))
        if serve:
            self.events.append(("served", name, time.time()))

    def serve_ssh(self, name: str) -> None:
        self.events.append(("served", name, time.time()))

    def remove_host(self, name: str) -> None:
        self.events.append(("removed", name, time.time()))

    def close(self) -> None:
        pass

    def when(self, what: str, name: str) -> float | None:
        return next((t for w, n, t in self.events if w == what and n == name), None)


USER_DATA = ("#cloud-config\nssh_keys:\n  ed25519_private: host-key\n  ed25519_public: ssh-ed25519 AAAA host\n"
             "ssh_authorized_keys: [ssh-ed25519 AAAA cluster]\n")


def test_a_host_answers_ssh_the_boot_delay_after_its_vm_was_created(tmp_path: Path):
    sandbox = Sandbox(tmp_path, boot_delay_s=0.8)
    hosts = sandbox.hosts = _RecordingHosts()
    created = time.time() - 0.3  # the VM was made a while before the supervisor sees it
    vms = {"fresh": ("gcp", EmulatedVm("1", "fresh", "198.51.100.10", "10.0.0.2", USER_DATA, created_at=created)),
           "old": ("aws", EmulatedVm("2", "old", "198.18.0.10", "10.10.0.2", USER_DATA, created_at=created - 60))}
    sandbox.running = lambda: dict(vms)  # type: ignore[method-assign]
    stop = threading.Event()
    loop = threading.Thread(target=sandbox.serve, args=(stop,))
    loop.start()
    try:
        deadline = time.monotonic() + 5
        while hosts.when("served", "fresh") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        served, wired = hosts.when("served", "fresh"), hosts.when("wired", "fresh")
        assert served is not None and wired is not None
        assert wired - created < 0.6  # wired as soon as seen: its address answers early
        assert 0.8 <= served - created < 0.95  # sshd at creation + boot delay, not a poll later
        old_served = hosts.when("served", "old")
        assert old_served is not None and old_served < served  # long due: served at once
        del vms["fresh"]
        sandbox.wake()
        while hosts.when("removed", "fresh") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hosts.when("removed", "fresh") is not None
        assert hosts.when("removed", "old") is None
    finally:
        stop.set()
        sandbox.wake()
        loop.join(timeout=5)
        sandbox.stop()


def test_a_cloud_like_pacing_holds_reads_and_writes_each_their_own_time(emulator):
    from provisioner.sandbox.pacing import CloudPacing

    emulator.pacing = CloudPacing(read_s=0.05, write_s=0.4, boot_s=0.0)
    try:
        read, _ = _call(f"{emulator.url}/v2/account")
        write, _ = _call(f"{emulator.url}/v2/tags", "POST", json.dumps({"name": "paced"}).encode())
    finally:
        emulator.pacing = None
    assert 0.05 <= read < 0.4 <= write


def test_the_cloud_profile_is_the_measured_figures_compressed_and_bad_names_are_refused():
    from provisioner.errors import InputError
    from provisioner.sandbox.pacing import CLOUD_LIKE, parse

    paced = parse("cloud:10")
    assert paced.compression == 10
    aws = paced.of("aws")
    assert aws.delay_s("RunInstances") == pytest.approx(CLOUD_LIKE["aws"].routes["RunInstances"] / 10)
    assert aws.delay_s("DescribeVpcs") == pytest.approx(CLOUD_LIKE["aws"].read_s / 10)
    assert aws.delay_s("CreateVpc") == pytest.approx(CLOUD_LIKE["aws"].write_s / 10)
    gcp = paced.of("gcp")
    assert gcp.delay_s("compute.instances.aggregatedList") < gcp.delay_s("compute.instances.insert")
    assert paced.of("azure").boot_s == pytest.approx(CLOUD_LIKE["azure"].boot_s / 10)
    flat = parse("flat", 0.1, 3.0)
    assert {c.read_s for c in flat.clouds.values()} == {0.1} and {c.boot_s for c in flat.clouds.values()} == {3.0}
    for bad in ("fast", "cloud:0.5", "cloud:x", "flat:2"):
        with pytest.raises(InputError):
            parse(bad)
