"""The latency pre-flight: for each pair of clouds in a region, the physical lower bound of
round-trip time and the published measurement, with a verdict against the threshold. Pure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .regions import CloudRegion, Region

EARTH_RADIUS_KM = 6371.0
# Light in fibre covers about 200 km per millisecond, one way: 100 km of distance per ms of RTT.
FIBRE_KM_PER_MS_ONE_WAY = 200.0
# A pair within this share of the threshold is worth a warning.
WARN_SHARE = 0.8

OK, WARN, FAIL = "ok", "warn", "fail"


def great_circle_km(a: CloudRegion, b: CloudRegion) -> float:
    """Great-circle distance between two clouds' metros (haversine), in kilometres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def rtt_lower_bound_ms(a: CloudRegion, b: CloudRegion) -> float:
    """The smallest round-trip time physics allows between two metros."""
    return 2 * great_circle_km(a, b) / FIBRE_KM_PER_MS_ONE_WAY


@dataclass(frozen=True)
class PairCheck:
    """The pre-flight verdict for one pair of clouds."""

    clouds: tuple[str, str]
    distance_km: float
    bound_ms: float
    measured_ms: float | None
    source: str | None
    verdict: str  # ok | warn | fail

    @property
    def expected_ms(self) -> float:
        """The best estimate we have: the measurement where published, else the bound."""
        return self.measured_ms if self.measured_ms is not None else self.bound_ms

    def to_dict(self) -> dict[str, Any]:
        """The check as plain data (for --output json)."""
        return {
            "clouds": list(self.clouds),
            "distance_km": round(self.distance_km, 1),
            "bound_ms": round(self.bound_ms, 2),
            "measured_ms": self.measured_ms,
            "source": self.source,
            "verdict": self.verdict,
        }

    def describe(self) -> str:
        text = f"{self.clouds[0]}-{self.clouds[1]}: bound {self.bound_ms:.1f} ms"
        if self.measured_ms is not None:
            text += f", published {self.measured_ms:.1f} ms"
        return text


def check_pairs(region: Region, clouds: Iterable[str], threshold_ms: float) -> list[PairCheck]:
    """Verdicts for every pair among `clouds` (in the region), in a stable order.

    fail: the bound or the published figure exceeds the threshold; warn: the worse of the two
    is within 20% of it; ok otherwise.
    """
    names = sorted(set(clouds), key=lambda c: list(region.clouds).index(c))
    checks = []
    for a, b in itertools.combinations(names, 2):
        ca, cb = region.clouds[a], region.clouds[b]
        bound = rtt_lower_bound_ms(ca, cb)
        m = region.measurement(a, b)
        worst = max(bound, m.rtt_ms if m else 0.0)
        if worst > threshold_ms:
            verdict = FAIL
        elif worst >= WARN_SHARE * threshold_ms:
            verdict = WARN
        else:
            verdict = OK
        checks.append(
            PairCheck(
                clouds=(a, b),
                distance_km=great_circle_km(ca, cb),
                bound_ms=bound,
                measured_ms=m.rtt_ms if m else None,
                source=m.source if m else None,
                verdict=verdict,
            )
        )
    return checks


def overall(checks: Iterable[PairCheck]) -> str:
    """The worst verdict among the checks (ok when there are none)."""
    order = {OK: 0, WARN: 1, FAIL: 2}
    return max((c.verdict for c in checks), key=order.__getitem__, default=OK)
