"""The contract suite runs once per implementation of clouds.base.Cloud. One more
implementation is one more line in IMPLEMENTATIONS: "module:Class" of a backend.Backend
subclass, which says how to bring its cloud up (nothing, for a fake), make providers and
targets, record the calls that change something (Backend.watch on a sandbox CallRecorder,
Backend.record otherwise) and run a VM without the cluster's UUID in its network out of band.
test_inventory's TABLES holds each cloud's inventory; an implementation without one skips it."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from .backend import Backend

IMPLEMENTATIONS = [
    "tests.clouds.contract.aws:Aws",
    "tests.clouds.contract.gcp:Gcp",
    "tests.clouds.contract.azure:Azure",
    "tests.clouds.contract.digitalocean:DigitalOcean",
    "tests.clouds.contract.fake:Fake",  # the engine tests' FakeCloud keeps the same promises
]


def _load(path: str) -> Backend:
    module, name = path.split(":")
    backend: Backend = getattr(importlib.import_module(module), name)()
    return backend


@pytest.fixture(scope="module", params=IMPLEMENTATIONS, ids=lambda path: path.rsplit(":", 1)[0].rsplit(".", 1)[1])
def backend_up(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The implementation's cloud, up for the module (pytest groups the tests by it)."""
    backend = _load(request.param)
    with backend.start():
        yield backend


@pytest.fixture
def backend(backend_up: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    """The implementation, with its environment set and its counters cleared; its own
    invariants checked afterwards."""
    for var in backend_up.unset:
        monkeypatch.delenv(var, raising=False)
    for var, value in backend_up.env.items():
        monkeypatch.setenv(var, value)
    backend_up.reset()
    yield backend_up
    backend_up.check()
