"""Azure's creation steps as the engine runs them (each after the steps it needs): the public
IPs go out with the VNet and the security groups, the VM requests are made once, early, and a
re-run or a dry run makes nothing."""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.clouds.azure import Provider
from provisioner.clouds.base import StepInputs, VmRequest

from .conftest import PUBLIC_KEY, make_target, vm_requests


def _run(provider: Provider, target, inputs: StepInputs) -> dict:
    """Every creation step in declaration order (it respects the needs)."""
    done: dict = {}
    for step in provider.creation_steps():
        assert all(n in done for n in step.needs)
        done[step.name] = step.ensure(target, inputs)
    return done


def _inputs(target, nodes: int, asked: list[Sequence[str]], **kw) -> StepInputs:
    made = vm_requests(target, 1, nodes - 1)

    def requests(names: Sequence[str]) -> list[VmRequest]:
        asked.append(tuple(names))
        return [r for r in made if r.name in names]

    return StepInputs(public_key=PUBLIC_KEY, nodes=tuple(r.name for r in made), requests=requests, **kw)


def _puts(emulator, kind: str) -> int:
    return sum(n for route, n in emulator.calls.items() if route.startswith("PUT ") and f"/{kind}/" in route)


def test_the_public_ips_go_out_with_the_network_and_the_vms_step_begins_with_the_nics(provider, emulator):
    target = make_target("steps")
    asked: list[Sequence[str]] = []
    inputs = _inputs(target, 4, asked)
    emulator.clear_calls()

    done = _run(provider, target, inputs)

    assert [vm.state for vm in done["vms"].vms] == ["running"] * 4
    assert asked == [inputs.nodes]  # the user-data made once, for every node
    assert _puts(emulator, "publicIPAddresses") == 4 and _puts(emulator, "networkInterfaces") == 4
    log = sorted(emulator.log, key=lambda e: e["start"])
    first = {}
    for i, entry in enumerate(log):
        kind = next((k for k in ("virtualNetworks", "networkSecurityGroups", "publicIPAddresses", "networkInterfaces",
                                 "resources") if entry["route"].split("?")[0].endswith(k) or f"/{k}/" in entry["route"]),
                    None)
        first.setdefault((entry["route"].split(" ")[0], kind), i)
    # one level: the VNet, the security groups and the public IPs all sent before the first look
    look = min(first[("GET", k)] for k in ("virtualNetworks", "networkSecurityGroups", "publicIPAddresses")
               if ("GET", k) in first)
    assert max(first[("PUT", k)] for k in ("virtualNetworks", "networkSecurityGroups", "publicIPAddresses")) < look
    assert first[("PUT", "networkInterfaces")] > look
    assert sum(n for route, n in emulator.calls.items() if "/operations/" in route) == 0  # no operation polled

    emulator.clear_calls()
    again = _run(Provider("eastus", "1"), target, _inputs(target, 4, []))  # a re-run: a later command
    assert [vm.state for vm in again["vms"].vms] == ["running"] * 4
    assert not [route for route in emulator.calls if route.startswith("PUT ")]
    provider.teardown(target)


def test_a_dry_run_makes_no_request_and_nothing(provider, emulator):
    target = make_target("stepsdry")
    asked: list[Sequence[str]] = []
    emulator.clear_calls()

    done = _run(provider, target, _inputs(target, 2, asked, dry_run=True))

    assert asked == []
    assert not [route for route in emulator.calls if not route.startswith("GET ")]
    assert any("create resource group" in a for a in done["network"].actions)
