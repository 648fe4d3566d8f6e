"""The engine's FakeCloud (tests/fakes/cloud.py) under the contract: in memory, nothing to
start; a call changed something when the fake's account differs after it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from provisioner.clouds.base import CloudTarget, VmRequest

from ...conftest import cloud_target
from ...fakes.cloud import FakeCloud, FakeWorld
from .backend import Backend


class Fake(Backend):
    name = "fake"
    sizes = {"master": "medium", "worker": "small"}

    @contextlib.contextmanager
    def start(self) -> Iterator[None]:
        self.world = FakeWorld(sizes={"small", "medium"})
        self._seen = self._snapshot()
        yield

    def _snapshot(self) -> str:
        with self.world.lock:
            return repr(sorted((name, repr(account)) for name, account in self.world.accounts.items()))

    def changes(self) -> list[str]:
        now = self._snapshot()
        changed, self._seen = now != self._seen, now
        return ["the fake's account changed"] if changed else []

    def reset(self) -> None:
        super().reset()
        self._seen = self._snapshot()

    def provider(self) -> FakeCloud:
        return self.world.open("fake", "fake-region-1")

    def target(self, name: str) -> CloudTarget:
        return cloud_target("fake-region-1", None, "10.50.0.0/16", "10.50.1.0/24", {"image": "fake-os"}, name=name)

    def vm_requests(self, target: CloudTarget, masters: int = 1, workers: int = 1) -> list[VmRequest]:
        return [VmRequest(f"{target.cluster.name}-fake-{role[0]}{i}", role, self.sizes[role], "#cloud-config\n")
                for role, count in (("master", masters), ("worker", workers)) for i in range(1, count + 1)]

    def add_foreign_vm(self, provider: Any, target: CloudTarget) -> Callable[[], None]:
        vm = self.world.run_vm("fake", name="intruder", cluster_uuid=None, network=target.cluster.uuid)

        def remove() -> None:
            with self.world.lock:
                self.world.account("fake").vms.remove(vm)

        return remove
