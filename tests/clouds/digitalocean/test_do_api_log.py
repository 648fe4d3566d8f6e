"""Every request pydo sends is one line of the command log: method and path (ids left out),
HTTP status, duration; cast's own retries of 429s are lines of their own."""

from __future__ import annotations

import re

from .conftest import TOKEN, make_target

API = re.compile(r"^\S+Z api   digitalocean (GET|POST|PUT|PATCH|DELETE) (/v2/\S*) status=(\d{3}) ms=(\d+)", re.M)


def test_each_api_call_is_logged_with_operation_status_and_duration(emulator, provider, command_log):
    emulator.clear_calls()
    provider.ensure_network(make_target("logged"))
    total = sum(emulator.calls.values())
    text = command_log()
    calls = API.findall(text)
    assert len(calls) == total == text.count(" api   digitalocean ")
    assert ("GET", "/v2/vpcs") in {(m, p) for m, p, _, _ in calls}
    assert TOKEN not in text


def test_throttled_calls_are_logged_with_their_retries(emulator, provider, command_log):
    emulator.faults.add("throttle", next_n=2, match="GET /v2/vpcs")
    provider.ensure_network(make_target("throttled"))
    text = command_log()
    assert len(re.findall(r" api   digitalocean GET /v2/vpcs status=429 ", text)) == 2
    assert re.findall(r" retry digitalocean .*: attempt=(\d) in ms=\d+ after: digitalocean: .*HTTP 429", text) == ["2", "3"]
