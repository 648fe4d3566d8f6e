"""What the DigitalOcean emulator knows of DigitalOcean's catalog: regions, droplet sizes and
the regions each is sold in, and public images, in the shapes /v2/regions, /v2/sizes and
/v2/images answer with, and the 422s the API gives a droplet create that names something
outside it.

Sources (2026-12): the figures are DigitalOcean's published droplet plans (the pricing page
and the API reference's /v2/sizes, /v2/regions and /v2/images descriptions and examples in
DigitalOcean's OpenAPI description, commit 7c1300c, 2026-08); libcloud's recorded responses
(libcloud/test/compute/fixtures/digitalocean_v2/list_node.json) for the nested shapes. The
refusal messages are the API's own, as recorded by its users (digitalocean/doctl#257,
terraform-provider-digitalocean#60, libcloud's error_invalid_image.json). Image ids are the
emulator's own: the real ids change with every rebuild of an image.

The catalog is small on purpose: every region, default size and image `regions.yaml` names for
DigitalOcean, and a handful of other real ones, so that a wrong value is refused as the API
refuses it. To refresh it, scripts/refresh_do_catalog.py (with a real token) lists every
figure that differs from the API's; change them here by hand, with the date above.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

REGION_FEATURES = ("backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer")

# slug -> (display name, new droplets accepted); nyc2, sfo1 and ams2 take no new droplets.
REGIONS: dict[str, tuple[str, bool]] = {
    "nyc1": ("New York 1", True),
    "nyc2": ("New York 2", False),
    "nyc3": ("New York 3", True),
    "sfo1": ("San Francisco 1", False),
    "sfo2": ("San Francisco 2", True),
    "sfo3": ("San Francisco 3", True),
    "ams2": ("Amsterdam 2", False),
    "ams3": ("Amsterdam 3", True),
    "sgp1": ("Singapore 1", True),
    "lon1": ("London 1", True),
    "fra1": ("Frankfurt 1", True),
    "tor1": ("Toronto 1", True),
    "blr1": ("Bangalore 1", True),
    "syd1": ("Sydney 1", True),
}  # atl1 (2024) is left out: the description's region_slug enum does not know it yet
_OPEN = tuple(slug for slug, (_, available) in REGIONS.items() if available)


@dataclass(frozen=True)
class Size:
    slug: str
    memory: int  # MiB
    vcpus: int
    disk: int  # GB
    transfer: float  # TB
    price_monthly: float
    price_hourly: float
    description: str
    regions: tuple[str, ...] = _OPEN


_NO_SFO2 = tuple(r for r in _OPEN if r != "sfo2")  # premium and dedicated plans are not sold there

SIZES: dict[str, Size] = {s.slug: s for s in (
    Size("s-1vcpu-1gb", 1024, 1, 25, 1.0, 6.0, 0.00893, "Basic"),
    Size("s-1vcpu-2gb", 2048, 1, 50, 2.0, 12.0, 0.01786, "Basic"),
    Size("s-2vcpu-2gb", 2048, 2, 60, 3.0, 18.0, 0.02679, "Basic"),
    Size("s-2vcpu-4gb", 4096, 2, 80, 4.0, 24.0, 0.03571, "Basic"),
    Size("s-4vcpu-8gb", 8192, 4, 160, 5.0, 48.0, 0.07143, "Basic"),
    Size("s-2vcpu-4gb-amd", 4096, 2, 80, 4.0, 28.0, 0.04167, "Premium AMD", _NO_SFO2),
    Size("s-2vcpu-8gb-amd", 8192, 2, 100, 5.0, 42.0, 0.0625, "Premium AMD", _NO_SFO2),
    Size("s-4vcpu-16gb-amd", 16384, 4, 200, 8.0, 84.0, 0.125, "Premium AMD", _NO_SFO2),
    Size("g-2vcpu-8gb", 8192, 2, 25, 4.0, 63.0, 0.09375, "General Purpose", _NO_SFO2),
    Size("c-2", 4096, 2, 25, 4.0, 42.0, 0.0625, "CPU-Optimized", _NO_SFO2),
    Size("m-2vcpu-16gb", 16384, 2, 50, 4.0, 84.0, 0.125, "Memory-Optimized", _NO_SFO2),
)}


@dataclass(frozen=True)
class Image:
    id: int
    slug: str
    name: str
    distribution: str
    created_at: str
    min_disk_size: int
    size_gigabytes: float
    application: bool = False  # a 1-Click application image, not a plain distribution


IMAGES: dict[str, Image] = {i.slug: i for i in (
    Image(170004001, "ubuntu-24-04-x64", "24.04 (LTS) x64", "Ubuntu", "2026-10-02T14:12:07Z", 7, 2.58),
    Image(170004002, "ubuntu-22-04-x64", "22.04 (LTS) x64", "Ubuntu", "2026-10-02T14:20:41Z", 7, 2.36),
    Image(170004003, "debian-12-x64", "12 x64", "Debian", "2026-09-18T09:03:12Z", 7, 1.13),
    Image(170004004, "fedora-42-x64", "42 x64", "Fedora", "2026-05-06T17:40:55Z", 7, 0.98),
    Image(170004005, "centos-stream-9-x64", "Stream 9 x64", "CentOS", "2026-08-27T11:31:09Z", 10, 1.57),
    Image(170004006, "rockylinux-9-x64", "9 x64", "Rocky Linux", "2026-07-15T08:22:48Z", 10, 1.27),
    Image(170004101, "docker-20-04", "Docker on Ubuntu 22.04", "Ubuntu", "2026-09-30T12:00:00Z", 25, 4.1,
          application=True),
)}

INVALID_IMAGE = "You specified an invalid image for Droplet creation."
INVALID_SIZE = "You specified an invalid size for Droplet creation."
INVALID_REGION = "You specified an invalid region for Droplet creation."
REGION_UNAVAILABLE = "Region is not available"
SIZE_NOT_IN_REGION = "Size is not available in this region."
KEY_TYPES = ("ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "ssh-ed25519")
KEY_INVALID_TYPE = ("Key invalid type, we support 'ssh-rsa', 'ssh-dss', 'ecdsa-sha2-nistp256', "
                    "'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', or 'ssh-ed25519'")
KEY_NO_FINGERPRINT = "Fingerprint could not be generated, please make sure your key is valid"


def find_image(ref: Any) -> Image | None:
    """The public image a droplet create names, by slug or by numeric id (as string or int)."""
    if isinstance(ref, bool):
        return None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return next((i for i in IMAGES.values() if i.id == int(ref)), None)
    return IMAGES.get(str(ref))


def droplet_refusal(region: str, size: str, image: Any) -> str | None:
    """The API's 422 message for a droplet create naming this region, size and image, or
    None when the catalog has them all (and the size is sold in the region)."""
    if find_image(image) is None:
        return INVALID_IMAGE
    if region not in REGIONS:
        return INVALID_REGION
    if size not in SIZES:
        return INVALID_SIZE
    if not REGIONS[region][1]:
        return REGION_UNAVAILABLE
    if region not in SIZES[size].regions:
        return SIZE_NOT_IN_REGION
    return None


def public_key_refusal(public_key: str) -> str | None:
    """The API's 422 message for an SSH key that is not an OpenSSH public key, or None: the
    type must be one it supports and the blob base64 of an SSH wire key of that type."""
    fields = public_key.split()
    if not fields or fields[0] not in KEY_TYPES:
        return KEY_INVALID_TYPE
    if len(fields) < 2:
        return KEY_NO_FINGERPRINT
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        return KEY_NO_FINGERPRINT
    length = int.from_bytes(blob[:4], "big")
    if len(blob) < 4 + length or blob[4 : 4 + length] != fields[0].encode() or len(blob) <= 4 + length:
        return KEY_NO_FINGERPRINT
    return None


def region_json(slug: str) -> dict[str, Any]:
    """A region as /v2/regions and a droplet's `region` show it."""
    name, available = REGIONS[slug]
    sizes = [s.slug for s in SIZES.values() if slug in s.regions] if available else []
    return {"name": name, "slug": slug, "features": list(REGION_FEATURES) if available else [],
            "available": available, "sizes": sizes}


