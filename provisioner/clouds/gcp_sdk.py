"""google-cloud-compute without its package root: the service modules cast calls, and nothing else.

`google.cloud.compute_v1/__init__.py` imports every one of the package's ~100 service clients
(it declares them `__lazy_modules__`, PEP 810, which only Python 3.15 honours): about 1.5 s on a
quiet 2-core machine, against about 0.6 s for the seven services cast uses (most of that is
`types.compute`, the message classes every client needs). `install()` registers the package
as a module whose body never runs; its names resolve on first use, as the real root would
give them: `XxxClient` from `services.xxx`, every other name from `types` (the messages).
Submodules import as usual (the module has the package's `__path__`).

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
from types import ModuleType
from typing import Any

PACKAGE = "google.cloud.compute_v1"
# The services cast calls (provisioner/clouds/gcp*.py, doctor): importing each here, in the
# registry's thread, means no client's first use in a worker thread imports anything.
SERVICES = ("networks", "subnetworks", "firewalls", "instances", "global_operations", "region_operations",
            "zone_operations")
MODULES = (f"{PACKAGE}.types", *(f"{PACKAGE}.services.{s}" for s in SERVICES))
_installed = threading.Lock()


def install() -> ModuleType:
    """Register `google.cloud.compute_v1` without running its `__init__` (idempotent); return it."""
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
        return module


def _resolver(package: ModuleType) -> Any:
    def resolve(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if name.endswith("Client"):
            service = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Client")).lower()
            value = getattr(importlib.import_module(f"{PACKAGE}.services.{service}"), name)
        else:
            value = getattr(importlib.import_module(f"{PACKAGE}.types"), name)
        setattr(package, name, value)  # later lookups find it without this hook
        return value

    return resolve
