"""The region map: regions.yaml loaded once into typed, validated values.

A malformed file gives a `ConfigError` naming the file, the region and the key. Pure:
the only I/O is reading the file.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .clouds import NAMES
from .errors import ConfigError

CLOUDS: tuple[str, ...] = NAMES  # the registry's (provisioner.clouds), in its order
ROLES: tuple[str, ...] = ("master", "worker")


@dataclass(frozen=True)
class CloudRegion:
    """One cloud's region inside a cast region."""

    cloud: str
    region: str
    zone: str | None
    metro: str
    lat: float
    lon: float
    sizes: Mapping[str, str]  # role -> default size
    image: Mapping[str, str]  # the cloud's Ubuntu 24.04 image reference


@dataclass(frozen=True)
class Measurement:
    """A published round-trip time between two clouds of a region, with its source."""

    clouds: tuple[str, str]
    rtt_ms: float
    source: str


@dataclass(frozen=True)
class Region:
    """A cast region: the clouds offered in it and the published figures between them."""

    key: str
    name: str
    clouds: Mapping[str, CloudRegion]
    measured: tuple[Measurement, ...] = ()

    def measurement(self, a: str, b: str) -> Measurement | None:
        """The published figure between clouds `a` and `b`, in either order, if any."""
        for m in self.measured:
            if set(m.clouds) == {a, b}:
                return m
        return None


@dataclass(frozen=True)
class RegionMap:
    """The whole region map."""

    path: Path
    latency_threshold_ms: float
    networks: Mapping[str, str]  # cloud -> block (DigitalOcean: "first/20-last/20")
    sizes: Mapping[str, tuple[str, ...]]  # cloud -> sizes cast accepts
    regions: Mapping[str, Region] = field(default_factory=dict)

    def region(self, key: str) -> Region:
        """The region `key`; raises KeyError if there is none (callers turn it into input errors)."""
        return self.regions[key]


class _Reader:
    """Reads one mapping with error messages that name the file and the path to the key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {problem}")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, found {type(value).__name__}")
        return value

    def get(self, data: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
        if key not in data:
            raise self.fail(f"{where}.{key}", "missing")
        value = data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(f"{where}.{key}", f"expected {expected}, found {value!r}")
        return value


def _parse_cloud(r: _Reader, cloud: str, raw: Any, where: str) -> CloudRegion:
    data = r.mapping(raw, where)
    if cloud not in CLOUDS:
        raise r.fail(where, f"unknown cloud {cloud!r} (allowed: {', '.join(CLOUDS)})")
    zone = data.get("zone")
    if zone is not None and not isinstance(zone, str):
        raise r.fail(f"{where}.zone", f"expected a string or null, found {zone!r}")
    lat = r.get(data, "lat", where, float)
    lon = r.get(data, "lon", where, float)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise r.fail(where, f"coordinates out of range: {lat}, {lon}")
    sizes = r.mapping(r.get(data, "sizes", where, dict), f"{where}.sizes")
    for role in ROLES:
        r.get(sizes, role, f"{where}.sizes", str)
    image = r.get(data, "image", where, dict)
    return CloudRegion(
        cloud=cloud,
        region=r.get(data, "region", where, str),
        zone=zone,
        metro=r.get(data, "metro", where, str),
        lat=lat,
        lon=lon,
        sizes={role: sizes[role] for role in ROLES},
        image={str(k): str(v) for k, v in image.items()},
    )


def _parse_region(r: _Reader, key: str, raw: Any) -> Region:
    where = f"regions.{key}"
    data = r.mapping(raw, where)
    clouds_raw = r.mapping(r.get(data, "clouds", where, dict), f"{where}.clouds")
    if not clouds_raw:
        raise r.fail(f"{where}.clouds", "no cloud offered")
    clouds = {c: _parse_cloud(r, c, v, f"{where}.clouds.{c}") for c, v in clouds_raw.items()}
    measured = []
    for i, m in enumerate(data.get("measured") or []):
        mwhere = f"{where}.measured[{i}]"
        m = r.mapping(m, mwhere)
        pair = r.get(m, "clouds", mwhere, list)
        if len(pair) != 2 or any(c not in clouds for c in pair):
            raise r.fail(f"{mwhere}.clouds", f"expected two clouds of this region, found {pair!r}")
        measured.append(
            Measurement(
                clouds=(pair[0], pair[1]),
                rtt_ms=r.get(m, "rtt_ms", mwhere, float),
                source=r.get(m, "source", mwhere, str),
            )
        )
    return Region(key=key, name=r.get(data, "name", where, str), clouds=clouds, measured=tuple(measured))


def parse_region_map(text: str, path: Path) -> RegionMap:
    """Parse and validate the text of a region map; `path` is only used in messages."""
    r = _Reader(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}" if mark is not None else "?"
        raise ConfigError(f"{path}: {at}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    data = r.mapping(raw, "top level")
    networks = r.mapping(r.get(data, "networks", "top level", dict), "networks")
    for cloud in CLOUDS:
        block = r.get(networks, cloud, "networks", str)
        for part in block.split("-"):
            try:
                ipaddress.ip_network(part)
            except ValueError:
                raise r.fail(f"networks.{cloud}", f"not a network: {part!r}") from None
    sizes = r.mapping(r.get(data, "sizes", "top level", dict), "sizes")
    regions_raw = r.mapping(r.get(data, "regions", "top level", dict), "regions")
    regions = {key: _parse_region(r, key, value) for key, value in regions_raw.items()}
    for region in regions.values():
        for offered in region.clouds.values():
            known = sizes.get(offered.cloud, [])
            for role, size in offered.sizes.items():
                if size not in known:
                    raise r.fail(
                        f"regions.{region.key}.clouds.{offered.cloud}.sizes.{role}",
                        f"size {size!r} is not in sizes.{offered.cloud}",
                    )
    return RegionMap(
        path=path,
        latency_threshold_ms=r.get(data, "latency_threshold_ms", "top level", float),
        networks={c: networks[c] for c in CLOUDS},
        sizes={c: tuple(sizes.get(c, ())) for c in CLOUDS},
        regions=regions,
    )


def regions_file() -> Path | None:
    """The region map named by $CAST_REGIONS, or None for the one shipped with cast."""
    override = os.environ.get("CAST_REGIONS")
    return Path(override) if override else None


@functools.cache
def _load(path: Path | None) -> RegionMap:
    if path is None:
        from .data import REGION_MAP, data_file

        shipped = data_file(REGION_MAP)
        try:
            text = shipped.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{shipped}: cannot read the region map shipped with cast: {exc.strerror}") from None
        return parse_region_map(text, Path(str(shipped)))
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the region map: {exc.strerror}") from None
    return parse_region_map(text, path)


def load_region_map(path: Path | None = None) -> RegionMap:
    """Load (once per path) and validate the region map: `path`, else $CAST_REGIONS, else the
    one shipped with cast. Raises ConfigError."""
    chosen = path or regions_file()
    return _load(chosen.resolve() if chosen else None)
