"""Compare the GCP emulator's catalog (provisioner/sandbox/gcp_catalog.py) with the real
Compute Engine API, to refresh it by hand.

Usage: .venv/bin/python scripts/check_gcp_catalog.py --project MY-PROJECT
Needs application-default credentials (gcloud auth application-default login) and network
access to compute.googleapis.com; it only reads (zones.list, machineTypes.get, diskTypes.get,
images.getFromFamily). Prints every difference: a zone the catalog has that Google does not
(or the reverse, for the catalog's regions), a machine or disk type not offered in a zone or
with other figures, an image family whose newest image is not in the catalog. Exit code 1
when there is any difference. Update gcp_catalog.py (and its date) from what it prints.
"""

from __future__ import annotations

import argparse
import sys

from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from provisioner.sandbox import gcp_catalog as catalog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True, help="a project the credentials may read")
    args = parser.parse_args()
    compute = build("compute", "v1", static_discovery=True)
    problems: list[str] = []

    live: dict[str, set[str]] = {}
    request = compute.zones().list(project=args.project)
    while request is not None:
        page = request.execute()
        for zone in page.get("items", []):
            live.setdefault(zone["region"].rsplit("/", 1)[1], set()).add(zone["name"])
        request = compute.zones().list_next(request, page)
    for region in catalog.ZONE_LETTERS:
        ours = {z for z in catalog.zones() if z.rsplit("-", 1)[0] == region}
        if ours != live.get(region, set()):
            problems.append(f"region {region}: catalog zones {sorted(ours)}, Google {sorted(live.get(region, []))}")

    for zone in catalog.zones():
        for m in catalog.MACHINE_TYPES.values():
            try:
                got = compute.machineTypes().get(project=args.project, zone=zone, machineType=m.name).execute()
            except HttpError as exc:
                problems.append(f"{zone}: machine type {m.name}: {exc.status_code}")
                continue
            if (got["guestCpus"], got["memoryMb"], got.get("isSharedCpu", False)) != (m.cpus, m.memory_mb, m.shared):
                problems.append(f"{zone}: {m.name} is {got['guestCpus']} vCPU / {got['memoryMb']} MB")
        for d in catalog.DISK_TYPES.values():
            try:
                compute.diskTypes().get(project=args.project, zone=zone, diskType=d.name).execute()
            except HttpError as exc:
                problems.append(f"{zone}: disk type {d.name}: {exc.status_code}")

    for family in sorted({(i.project, i.family) for i in catalog.IMAGES}):
        newest = compute.images().getFromFamily(project=family[0], family=family[1]).execute()["name"]
        if catalog.image(family[0], newest) is None:
            problems.append(f"image family {family[0]}/{family[1]}: newest is {newest}, not in the catalog")

    for line in problems:
        print(line)
    print(f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
