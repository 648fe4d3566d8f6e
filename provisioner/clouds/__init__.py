"""The clouds cast drives, behind one interface (base.Cloud). A cloud's module, and so its
SDK, is imported only when that cloud is used: `cast --help` imports none of them."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Cloud

MODULES = {
    "aws": "provisioner.clouds.aws",
    "gcp": "provisioner.clouds.gcp",
    "azure": "provisioner.clouds.azure",
    "digitalocean": "provisioner.clouds.digitalocean",
}

# Seconds each cloud's SDK_MODULES take to import (a quiet 2-core machine, see
# scripts/bench_perf.py --profile): commands open the cheapest first, so that its first API
# calls overlap the imports of the others.
IMPORT_COST_S = {"digitalocean": 0.12, "aws": 0.25, "azure": 0.55, "gcp": 0.8}


def import_cost_s(name: str) -> float:
    """About how long opening cloud `name` takes (its SDK's import); unknown clouds last."""
    return IMPORT_COST_S.get(name, 1.0)


def load_cloud(name: str) -> ModuleType:
    """The module of cloud `name`, with its SDK imported (in the calling thread: first imports
    of one package from several threads can deadlock). Raises KeyError for an unknown cloud."""
    module = importlib.import_module(MODULES[name])
    for sdk_module in getattr(module, "SDK_MODULES", ()):
        importlib.import_module(sdk_module)
    return module


def open_cloud(name: str, region: str, zone: str | None = None) -> Cloud:
    """The provider for cloud `name` in `region`, importing its module and its SDK (in the
    calling thread) on first use. Raises KeyError for an unknown cloud."""
    provider: type[Cloud] = load_cloud(name).Provider
    return provider(region=region, zone=zone)
