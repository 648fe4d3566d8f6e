"""Every attempt azure-core sends (long-running operation polls included) is one line of the
command log: the ARM operation, HTTP status, duration and x-ms-request-id."""

from __future__ import annotations

import re
from dataclasses import replace

from .conftest import make_target

API = re.compile(r"^\S+Z api   azure (GET|PUT|POST|DELETE|PATCH) (\S+) status=(\d{3}) ms=(\d+)(.*)$", re.M)


def test_each_api_call_is_logged_with_operation_status_and_duration(provider, emulator, command_log):
    emulator.clear_calls()
    target = make_target("logged")
    provider.ensure_network(target)  # its level watched in a list of each kind
    provider.ensure_subnet(replace(target, subnet_cidr="10.20.2.0/24"))  # a subnet's PUT, its operation polled
    total = sum(emulator.calls.values())
    text = command_log()
    calls = API.findall(text)
    assert len(calls) == total == text.count(" api   azure ")  # one line per request the emulator saw
    operations = {f"{method} {name}" for method, name, *_ in calls}
    assert {"PUT resourcegroups", "PUT Microsoft.Network/virtualNetworks", "GET Microsoft.Network/networkSecurityGroups",
            "GET Microsoft.Network/locations/operations"} <= operations
    assert all(status.startswith("2") or status == "404" for _, _, status, _, _ in calls)


def test_sdk_retries_of_throttled_calls_are_logged(provider, emulator, command_log):
    emulator.faults.add("throttle", next_n=2, match="virtualNetworks")
    provider.ensure_network(make_target("throttled"))
    text = command_log()
    assert len(re.findall(r" api   azure PUT Microsoft\.Network/virtualNetworks status=429 ", text)) == 2
    retries = re.findall(r" retry azure PUT Microsoft\.Network/virtualNetworks attempt=(\d) after status=429, "
                         r"waited ms=(\d+)", text)
    assert [attempt for attempt, _ in retries] == ["2", "3"]
    assert all(int(ms) >= 900 for _, ms in retries)  # the emulator's Retry-After of 1 s was waited
