"""What sandboxes that are no longer running left on this machine, and its removal.

A sandbox whose supervisor was killed (kill -9, an out-of-memory kill, a CI job cut short) leaves
its namespaces, its uplink and the routes to its address pools behind. Those routes would make
every later `cast sandbox up` refuse the pools as "used by this machine", from any directory:
so `cast sandbox up` first removes what dead sandboxes left, and only theirs.

A sandbox is recognised by its names (`cs` and six hex digits, see supervisor.hosts_prefix) and
counts as alive while its supervisor runs or while the process that made its hosts (the owner it
recorded) runs; a run that recorded no owner counts as alive while any process runs in one of its
namespaces or any process it recorded is still that process. A sandbox that may be alive is never
touched; a dead one's surviving processes (a DNS server, a delay line) are ended with the rest.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .hosts import OWNER_FILE, RUN_ROOT, cleanup_leftovers, namespace_pids, namespaces, recorded_pid

SANDBOX_NAME = re.compile(r"^(cs[0-9a-f]{6})-")
SUPERVISOR_MODULE = "provisioner.sandbox.supervisor"


@dataclass(frozen=True)
class Leftover:
    """A dead sandbox's prefix and what it left: namespaces, and whether its uplink remains."""

    prefix: str
    namespaces: tuple[str, ...]
    uplink: bool


def running_supervisors() -> set[str]:
    """The prefixes of the sandboxes whose supervisor process runs on this machine."""
    from .supervisor import hosts_prefix

    found: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = (proc / "cwd").resolve()
        except OSError:
            continue
        words = [w.decode(errors="replace") for w in argv]
        if SUPERVISOR_MODULE in words and words.index(SUPERVISOR_MODULE) + 1 < len(words):
            found.add(hosts_prefix(cwd / words[words.index(SUPERVISOR_MODULE) + 1]))
    return found


def _alive(prefix: str, mine: tuple[str, ...], run_root: Path) -> bool:
    """Whether the run with `prefix` may still be in use: its owner (the process that made it)
    runs; or, for a run that recorded no owner, any process in its namespaces or of its records."""
    directory = run_root / prefix
    if (directory / OWNER_FILE).exists():
        return recorded_pid(directory / OWNER_FILE) is not None
    recorded = directory.rglob("*.pid") if directory.is_dir() else iter(())
    return any(namespace_pids(ns) for ns in mine) or any(recorded_pid(p) is not None for p in recorded)


def dead_sandboxes(run_root: Path = RUN_ROOT) -> list[Leftover]:
    """What each sandbox that no longer runs left on this machine (needs root to see it all)."""
    listed = namespaces()
    links = _link_names()
    prefixes: set[str] = set()
    for name in [*listed, *links, *(p.name + "-" for p in _run_dirs(run_root))]:
        match = SANDBOX_NAME.match(name)
        if match:
            prefixes.add(match.group(1))
    alive = running_supervisors()
    found = []
    for prefix in sorted(prefixes - alive):
        mine = tuple(ns for ns in listed if ns.startswith(prefix + "-"))
        if _alive(prefix, mine, run_root):
            continue
        found.append(Leftover(prefix, mine, f"{prefix}-up" in links))
    return found


def _link_names() -> list[str]:
    """The names of this machine's network links (`ip -o link show`: "N: name@peer: ...")."""
    try:
        out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.count(":") >= 2]


def _run_dirs(run_root: Path) -> list[Path]:
    try:
        return [p for p in run_root.iterdir() if p.is_dir()]
    except OSError:
        return []


def remove_dead_sandboxes(run_root: Path = RUN_ROOT) -> list[Leftover]:
    """Remove what every dead sandbox left (its namespaces, uplink and routes, run directory);
    returns what was removed. Sandboxes that run, or may run, are left alone."""
    removed = dead_sandboxes(run_root)
    for leftover in removed:
        cleanup_leftovers(leftover.prefix, run_root)
    return removed
