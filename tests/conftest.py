"""Fixtures shared by every test directory."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from provisioner.clouds.base import CloudTarget, VmRequest


@pytest.fixture
def command_log(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A command log (provisioner.logs) for the test: everything logged from here on goes to
    it. Call the fixture's value to end the log and get its text."""
    from provisioner import logs

    logs.start(tmp_path / "cast-home", "test", "test")

    def read() -> str:
        path = logs.finish()
        return path.read_text() if path is not None else ""

    yield read
    logs.finish()


# --- targets and VM requests, one way for every cloud's tests -----------------------------

PEERS = ("198.18.0.10", "198.18.4.10")  # the cluster's nodes: the only WireGuard sources


def cloud_target(region: str, zone: str | None, network_cidr: str, subnet_cidr: str, image: Mapping[str, str], *,
                 name: str = "demo", ssh_cidrs: Sequence[str] = ("0.0.0.0/0",)) -> CloudTarget:
    """A fresh cluster's target on one cloud (a new UUID each call), with the plan's firewall
    rules for both roles: SSH from `ssh_cidrs`, WireGuard from PEERS."""
    from provisioner.clouds.base import CloudTarget, ClusterRef
    from provisioner.plan import firewall_rules
    from provisioner.regions import ROLES

    return CloudTarget(
        cluster=ClusterRef(name, str(uuid.uuid4())), region=region, zone=zone, network_cidr=network_cidr,
        subnet_cidr=subnet_cidr,
        firewall={role: firewall_rules(role, list(ssh_cidrs), node_ips=PEERS) for role in ROLES},
        image=dict(image),
    )


def vm_requests(cloud: str, cluster: str, masters: int, workers: int, sizes: Mapping[str, str],
                user_data: Callable[[str, int], str] = lambda role, index: f"#cloud-config\n# {role}\n",
                ) -> list[VmRequest]:
    """Masters then workers, named as the plan names them (plan.node_name), with `sizes` by
    role and `user_data(role, index)` (by default one text per role, as the engine renders)."""
    from provisioner.clouds.base import VmRequest
    from provisioner.plan import node_name

    return [VmRequest(node_name(cluster, cloud, role, i), role, sizes[role], user_data(role, i))
            for role, count in (("master", masters), ("worker", workers)) for i in range(1, count + 1)]
