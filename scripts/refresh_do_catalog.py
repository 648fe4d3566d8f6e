#!/usr/bin/env python3
"""Compare the DigitalOcean emulator's catalog (provisioner/sandbox/do_catalog.py) with the
real API's: regions (name, availability), the catalog's sizes (figures, prices, regions sold
in) and images (name, distribution), and every size and image regions.yaml names. Prints each
difference as the line to change in do_catalog.py; exits 1 if there is any. Then update the
data and its date by hand.

    DIGITALOCEAN_TOKEN=... scripts/refresh_do_catalog.py [--endpoint https://api.digitalocean.com]

Read-only: only GET /v2/regions, /v2/sizes and /v2/images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.regions import load_region_map  # noqa: E402
from provisioner.sandbox import do_catalog  # noqa: E402


def fetch(endpoint: str, token: str, path: str, key: str) -> list[dict[str, Any]]:
    """Every item under `key` of a paged listing."""
    items: list[dict[str, Any]] = []
    url: str | None = f"{endpoint.rstrip('/')}{path}{'&' if '?' in path else '?'}per_page=200"
    while url:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        items += body.get(key) or []
        url = ((body.get("links") or {}).get("pages") or {}).get("next")
    return items


def differences(regions: list[dict[str, Any]], sizes: list[dict[str, Any]], images: list[dict[str, Any]]) -> list[str]:
    """What in do_catalog differs from these listings of the API."""
    out = []
    live_regions = {r["slug"]: r for r in regions}
    for slug, r in live_regions.items():
        known = do_catalog.REGIONS.get(slug)
        if known is None:
            out.append(f"REGIONS: new region {slug!r}: ({r['name']!r}, {r['available']})")
        elif known != (r["name"], r["available"]):
            out.append(f"REGIONS[{slug!r}]: {known} -> ({r['name']!r}, {r['available']})")
    out += [f"REGIONS: {slug!r} is gone from the API" for slug in do_catalog.REGIONS if slug not in live_regions]

    region_map = load_region_map()
    wanted_sizes = set(do_catalog.SIZES) | set(region_map.sizes["digitalocean"])
    wanted_images = set(do_catalog.IMAGES)
    for region in region_map.regions.values():
        do = region.clouds.get("digitalocean")
        if do is not None:
            wanted_sizes |= set(do.sizes.values())
            wanted_images.add(do.image["slug"])

    live_sizes = {s["slug"]: s for s in sizes}
    for slug in sorted(wanted_sizes):
        live, known = live_sizes.get(slug), do_catalog.SIZES.get(slug)
        if live is None:
            out.append(f"SIZES: {slug!r} is not offered by the API")
            continue
        figures = (live["memory"], live["vcpus"], live["disk"], float(live["transfer"]),
                   float(live["price_monthly"]), round(float(live["price_hourly"]), 5), live["description"])
        if known is None:
            out.append(f"SIZES: add Size({slug!r}, {', '.join(map(repr, figures))}, regions={sorted(live['regions'])})")
            continue
        ours = (known.memory, known.vcpus, known.disk, known.transfer, known.price_monthly, known.price_hourly,
                known.description)
        if ours != figures:
            out.append(f"SIZES[{slug!r}]: {ours} -> {figures}")
        if sorted(known.regions) != sorted(live["regions"]):
            out.append(f"SIZES[{slug!r}].regions: {sorted(known.regions)} -> {sorted(live['regions'])}")

    live_images = {i["slug"]: i for i in images if i.get("slug")}
    for slug in sorted(wanted_images):
        live, known_image = live_images.get(slug), do_catalog.IMAGES.get(slug)
        if live is None:
            out.append(f"IMAGES: {slug!r} is not a public image of the API")
        elif known_image is None:
            out.append(f"IMAGES: add {slug!r}: {live['name']!r}, {live['distribution']!r}")
        elif (known_image.name, known_image.distribution) != (live["name"], live["distribution"]):
            out.append(f"IMAGES[{slug!r}]: {(known_image.name, known_image.distribution)} -> "
                       f"{(live['name'], live['distribution'])}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=os.environ.get("CAST_DIGITALOCEAN_ENDPOINT", "https://api.digitalocean.com"))
    args = parser.parse_args()
    token = os.environ.get("DIGITALOCEAN_TOKEN")
    if not token:
        print("DIGITALOCEAN_TOKEN is not set (a read-only token is enough)", file=sys.stderr)
        return 2
    found = differences(fetch(args.endpoint, token, "/v2/regions", "regions"),
                        fetch(args.endpoint, token, "/v2/sizes", "sizes"),
                        fetch(args.endpoint, token, "/v2/images", "images"))
    print("\n".join(found) if found else "do_catalog.py matches the API")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
