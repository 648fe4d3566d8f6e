"""The GCP emulator's read-only lookups, served from its catalog: zones, regions, machine
types, disk types, public images (get, getFromFamily, list), and operation lists."""

from __future__ import annotations

from collections.abc import Callable

from . import gcp_catalog as catalog
from .emulator import Request, Response
from .gcp_common import not_found
from .gcp_state import GcpState, rel_of


class LookupApi(GcpState):
    """Handlers of the catalog's read-only methods and of *Operations.list."""

    def lookup_handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        return {
            "compute.zones.list": lambda r, p: self._list(
                r, [catalog.zone_body(p["project"], z) for z in catalog.zones()], "compute#zoneList"),
            "compute.zones.get": lambda r, p: self._known(r, catalog.zone_known(p["zone"]),
                                                          lambda: catalog.zone_body(p["project"], p["zone"])),
            "compute.regions.list": lambda r, p: self._list(
                r, [catalog.region_body(p["project"], x) for x in catalog.ZONE_LETTERS], "compute#regionList"),
            "compute.regions.get": lambda r, p: self._known(
                r, catalog.region_known(p["region"]), lambda: catalog.region_body(p["project"], p["region"])),
            "compute.machineTypes.list": lambda r, p: self._list(
                r, [catalog.machine_type_body(p["project"], p["zone"], m) for m in catalog.MACHINE_TYPES.values()],
                "compute#machineTypeList"),
            "compute.machineTypes.get": lambda r, p: self._known(
                r, p["machineType"] in catalog.MACHINE_TYPES,
                lambda: catalog.machine_type_body(p["project"], p["zone"], catalog.MACHINE_TYPES[p["machineType"]])),
            "compute.machineTypes.aggregatedList": lambda r, p: self._aggregated(
                r, p["project"], [catalog.machine_type_body(p["project"], z, m) | {"zone": z}
                                  for z in catalog.zones() for m in catalog.MACHINE_TYPES.values()],
                "compute#machineTypeAggregatedList", "machineTypes"),
            "compute.diskTypes.list": lambda r, p: self._list(
                r, [catalog.disk_type_body(p["project"], p["zone"], d) for d in catalog.DISK_TYPES.values()],
                "compute#diskTypeList"),
            "compute.diskTypes.get": lambda r, p: self._known(
                r, p["diskType"] in catalog.DISK_TYPES,
                lambda: catalog.disk_type_body(p["project"], p["zone"], catalog.DISK_TYPES[p["diskType"]])),
            "compute.images.get": self._image_get,
            "compute.images.getFromFamily": self._image_from_family,
            "compute.images.list": lambda r, p: self._list(
                r, [catalog.image_body(i) for i in catalog.IMAGES if i.project == p["project"]], "compute#imageList"),
            "compute.globalOperations.list": self._op_list,
            "compute.regionOperations.list": self._op_list,
            "compute.zoneOperations.list": self._op_list,
        }

    @staticmethod
    def _known(request: Request, known: bool, body: Callable[[], dict[str, object]]) -> Response:
        if not known:
            raise not_found(rel_of(request))
        return Response(200, body())

    @staticmethod
    def _image_get(request: Request, p: dict[str, str]) -> Response:
        found = catalog.image(p["project"], p["image"])
        if found is None:
            raise not_found(rel_of(request))
        return Response(200, catalog.image_body(found))

    @staticmethod
    def _image_from_family(request: Request, p: dict[str, str]) -> Response:
        found = catalog.family_image(p["project"], p["family"])
        if found is None:
            raise not_found(rel_of(request))
        return Response(200, catalog.image_body(found))
