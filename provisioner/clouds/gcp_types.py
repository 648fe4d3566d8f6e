"""google-cloud-compute's message types, only those of the services cast calls: a cached module.

`google.cloud.compute_v1.types.compute` defines all 2,087 messages of Compute Engine in one
file; proto-plus builds each class at import, about 0.5 s on a quiet 2-core machine, and
every service client imports it. The services cast calls (and the messages their fields
need, transitively) use 374 of them, built in about 0.1 s. `trimmed_dir()` returns a
directory holding `compute.py`: the SDK's own file, byte for byte the same header and the
same class definitions, with the other classes and their manifest entries left out. It is
made once per installed SDK file (keyed by its path, size and mtime, and the services) in
cast's cache directory, written atomically; Python caches its bytecode beside it as usual.

Only the services in SERVICES can then be imported (another service's module would miss
its messages): gcp_sdk registers the `types` package with this directory first on its path.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

PACKAGE = "google.cloud.compute_v1"
# Every compute service cast calls: the provider's (gcp.py, gcp_api.py, doctor) and the load
# balancers' (gcp_lb.py). A client of any other service cannot be made (gcp_sdk refuses it).
SERVICES = ("networks", "subnetworks", "firewalls", "instances", "global_operations", "region_operations",
            "zone_operations", "addresses", "forwarding_rules", "instance_groups", "region_backend_services",
            "region_health_checks")
FORMAT = "1"  # bump when the way the file is made changes: the cache key holds it
CACHE_ENV = "CAST_CACHE_DIR"  # where the file goes (default: the user's cache directory, platformdirs)

_CLASS = re.compile(r"^class (\w+)\(", re.M)
_SERVICE_REF = re.compile(r"\bcompute\.([A-Z]\w*)")
_FIELD_REF = re.compile(r"\b(?:message|enum)=\s*\"?([A-Z]\w*)")
_MANIFEST = "__protobuf__ = proto.module("


def cache_root() -> Path:
    """Where cast keeps files it can always make again."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    import platformdirs

    return Path(platformdirs.user_cache_dir("cast", appauthor=False))


def trimmed_dir(package_dir: Path, services: tuple[str, ...] = SERVICES) -> Path:
    """The directory whose `compute.py` holds the messages `services` need, made on first use
    from the SDK under `package_dir` (google/cloud/compute_v1). Raises OSError when it cannot
    be written, ValueError when the SDK's file is not laid out as expected."""
    source = package_dir / "types" / "compute.py"
    stat = source.stat()
    services = tuple(sorted(set(services)))
    key = hashlib.sha256(f"{FORMAT} {source} {stat.st_size} {stat.st_mtime_ns} {services}".encode()).hexdigest()
    where = cache_root() / "gcp-compute-types" / key[:16]
    if not (where / "compute.py").is_file():
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private(where)
        text = trim(source.read_text(encoding="utf-8"), service_refs(package_dir, services))
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".compute-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, where / "compute.py")  # another cast making it at once writes the same
    _private(where)
    _private(where / "compute.py")
    return where


def _private(path: Path) -> None:
    """The file is code cast runs: refuse (OSError) one another user could have written."""
    found = path.stat()
    if hasattr(os, "getuid") and (found.st_uid != os.getuid() or found.st_mode & 0o022):
        raise OSError(f"{path} is not private to this user: the SDK's own types are used")


def service_refs(package_dir: Path, services: tuple[str, ...] = SERVICES) -> set[str]:
    """Every message name the modules of `services` use (`compute.Xxx`)."""
    names: set[str] = set()
    for service in services:
        folder = package_dir / "services" / service
        if not folder.is_dir():
            raise ValueError(f"{PACKAGE} has no service {service}")
        for path in folder.rglob("*.py"):
            names.update(_SERVICE_REF.findall(path.read_text(encoding="utf-8")))
    return names


def trim(text: str, roots: set[str]) -> str:
    """The SDK's types module `text` with only the messages `roots` need (every message or
    enum a kept one's fields name, transitively) and a manifest that names exactly those."""
    start = text.find(_MANIFEST)
    end = text.find("\n)\n", start)
    found = list(_CLASS.finditer(text))
    tail = text.rfind("\n__all__ = ")
    if start < 0 or end < 0 or not found or tail < found[-1].start():
        raise ValueError("google-cloud-compute's types module is not laid out as expected")
    chunks = {}
    for here, after in zip(found, [*found[1:], None], strict=True):
        chunks[here.group(1)] = text[here.start():after.start() if after else tail]
    missing = roots - chunks.keys()
    if missing:
        raise ValueError(f"the services name messages the types module lacks: {sorted(missing)[:5]}")
    keep: set[str] = set()
    todo = sorted(roots)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(n for n in _FIELD_REF.findall(chunks[name]) if n in chunks and n not in keep)
    manifest = "".join(f'        "{n}",\n' for n in sorted(keep))
    package = re.search(r'package="([^"]+)"', text[start:end])
    if package is None:
        raise ValueError("google-cloud-compute's types module names no proto package")
    return (text[:start] + f'{_MANIFEST}\n    package="{package.group(1)}",\n    manifest={{\n{manifest}    }},\n)\n'
            + text[end + 3:found[0].start()] + "".join(c for n, c in chunks.items() if n in keep) + text[tail:])
