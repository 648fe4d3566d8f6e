"""Every request google-cloud-compute sends is one line of the command log, named as the
compute v1 discovery document names its method (the emulator counts by those names)."""

from __future__ import annotations

import re
from collections import Counter

from provisioner.clouds.gcp import Provider
from provisioner.sandbox.gcp_emulator import GcpEmulator

from .conftest import build, make_target, vm_requests

API = re.compile(r"^\S+Z api   gcp (\S+) status=(\d{3}) ms=(\d+)$", re.M)


def test_each_api_call_is_logged_with_its_method_status_and_duration(provider: Provider, calls, command_log) -> None:
    target = make_target()
    calls()
    build(provider, target, vm_requests("logged", 1, 1))
    provider.teardown(target)
    counts = calls()
    text = command_log()
    logged = Counter(m.group(1) for m in API.finditer(text))
    assert logged == Counter(counts)  # one line per request, each named as the API names it
    assert {"compute.networks.insert", "compute.instances.insert", "compute.instances.delete"} <= set(logged)
    assert all(m.group(2) in ("200", "404") for m in API.finditer(text))


def test_throttled_calls_and_their_retries_are_logged(provider: Provider, emulator: GcpEmulator, command_log) -> None:
    emulator.faults.add("throttle", next_n=2, match="/global/networks")
    provider.ensure_network(make_target())
    text = command_log()
    assert len(re.findall(r" api   gcp compute\.networks\.\w+ status=429 ms=\d+$", text, re.M)) == 2
    retries = re.findall(r" retry gcp .*: attempt=(\d) in ms=\d+ after: gcp: .*Rate Limit Exceeded", text)
    assert retries == ["2", "3"]
