"""The clouds cast drives, behind one interface (base.Cloud), and the one list of them.

CLOUDS is the registry the rest of cast reads (the CLI's choices, the region map, the
tables): adding a cloud is one entry here and its module beside this file. A cloud's module,
and so its SDK, is imported only when that cloud is used: `cast --help` imports none of them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Cloud


@dataclass(frozen=True)
class CloudInfo:
    """One cloud as cast names it: `name` in specs, state and commands, `display` for people,
    `module` its provider, `short` the part of node names that says the cloud (a DNS label)."""

    name: str
    display: str
    module: str
    short: str


CLOUDS: tuple[CloudInfo, ...] = (
    CloudInfo("aws", "AWS", "provisioner.clouds.aws", "aws"),
    CloudInfo("gcp", "GCP", "provisioner.clouds.gcp", "gcp"),
    CloudInfo("azure", "Azure", "provisioner.clouds.azure", "az"),
    CloudInfo("digitalocean", "DigitalOcean", "provisioner.clouds.digitalocean", "do"),
)
NAMES: tuple[str, ...] = tuple(c.name for c in CLOUDS)  # in the order cast lists clouds
MODULES = {c.name: c.module for c in CLOUDS}
_BY_NAME = {c.name: c for c in CLOUDS}


def info(name: str) -> CloudInfo:
    """The registry entry of cloud `name`. Raises KeyError for an unknown cloud."""
    return _BY_NAME[name]


def provider_class(name: str) -> type[Cloud]:
    """The provider class of cloud `name`, for what cast knows of a cloud before opening it
    (base.Cloud's class attributes): its module is imported, not its SDK. Raises KeyError for
    an unknown cloud."""
    provider: type[Cloud] = importlib.import_module(MODULES[name]).Provider
    return provider

# Seconds each cloud's SDK_MODULES take to import (a quiet 2-core machine, see
# scripts/bench_perf.py --profile): commands open the cheapest first, so that its first API
# calls overlap the imports of the others.
IMPORT_COST_S = {"digitalocean": 0.12, "aws": 0.25, "azure": 0.55, "gcp": 0.8}


def import_cost_s(name: str) -> float:
    """About how long opening cloud `name` takes (its SDK's import); unknown clouds last."""
    return IMPORT_COST_S.get(name, 1.0)


def load_cloud(name: str, *, complete: bool = True) -> ModuleType:
    """The module of cloud `name`, with its SDK imported (in the calling thread: first imports
    of one package from several threads can deadlock); without `complete`, only what its
    credential check needs (SDK_MODULES; the rest, SDK_AFTER_CHECK, is Cloud.finish_opening's).
    Raises KeyError for an unknown cloud."""
    module = importlib.import_module(MODULES[name])
    prepare = getattr(module, "prepare_sdk", None)  # before the SDK's first import (gcp: gcp_sdk)
    if prepare is not None:
        prepare()
    for sdk_module in (*getattr(module, "SDK_MODULES", ()), *(getattr(module, "SDK_AFTER_CHECK", ()) if complete
                                                              else ())):
        importlib.import_module(sdk_module)
    return module


def open_cloud(name: str, region: str, zone: str | None = None, *, complete: bool = True) -> Cloud:
    """The provider for cloud `name` in `region`, importing its module and its SDK (in the
    calling thread) on first use; without `complete`, only what its credential check needs
    (the caller then calls its finish_opening). Raises KeyError for an unknown cloud."""
    provider: type[Cloud] = load_cloud(name, complete=complete).Provider
    return provider(region=region, zone=zone)


def open_for_check(name: str, region: str, zone: str | None = None) -> Cloud:
    """open_cloud without what comes after the credential check (the engine's way: it calls
    finish_opening while the checks run)."""
    return open_cloud(name, region, zone, complete=False)
