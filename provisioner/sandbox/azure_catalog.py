"""What the Azure emulator knows of Azure's catalog: locations, VM sizes per location, the
marketplace images it accepts, and the resource types of the providers it serves; with the
ARM errors that refuse anything outside it.

Sources, 2026-12 (a small catalog derived by hand, not copied):
- locations: ARM "Subscriptions - List Locations" reference and the output of
  `az account list-locations` (names, display names, coordinates, physical location, pairs).
  Every Azure location of regions.yaml is here, plus a handful of other real ones.
- VM sizes: the Azure VM size pages (learn.microsoft.com/azure/virtual-machines/sizes/...):
  vCPUs, memory, data disks, temporary disk; osDiskSizeInMB is the 1 TiB (1047552 MB) every
  size reports. Offered here in every location of the catalog (they are, in the real ones).
- images: the Canonical/Debian marketplace references in Microsoft's "Find Azure Marketplace
  image information" page; regions.yaml's Ubuntu 24.04 image is Canonical:ubuntu-24_04-lts:server.
- errors: codes and messages as ARM answers them in recorded public reports
  (LocationNotAvailableForResourceType / ...ResourceGroup, NoRegisteredProviderFound,
  InvalidParameter for the VM size and a missing networkProfile, PlatformImageNotFound).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class ArmError(Exception):
    """An ARM error answer: HTTP status, error code, message, and the field it names (or None)."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target


@dataclass(frozen=True)
class Location:
    name: str
    display: str
    geography: str  # geographyGroup
    lat: float
    lon: float
    physical: str
    pair: str | None
    zones: bool  # has availability zones


LOCATIONS = {loc.name: loc for loc in (
    Location("eastus", "East US", "US", 37.3719, -79.8164, "Virginia", "westus", True),
    Location("eastus2", "East US 2", "US", 36.6681, -78.3889, "Virginia", "centralus", True),
    Location("centralus", "Central US", "US", 41.5908, -93.6208, "Iowa", "eastus2", True),
    Location("westus", "West US", "US", 37.783, -122.417, "California", "eastus", False),
    Location("westus2", "West US 2", "US", 47.233, -119.852, "Washington", "westcentralus", True),
    Location("westus3", "West US 3", "US", 33.448376, -112.074036, "Phoenix", "eastus", True),
    Location("canadacentral", "Canada Central", "Canada", 43.653, -79.383, "Toronto", "canadaeast", True),
    Location("brazilsouth", "Brazil South", "South America", -23.55, -46.633, "Sao Paulo State", "southcentralus",
             True),
    Location("northeurope", "North Europe", "Europe", 53.3478, -6.2597, "Ireland", "westeurope", True),
    Location("westeurope", "West Europe", "Europe", 52.3667, 4.9, "Netherlands", "northeurope", True),
    Location("uksouth", "UK South", "UK", 50.941, -0.799, "London", "ukwest", True),
    Location("francecentral", "France Central", "Europe", 46.3772, 2.373, "Paris", "francesouth", True),
    Location("germanywestcentral", "Germany West Central", "Europe", 50.110924, 8.682127, "Frankfurt",
             "germanynorth", True),
    Location("southeastasia", "Southeast Asia", "Asia Pacific", 1.283, 103.833, "Singapore", "eastasia", True),
    Location("eastasia", "East Asia", "Asia Pacific", 22.267, 114.188, "Hong Kong", "southeastasia", True),
    Location("japaneast", "Japan East", "Asia Pacific", 35.68, 139.77, "Tokyo, Saitama", "japanwest", True),
    Location("australiaeast", "Australia East", "Asia Pacific", -33.86, 151.2094, "New South Wales",
             "australiasoutheast", True),
    Location("centralindia", "Central India", "Asia Pacific", 18.5822, 73.9197, "Pune", "southindia", True),
)}

