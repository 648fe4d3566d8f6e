"""The one leak rule every provider applies (provisioner/clouds/leaks.py)."""

from __future__ import annotations

import pytest

from provisioner.clouds.leaks import at_most_one, one_per_node
from provisioner.errors import ExcessResourcesError


def test_none_or_one_is_fine_and_two_are_a_leak_naming_both() -> None:
    assert at_most_one("test", "VPC", [], str) is None
    assert at_most_one("test", "VPC", ["vpc-1"], str) == "vpc-1"
    with pytest.raises(ExcessResourcesError) as leaked:
        at_most_one("test", "VPC", ["vpc-2", "vpc-1"], str)
    assert "vpc-1, vpc-2" in str(leaked.value) and str(leaked.value).startswith("test: VPC: 2 carry")


def test_one_per_node_keys_by_node_and_names_the_twins() -> None:
    vms = [("demo-m1", "i-1"), ("demo-w1", "i-2"), (None, "i-3")]
    assert one_per_node("test", "VM", vms, lambda v: v[0], lambda v: v[1]) == {
        "demo-m1": ("demo-m1", "i-1"), "demo-w1": ("demo-w1", "i-2")}  # no node name: not a node's

    with pytest.raises(ExcessResourcesError) as leaked:
        one_per_node("test", "VM", [*vms, ("demo-w1", "i-4")], lambda v: v[0], lambda v: v[1])
    message = str(leaked.value)
    assert "demo-w1: i-2, i-4" in message and "demo-m1" not in message and leaked.value.exit_code != 0
