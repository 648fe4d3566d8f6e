"""What the contract suite needs of one implementation of clouds.base.Cloud: a way to start
its cloud (an emulator on loopback, or nothing for a fake), providers and targets on it, a
record of the calls that changed something, and out-of-band moves a user or another tool
would make (a VM without the cluster's UUID in its network)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from provisioner.clouds.base import Cloud, CloudTarget, Settings, VmRequest
from provisioner.keys import new_ed25519

from ...conftest import vm_requests

# Short waits: every emulator answers in milliseconds.
FAST = Settings(vm_timeout_s=30.0, delete_timeout_s=30.0, stall_budget_s=10.0, workers=8,
                poll_initial_s=0.02, poll_max_s=0.2)


class Backend(ABC):
    """One implementation under the contract. `start()` is a context manager that brings its
    cloud up for a test module; the rest is used per test."""

    name = ""  # the cloud's name, as the registry and node names know it
    sizes: Mapping[str, str] = {}  # role -> a size the cloud knows
    unknown_size = "no-such-size"  # a size the cloud refuses
    running = "running"  # the cloud's own word for a running VM (Vm.state)
    env: Mapping[str, str] = {}  # set for each test
    unset: tuple[str, ...] = ()  # removed for each test

    def __init__(self) -> None:
        self._changes: list[str] = []
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def start(self) -> AbstractContextManager[Any]:
        """Bring the cloud up (and down at the end of the `with`)."""

    @abstractmethod
    def provider(self) -> Cloud:
        """A new provider on the cloud, with FAST settings."""

    @abstractmethod
    def target(self, name: str) -> CloudTarget:
        """A fresh cluster's target (a new UUID)."""

    @abstractmethod
    def add_foreign_vm(self, provider: Cloud, target: CloudTarget) -> Callable[[], None]:
        """Run a VM without the cluster's UUID inside the cluster's network, out of band (the
        cloud's SDK or raw API, never the provider); return what removes it again."""

    def public_key(self, target: CloudTarget) -> str:
        """The cluster's SSH public key (each cluster has its own, made at test time)."""
        with self._lock:
            if target.cluster.uuid not in self._keys:
                self._keys[target.cluster.uuid] = new_ed25519(f"cast-{target.cluster.name}").public
            return self._keys[target.cluster.uuid]

    def vm_requests(self, target: CloudTarget, masters: int = 1, workers: int = 1) -> list[VmRequest]:
        """Masters then workers, named as the plan names them (a cloud of the registry; an
        implementation under another name overrides this)."""
        return vm_requests(self.name, target.cluster.name, masters, workers, self.sizes)

    def reset(self) -> None:
        """Before each test: faults and counters cleared."""
        with self._lock:
            self._changes.clear()

    def check(self) -> None:
        """After each test: the cloud's own invariants (no request broke the API's description).
        None by default."""
        return None

    # --- the calls that changed something ----------------------------------------------

    def record(self, what: str) -> None:
        """Note one call that changed something (an implementation without a CallRecorder,
        such as a fake, calls this from its own hooks)."""
        with self._lock:
            self._changes.append(what)

    def watch(self, recorder: Any) -> None:
        """Record every call `recorder` (a sandbox CallRecorder) says may change something."""
        recorder.listeners.append(lambda: self.record(recorder.log[-1]["route"] if recorder.log else "?"))

    def changes(self) -> list[str]:
        """The calls that changed something since the last call of this (or reset)."""
        with self._lock:
            found = list(self._changes)
            self._changes.clear()
        return found

