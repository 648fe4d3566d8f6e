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