# name -> (vCPUs, memory MB, max data disks, temporary disk MB)
VM_SIZES: dict[str, tuple[int, int, int, int]] = {
    "Standard_B1s": (1, 1024, 2, 4096),
    "Standard_B1ms": (1, 2048, 2, 4096),
    "Standard_B2s": (2, 4096, 4, 8192),
    "Standard_B2ms": (2, 8192, 4, 16384),
    "Standard_B4ms": (4, 16384, 8, 32768),
    "Standard_B2ats_v2": (2, 1024, 4, 0),
    "Standard_B2s_v2": (2, 8192, 4, 0),
    "Standard_D2s_v3": (2, 8192, 4, 16384),
    "Standard_D2s_v5": (2, 8192, 4, 0),
    "Standard_D4s_v5": (4, 16384, 8, 0),
    "Standard_D2as_v5": (2, 8192, 4, 0),
    "Standard_D2ds_v5": (2, 8192, 4, 76800),
    "Standard_E2s_v5": (2, 16384, 4, 0),
    "Standard_F2s_v2": (2, 4096, 4, 16384),
}
OS_DISK_MB = 1047552

# (publisher, offer) -> skus
IMAGES: dict[tuple[str, str], tuple[str, ...]] = {
    ("canonical", "ubuntu-24_04-lts"): ("server", "server-gen1", "minimal", "server-arm64"),
    ("canonical", "0001-com-ubuntu-server-jammy"): ("22_04-lts", "22_04-lts-gen2", "22_04-lts-arm64"),
    ("debian", "debian-12"): ("12", "12-gen2", "12-arm64"),
}
_VERSION = re.compile(r"(latest|\d+\.\d+\.\d+)", re.IGNORECASE)  # fullmatch

# namespace -> resource type -> api-versions (newest first) the emulator answers for
PROVIDERS: dict[str, dict[str, tuple[str, ...]]] = {
    "Microsoft.Compute": {
        "virtualMachines": ("2026-04-01", "2025-04-01", "2024-07-01"),
        "disks": ("2026-03-02", "2025-01-02", "2024-03-02"),
        "locations": ("2026-04-01", "2025-04-01"),
        "locations/vmSizes": ("2026-04-01", "2025-04-01", "2024-07-01"),
        "locations/operations": ("2026-04-01", "2025-04-01"),
    },
    "Microsoft.Network": {
        "virtualNetworks": ("2026-03-01", "2024-10-01", "2024-05-01"),
        "networkSecurityGroups": ("2026-03-01", "2024-10-01", "2024-05-01"),
        "publicIPAddresses": ("2026-03-01", "2024-10-01", "2024-05-01"),
        "networkInterfaces": ("2026-03-01", "2024-10-01", "2024-05-01"),
        "locations": ("2026-03-01", "2024-10-01"),
        "locations/operations": ("2026-03-01", "2024-10-01"),
    },
}


def normalize_location(value: Any) -> str:
    """ARM's form of a location: lowercase, no spaces ("East US" -> "eastus")."""
    return str(value or "").replace(" ", "").lower()


def check_location(value: Any, rtype: str | None) -> str:
    """The normalized location, or the refusal ARM gives for an unknown one: for a resource
    group (`rtype` None) LocationNotAvailableForResourceGroup, else ...ForResourceType."""
    name = normalize_location(value)
    if name in LOCATIONS:
        return name
    names = ",".join(LOCATIONS)
    if rtype is None:
        raise ArmError(400, "LocationNotAvailableForResourceGroup",
                           f"The provided location '{value}' is not available for resource group. "
                           f"List of available regions is '{names}'.")
    raise ArmError(400, "LocationNotAvailableForResourceType",
                       f"The provided location '{value}' is not available for resource type '{rtype}'. "
                       f"List of available regions for the resource type is '{names}'.")


def check_lookup_location(value: str, rtype: str, api_version: str) -> str:
    """A location-scoped lookup's location (e.g. locations/vmSizes), or NoRegisteredProviderFound."""
    name = normalize_location(value)
    if name in LOCATIONS:
        return name
    namespace, _, tail = rtype.partition("/")
    versions = PROVIDERS.get(namespace, {}).get(tail, ())
    raise ArmError(400, "NoRegisteredProviderFound",
                       f"No registered resource provider found for location '{value}' and API version "
                       f"'{api_version}' for type '{tail}'. The supported api-versions are "
                       f"'{', '.join(versions)}'. The supported locations are '{', '.join(LOCATIONS)}'.")


