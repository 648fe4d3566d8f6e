"""The boot marker a node's cloud-init (or the sandbox) leaves, as cast reads it."""

import pytest

from provisioner.nodes.boot import parse_marker


@pytest.mark.parametrize(
    ("text", "version", "can_run", "unsupported", "reason"),
    [
        ("kubernetes=v1.36.2\n", "v1.36.2", True, False, ""),
        ("kubernetes=unavailable\nreason=packages not installed: containerd\n", "unavailable", False, False,
         "packages not installed: containerd"),
        ("kubernetes=unsupported\nreason=sandbox host: no kubelet\n", "unsupported", False, True,
         "sandbox host: no kubelet"),
        ("garbage\n", "unavailable", False, False, "the boot marker names no Kubernetes version"),
        ("kubernetes=\n", "unavailable", False, False, "the boot marker names no Kubernetes version"),
    ],
)
def test_marker_says_whether_the_node_can_run_kubernetes(text, version, can_run, unsupported, reason):
    marker = parse_marker(text)
    assert (marker.kubernetes, marker.can_run_kubernetes, marker.unsupported, marker.reason) == (
        version, can_run, unsupported, reason)


def test_a_reason_may_hold_equals_signs():
    assert parse_marker("kubernetes=unavailable\nreason=a=b failed\n").reason == "a=b failed"
