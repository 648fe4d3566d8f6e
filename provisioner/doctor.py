"""`cast doctor`: whether cast can work from here, in one report. For each cloud asked about:
its credential source, one cheap authenticated call and its endpoint (clouds.doctor); then the
local tools the sandbox needs and whether the sandbox runs. Reads and calls only: it changes
nothing, on any cloud or on this machine. Names no cloud.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clouds.doctor import Access
    from .regions import RegionMap
    from .sandbox.hosts import SupportCheck


@dataclass(frozen=True)
class Report:
    """What `cast doctor` found."""

    clouds: tuple[Access, ...]
    local: tuple[SupportCheck, ...]  # what the sandbox needs of this machine
    sandbox: dict[str, Any]  # running; and when it runs, its pid, region and endpoints

    @property
    def usable(self) -> bool:
        """Every cloud asked about can be used (the sandbox's needs do not count: real clouds
        do without them)."""
        return all(a.usable for a in self.clouds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "usable": self.usable,
            "clouds": [a.to_dict() for a in self.clouds],
            "local": [asdict(c) for c in self.local],
            "sandbox": self.sandbox,
        }


def check_regions(clouds: Sequence[str], regions: RegionMap) -> dict[str, str]:
    """Where to check each cloud: its region in the first cast region of the map that offers it."""
    places: dict[str, str] = {}
    for cloud in clouds:
        offered = [r.clouds[cloud].region for r in regions.regions.values() if cloud in r.clouds]
        if offered:
            places[cloud] = offered[0]
    return places


def diagnose(clouds: Sequence[str], regions: RegionMap, state_root: Path, *, timeout_s: float) -> Report:
    """Check `clouds` (in parallel, each call waiting at most `timeout_s`), this machine's
    tools for the sandbox, and the sandbox under `state_root`. Raises KeyError for an unknown
    cloud (the command line admits only known ones)."""
    from .clouds.doctor import check_clouds
    from .sandbox.control import read_state, sandbox_dir
    from .sandbox.hosts import support_checks

    accesses = check_clouds(check_regions(list(dict.fromkeys(clouds)), regions), timeout_s)
    state = read_state(sandbox_dir(state_root))
    sandbox: dict[str, Any] = {"running": state is not None}
    if state is not None:
        endpoints = {k: v for k, v in state["env"].items() if k.endswith("ENDPOINT") or k.endswith("ENDPOINT_URL")}
        sandbox.update(pid=state["pid"], region=state["region"], endpoints=endpoints)
    return Report(tuple(accesses), tuple(support_checks()), sandbox)