def check_vm(props: dict[str, Any]) -> None:
    """Refuse a VM body as the compute provider does: an unknown vmSize, no network
    interface, an image the marketplace does not have."""
    size = (props.get("hardwareProfile") or {}).get("vmSize")
    if size is not None and str(size).lower() not in {s.lower() for s in VM_SIZES}:
        raise ArmError(400, "InvalidParameter",
                           f"The value {size} provided for the VM size is not valid. The valid sizes in the "
                           f"current region are: {','.join(VM_SIZES)}.", "vmSize")
    network = props.get("networkProfile") or {}
    if not network.get("networkInterfaces") and not network.get("networkInterfaceConfigurations"):
        raise ArmError(400, "InvalidParameter", "Required parameter 'networkProfile' is missing (null).",
                           "networkProfile")
    image = (props.get("storageProfile") or {}).get("imageReference") or {}
    if image.get("id") or image.get("sharedGalleryImageId") or image.get("communityGalleryImageId") or not image:
        return
    publisher, offer, sku = (str(image.get(k) or "") for k in ("publisher", "offer", "sku"))
    version = str(image.get("version") or "latest")
    skus = IMAGES.get((publisher.lower(), offer.lower()), ())
    if sku.lower() not in {s.lower() for s in skus} or not _VERSION.fullmatch(version):
        raise ArmError(404, "PlatformImageNotFound",
                           f"The platform image '{publisher}:{offer}:{sku}:{version}' is not available. Verify "
                           "that all fields in the storage profile are correct. For more details about storage "
                           "profile information, please refer to https://aka.ms/storageprofile",
                           "imageReference")


# --- what the lookups answer ----------------------------------------------------------


def locations_body(sub: str) -> dict[str, Any]:
    """GET /subscriptions/{sub}/locations."""
    out = []
    for loc in LOCATIONS.values():
        metadata: dict[str, Any] = {
            "regionType": "Physical", "regionCategory": "Recommended", "geographyGroup": loc.geography,
            "longitude": str(loc.lon), "latitude": str(loc.lat), "physicalLocation": loc.physical,
        }
        if loc.pair:
            metadata["pairedRegion"] = [{"name": loc.pair, "id": f"/subscriptions/{sub}/locations/{loc.pair}"}]
        item: dict[str, Any] = {
            "id": f"/subscriptions/{sub}/locations/{loc.name}", "name": loc.name, "type": "Region",
            "displayName": loc.display, "regionalDisplayName": f"({loc.geography}) {loc.display}",
            "metadata": metadata,
        }
        if loc.zones:
            item["availabilityZoneMappings"] = [{"logicalZone": z, "physicalZone": f"{loc.name}-az{z}"}
                                                for z in ("1", "2", "3")]
        out.append(item)
    return {"value": out}


def provider_body(sub: str, namespace: str) -> dict[str, Any]:
    """GET /subscriptions/{sub}/providers/{namespace}; ArmError for one not served."""
    known = {n.lower(): n for n in PROVIDERS}
    name = known.get(namespace.lower())
    if name is None:
        raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
    displays = [loc.display for loc in LOCATIONS.values()]
    types = []
    for rtype, versions in PROVIDERS[name].items():
        entry: dict[str, Any] = {"resourceType": rtype, "locations": displays, "apiVersions": list(versions)}
        if rtype in ("virtualMachines", "disks", "publicIPAddresses"):
            entry["zoneMappings"] = [{"location": loc.display, "zones": ["1", "2", "3"]}
                                     for loc in LOCATIONS.values() if loc.zones]
        types.append(entry)
    return {"id": f"/subscriptions/{sub}/providers/{name}", "namespace": name,
            "registrationState": "Registered", "registrationPolicy": "RegistrationRequired",
            "resourceTypes": types}


def vm_sizes_body() -> dict[str, Any]:
    """GET .../providers/Microsoft.Compute/locations/{loc}/vmSizes (location already checked)."""
    return {"value": [{"name": name, "numberOfCores": cores, "osDiskSizeInMB": OS_DISK_MB,
                       "resourceDiskSizeInMB": temp, "memoryInMB": mem, "maxDataDiskCount": disks}
                      for name, (cores, mem, disks, temp) in VM_SIZES.items()]}
