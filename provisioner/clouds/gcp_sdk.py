"""google-cloud-compute without its package root: the service modules cast calls, and nothing else.

`google.cloud.compute_v1/__init__.py` imports every one of the package's ~100 service clients
(it declares them `__lazy_modules__`, PEP 810, which only Python 3.15 honours): about 1.5 s on a
quiet 2-core machine, against about 0.6 s for the seven services cast uses (most of that is
`types.compute`, the message classes every client needs). `install()` registers the package
as a module whose body never runs; its names resolve on first use, as the real root would
give them: `XxxClient` from `services.xxx`, every other name from `types` (the messages).
Submodules import as usual (the module has the package's `__path__`).

The `types` package is registered the same way (its `__init__` imports every message by
name), its path led by gcp_types' directory: its `compute` holds only the messages of the
services cast calls (gcp_types.SERVICES), about 0.4 s less than the SDK's own. Where that
file cannot be made (a read-only cache, an SDK laid out otherwise), the SDK's own is used.

Call `install()` before the first `import google.cloud.compute_v1` of the process (the cloud
registry imports SDK_MODULES in order, and the first one installs it). Where the real root
was imported already, it is left alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from . import gcp_types

PACKAGE = "google.cloud.compute_v1"
# The services the provider calls (gcp.py, gcp_api.py, doctor): importing each here, in the
# registry's thread, means no client's first use in a worker thread imports anything. (The
# load balancers' services, gcp_types.SERVICES, are imported on first use.)
SERVICES = ("networks", "subnetworks", "firewalls", "instances", "global_operations", "region_operations",
            "zone_operations")
MODULES = (f"{PACKAGE}.types", *(f"{PACKAGE}.services.{s}" for s in SERVICES))
FOR_CHECK = (f"{PACKAGE}.types", f"{PACKAGE}.services.networks")  # what the credential check calls
_installed = threading.Lock()
_trimmed: set[str] = set()  # the services `types` holds the messages of, once it is trimmed (gcp_types)


def install(services: tuple[str, ...] = gcp_types.SERVICES) -> ModuleType:
    """Register `google.cloud.compute_v1` without running its `__init__` (idempotent); return it.
    Its message types are those `services` need (the first call decides)."""
    with _installed:
        found = sys.modules.get(PACKAGE)
        if found is not None:
            return found
        import google.cloud

        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError(f"{PACKAGE} is not installed")
        module = importlib.util.module_from_spec(spec)  # __path__, __spec__, __file__; body not run
        setattr(module, "__getattr__", _resolver(module))  # noqa: B010  (PEP 562 module hook)
        sys.modules[PACKAGE] = module
        google.cloud.compute_v1 = module  # type: ignore[attr-defined]
        _install_types(module, Path(spec.submodule_search_locations[0]), services)
        return module


def _install_types(package: ModuleType, package_dir: Path, services: tuple[str, ...]) -> None:
    """Register `types` without its `__init__`, its `compute` the trimmed one (gcp_types);
    leave the SDK's own package where the trimmed file cannot be had."""
    import logging

    name = f"{PACKAGE}.types"
    try:
        trimmed = gcp_types.trimmed_dir(package_dir, services)
    except (OSError, ValueError) as exc:
        logging.getLogger(__name__).debug("the SDK's own compute types are used: %s", exc)
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        return
    types = importlib.util.module_from_spec(spec)
    types.__path__ = [str(trimmed), *spec.submodule_search_locations]

    def resolve(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        compute = importlib.import_module(f"{name}.compute")
        value = compute if attr == "compute" else getattr(compute, attr)  # the submodule, or a message
        setattr(types, attr, value)
        return value

    setattr(types, "__getattr__", resolve)  # noqa: B010  (PEP 562 module hook)
    sys.modules[name] = types
    package.types = types  # type: ignore[attr-defined]
    _trimmed.update(services)


def _resolver(package: ModuleType) -> Any:
    def resolve(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name.endswith("Client"):
            service = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Client")).lower()
            if _trimmed and service not in _trimmed:
                raise AttributeError(f"{name}: cast imports only the compute services in "
                                     f"provisioner.clouds.gcp_types.SERVICES; add {service!r} there")
            value = getattr(importlib.import_module(f"{PACKAGE}.services.{service}"), name)
        else:
            value = getattr(importlib.import_module(f"{PACKAGE}.types"), name)
        setattr(package, name, value)  # later lookups find it without this hook
        return value

    return resolve