def size_json(slug: str) -> dict[str, Any]:
    """A size as /v2/sizes and a droplet's `size` show it."""
    s = SIZES[slug]
    return {
        "slug": s.slug, "memory": s.memory, "vcpus": s.vcpus, "disk": s.disk, "transfer": s.transfer,
        "price_monthly": s.price_monthly, "price_hourly": s.price_hourly, "regions": list(s.regions),
        "available": True, "description": s.description,
        "disk_info": [{"type": "local", "size": {"amount": s.disk, "unit": "gib"}}],
    }


def image_json(image: Image) -> dict[str, Any]:
    """A public image as /v2/images and a droplet's `image` show it (DigitalOcean's own
    distribution images carry the type `snapshot`, as the API reference says)."""
    return {
        "id": image.id, "name": image.name, "distribution": image.distribution, "slug": image.slug,
        "public": True, "regions": list(_OPEN), "created_at": image.created_at, "type": "snapshot",
        "min_disk_size": image.min_disk_size, "size_gigabytes": image.size_gigabytes, "description": "",
        "tags": [], "status": "available", "error_message": "",
    }


def images_listed(kind: str | None, private: bool) -> list[dict[str, Any]]:
    """/v2/images with its filters: `type` distribution or application; `private=true`
    lists the account's own images (the emulator has none)."""
    if private:
        return []
    wanted = [i for i in IMAGES.values()
              if kind is None or (kind == "application") == i.application]
    return [image_json(i) for i in wanted]
