"""What the GCP emulator knows of Google's catalog: regions and their zones, machine types,
disk types and the public images cast's region map names (plus a few more), rendered as the
compute v1 API renders them. A request naming anything else is refused as the API refuses it.

Sources (2026-12):
- regions and zones: Google Cloud's "Regions and zones" page
  (cloud.google.com/compute/docs/regions-zones), every GCP region of regions.yaml plus
  us-central1, us-east1, europe-west1, asia-east1 and southamerica-east1;
- machine types: the "General-purpose machine family" pages (E2, N2, N1: vCPUs, memory, the
  shared-core E2 types); the E2, N2 and N1 families are taken as offered in every zone listed;
- disk types: the "Persistent Disk" / "Disk types" pages (valid sizes and the API's defaults);
- images: the public image projects ubuntu-os-cloud and debian-cloud, with Canonical's and
  Debian's image naming (`ubuntu-2404-noble-amd64-vYYYYMMDD`); the build dates are the
  sandbox's, not a record of real builds;
- resource shapes: compute v1 reference and the recorded responses in apache-libcloud's
  libcloud/test/compute/fixtures/gce/ (zones_us-central1-a.json, regions_us-central1.json,
  zones_us-central1-a_machineTypes_n1-standard-1.json, zones_us-central1-a_diskTypes.json,
  projects_coreos-cloud_global_images_family_coreos_stable.json).
The API reports the Unix epoch, in Pacific time, as the creation time of zones, regions,
machine types and disk types; so does this catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .gcp_common import EMPTY_FINGERPRINT, link, stable_id

EPOCH = "1969-12-31T16:00:00.000-08:00"
ZONE_LETTERS: dict[str, str] = {
    "us-central1": "abcf", "us-east1": "bcd", "us-east4": "abc", "us-west1": "abc", "us-west2": "abc",
    "northamerica-northeast2": "abc", "southamerica-east1": "abc",
    "europe-west1": "bcd", "europe-west2": "abc", "europe-west3": "abc", "europe-west4": "abc",
    "asia-east1": "abc", "asia-northeast1": "abc", "asia-south1": "abc", "asia-southeast1": "abc",
    "australia-southeast1": "abc",
}
CPU_PLATFORMS = ["Intel Cascade Lake", "Intel Ice Lake", "Intel Skylake", "Intel Broadwell", "AMD Rome"]


@dataclass(frozen=True)
class MachineType:
    name: str
    cpus: int
    memory_mb: int
    shared: bool = False

    @property
    def description(self) -> str:
        gb = f"{self.memory_mb / 1024:g}"
        if self.shared:
            core = {1024: "1/4 shared", 2048: "1/2 shared", 4096: "1 shared"}[self.memory_mb]
            return f"Efficient Instance, {self.cpus} vCPU ({core} physical core) and {gb} GB RAM"
        cpus = f"{self.cpus} vCPU" + ("s" if self.cpus > 1 else "")
        return (f"Efficient Instance, {cpus}, {gb} GB RAM" if self.name.startswith("e2-")
                else f"{cpus}, {gb} GB RAM")


MACHINE_TYPES: dict[str, MachineType] = {m.name: m for m in (
    MachineType("e2-micro", 2, 1024, shared=True), MachineType("e2-small", 2, 2048, shared=True),
    MachineType("e2-medium", 2, 4096, shared=True), MachineType("e2-standard-2", 2, 8192),
    MachineType("e2-standard-4", 4, 16384), MachineType("e2-standard-8", 8, 32768),
    MachineType("e2-highcpu-2", 2, 2048), MachineType("e2-highmem-2", 2, 16384),
    MachineType("n2-standard-2", 2, 8192), MachineType("n2-standard-4", 4, 16384),
    MachineType("n1-standard-1", 1, 3840), MachineType("n1-standard-2", 2, 7680),
)}


@dataclass(frozen=True)
class DiskType:
    name: str
    description: str
    valid_size: str
    default_gb: int


DISK_TYPES: dict[str, DiskType] = {d.name: d for d in (
    DiskType("pd-standard", "Standard Persistent Disk", "10GB-65536GB", 500),
    DiskType("pd-balanced", "Balanced Persistent Disk", "10GB-65536GB", 100),
    DiskType("pd-ssd", "SSD Persistent Disk", "10GB-65536GB", 100),
    DiskType("local-ssd", "Local SSD", "375GB-375GB", 375),
)}
DEFAULT_DISK_TYPE = "pd-standard"  # what an instance's boot disk gets when none is named


@dataclass(frozen=True)
class Image:
    project: str
    name: str
    family: str
    description: str
    created: str
    architecture: str = "X86_64"
    disk_gb: int = 10
    license: str = ""
    deprecated_by: str | None = None  # the newer image that replaces it

    @property
    def rel(self) -> str:
        return f"projects/{self.project}/global/images/{self.name}"


def _ubuntu(version: str, codename: str, arch: str, family: str, build: str, newer: str | None = None) -> Image:
    date = f"{build[:4]}-{build[4:6]}-{build[6:]}"
    short = version.replace(".", "")
    return Image("ubuntu-os-cloud", f"ubuntu-{short}-{codename}-{arch}-v{build}", family,
                 f"Canonical, Ubuntu, {version} LTS, {arch} {codename} image built on {date}",
                 f"{date}T08:00:00.000-07:00", "X86_64" if arch == "amd64" else "ARM64",
                 license=f"ubuntu-{short}-lts",
                 deprecated_by=f"ubuntu-{short}-{codename}-{arch}-v{newer}" if newer else None)


IMAGES: tuple[Image, ...] = (
    _ubuntu("24.04", "noble", "amd64", "ubuntu-2404-lts-amd64", "20250606", newer="20251120"),
    _ubuntu("24.04", "noble", "amd64", "ubuntu-2404-lts-amd64", "20251120"),
    _ubuntu("24.04", "noble", "arm64", "ubuntu-2404-lts-arm64", "20251120"),
    _ubuntu("22.04", "jammy", "amd64", "ubuntu-2204-lts", "20251120"),
    Image("debian-cloud", "debian-12-bookworm-v20251111", "debian-12",
          "Debian, Debian GNU/Linux, 12 (bookworm), amd64 built on 20251111",
          "2025-11-11T12:00:00.000-08:00", license="debian-12-bookworm"),
)


def zones() -> list[str]:
    return [f"{region}-{letter}" for region, letters in ZONE_LETTERS.items() for letter in letters]


def zone_known(zone: str) -> bool:
    region, _, letter = zone.rpartition("-")
    return len(letter) == 1 and letter in ZONE_LETTERS.get(region, "")


def region_known(region: str) -> bool:
    return region in ZONE_LETTERS


def image(project: str, name: str) -> Image | None:
    return next((i for i in IMAGES if i.project == project and i.name == name), None)


def family_image(project: str, family: str) -> Image | None:
    """The newest image of the family that is not deprecated (images.getFromFamily)."""
    live = [i for i in IMAGES if i.project == project and i.family == family and not i.deprecated_by]
    return max(live, key=lambda i: i.created, default=None)


def resolve_image(ref: str) -> Image | None:
    """The image a `sourceImage` names: `projects/P/global/images/N` or `.../images/family/F`."""
    parts = ref.split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[2:5] == ["global", "images", "family"]:
        return family_image(parts[1], parts[5])
    if len(parts) == 5 and parts[0] == "projects" and parts[2:4] == ["global", "images"]:
        return image(parts[1], parts[4])
    return None


# --- bodies as the API renders them -----------------------------------------------------------


def zone_body(project: str, zone: str) -> dict[str, Any]:
    region = zone.rsplit("-", 1)[0]
    return {"kind": "compute#zone", "id": stable_id(f"zone/{zone}"), "creationTimestamp": EPOCH, "name": zone,
            "description": zone, "status": "UP", "region": link(f"projects/{project}/regions/{region}"),
            "selfLink": link(f"projects/{project}/zones/{zone}"),
            "availableCpuPlatforms": list(CPU_PLATFORMS), "supportsPzs": False}


def region_body(project: str, region: str, cpus_in_use: float = 0.0) -> dict[str, Any]:
    quotas = [{"metric": "CPUS", "limit": 24.0, "usage": cpus_in_use},
              {"metric": "DISKS_TOTAL_GB", "limit": 4096.0, "usage": 0.0},
              {"metric": "IN_USE_ADDRESSES", "limit": 8.0, "usage": 0.0},
              {"metric": "INSTANCES", "limit": 24.0, "usage": 0.0}]
    return {"kind": "compute#region", "id": stable_id(f"region/{region}"), "creationTimestamp": EPOCH,
            "name": region, "description": region, "status": "UP",
            "zones": [link(f"projects/{project}/zones/{region}-{x}") for x in ZONE_LETTERS[region]],
            "quotas": quotas, "selfLink": link(f"projects/{project}/regions/{region}"), "supportsPzs": False}


def machine_type_body(project: str, zone: str, m: MachineType) -> dict[str, Any]:
    return {"kind": "compute#machineType", "id": stable_id(f"machineType/{m.name}"), "creationTimestamp": EPOCH,
            "name": m.name, "description": m.description, "guestCpus": m.cpus, "memoryMb": m.memory_mb,
            "imageSpaceGb": 0, "maximumPersistentDisks": 16 if m.shared else 128,
            "maximumPersistentDisksSizeGb": "3072" if m.shared else "263168", "zone": zone,
            "selfLink": link(f"projects/{project}/zones/{zone}/machineTypes/{m.name}"),
            "isSharedCpu": m.shared, "architecture": "X86_64"}


def disk_type_body(project: str, zone: str, d: DiskType) -> dict[str, Any]:
    return {"kind": "compute#diskType", "id": stable_id(f"diskType/{d.name}"), "creationTimestamp": EPOCH,
            "name": d.name, "description": d.description, "validDiskSize": d.valid_size,
            "zone": link(f"projects/{project}/zones/{zone}"),
            "selfLink": link(f"projects/{project}/zones/{zone}/diskTypes/{d.name}"),
            "defaultDiskSizeGb": str(d.default_gb)}


def image_body(i: Image) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "compute#image", "id": stable_id(f"image/{i.rel}"), "creationTimestamp": i.created,
        "name": i.name, "description": i.description, "sourceType": "RAW",
        "rawDisk": {"source": "", "containerType": "TAR"}, "status": "READY",
        "archiveSizeBytes": str(i.disk_gb * 100_000_000), "diskSizeGb": str(i.disk_gb),
        "licenses": [link(f"projects/{i.project}/global/licenses/{i.license}")],
        "family": i.family, "selfLink": link(i.rel), "labelFingerprint": EMPTY_FINGERPRINT,
        "guestOsFeatures": [{"type": t} for t in ("VIRTIO_SCSI_MULTIQUEUE", "SEV_CAPABLE", "UEFI_COMPATIBLE",
                                                   "GVNIC")],
        "storageLocations": ["eu", "us", "asia"], "architecture": i.architecture,
    }
    if i.deprecated_by:
        body["deprecated"] = {"state": "DEPRECATED",
                              "replacement": link(f"projects/{i.project}/global/images/{i.deprecated_by}")}
    return body
