"""The GCP emulator's instances and their disks: insert (checked against the catalog: machine
type, image, disk type, all as the API refuses them), get, list, aggregatedList, delete,
setMetadata (with the fingerprint of the metadata it replaces); the
boot disk an insert makes is a disk of its own (disks.get/list/aggregatedList/delete), shown
on the instance in the attached-disk form the API uses."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from . import gcp_catalog as catalog
from .emulator import AddressPool, Request, Response
from .gcp_common import (
    ApiError,
    fingerprint,
    in_project,
    link,
    not_found,
    region_of_zone,
    rel,
    timestamp,
    valid_labels,
    valid_name,
)
from .gcp_state import GcpState, Instance, rel_of

MACHINE_TYPE_RE = re.compile(r"(?:.*/)?zones/([^/]+)/machineTypes/([^/]+)")
DISK_TYPE_RE = re.compile(r"(?:.*/)?zones/([^/]+)/diskTypes/([^/]+)")


def _invalid(what: str, value: Any, why: str) -> ApiError:
    return ApiError(400, "invalid", f"Invalid value for field 'resource.{what}': '{value}'. {why}")


class InstanceApi(GcpState):
    """Handlers of compute.instances.* and compute.disks.*."""

    boot_delay: float
    _public: AddressPool

    def instance_handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        return {
            "compute.instances.insert": self._instance_insert,
            "compute.instances.get": self._instance_get,
            "compute.instances.list": lambda r, p: self._list(
                r, [self.render_instance(i) for k, i in self._store.instances.items() if k.startswith(rel_of(r) + "/")],
                "compute#instanceList"),
            "compute.instances.aggregatedList": lambda r, p: self._aggregated(
                r, p["project"], [self.render_instance(i) for k, i in self._store.instances.items()
                                  if k.startswith(f"projects/{p['project']}/")],
                "compute#instanceAggregatedList", "instances"),
            "compute.instances.delete": self._instance_delete,
            "compute.instances.setMetadata": self._instance_set_metadata,
            "compute.disks.get": lambda r, p: self._get(self._store.disks, rel_of(r)),
            "compute.disks.list": lambda r, p: self._list(
                r, [d for k, d in self._store.disks.items() if k.startswith(rel_of(r) + "/")], "compute#diskList"),
            "compute.disks.aggregatedList": lambda r, p: self._aggregated(
                r, p["project"], [d for k, d in self._store.disks.items() if k.startswith(f"projects/{p['project']}/")],
                "compute#diskAggregatedList", "disks"),
            "compute.disks.delete": self._disk_delete,
        }

    def render_instance(self, inst: Instance) -> dict[str, Any]:
        now = time.monotonic()
        if inst.deleting:
            status = "STOPPING"
        elif now >= inst.running_at:
            status = "RUNNING"
        elif now >= inst.staging_at:
            status = "STAGING"
        else:
            status = "PROVISIONING"
        return {**inst.body, "status": status}

    # --- insert ------------------------------------------------------------------------

    def _instance_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        project, zone = p["project"], p["zone"]
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{project}/zones/{zone}/instances/{name}"
        machine = self._machine_type(zone, body.get("machineType") or "")
        labels = valid_labels(body.get("labels"))
        tags = [valid_name(t, "tags.items") for t in (body.get("tags") or {}).get("items", [])]
        if key in self._store.instances:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        disks = self._disks(project, zone, name, body.get("disks") or [])
        nic = self._nic(project, zone, body.get("networkInterfaces") or [])
        instance_id = str(next(self._ids))
        for disk_key, disk, _ in disks:
            self._store.disks[disk_key] = {**disk, "users": [link(key)]}
        items = (body.get("metadata") or {}).get("items") or []
        stored = {
            **body, "kind": "compute#instance", "id": instance_id, "creationTimestamp": timestamp(),
            "machineType": link(f"projects/{project}/zones/{zone}/machineTypes/{machine.name}"),
            "zone": link(f"projects/{project}/zones/{zone}"), "selfLink": link(key),
            "networkInterfaces": [nic], "disks": [attached for _, _, attached in disks],
            "canIpForward": bool(body.get("canIpForward", False)),
            "scheduling": {"onHostMaintenance": "MIGRATE", "automaticRestart": True, "preemptible": False,
                           "provisioningModel": "STANDARD", **(body.get("scheduling") or {})},
            "tags": {**({"items": tags} if tags else {}), "fingerprint": fingerprint(tags)},
            "metadata": {"kind": "compute#metadata", "fingerprint": fingerprint(items),
                         **({"items": items} if items else {})},
            "labelFingerprint": fingerprint(labels), "cpuPlatform": catalog.CPU_PLATFORMS[0],
            "startRestricted": False, "deletionProtection": bool(body.get("deletionProtection", False)),
        }
        stored["fingerprint"] = fingerprint(stored)
        now = time.monotonic()
        op = self._operation(project, "zones", zone, "insert", key, None, request.arg("requestId"),
                             target_id=instance_id)
        self._store.instances[key] = Instance(body=stored, staging_at=now + (op.done_at - now) / 2,
                                              running_at=op.done_at + self.boot_delay)
        return self._op_reply(op)

    @staticmethod
    def _machine_type(zone: str, ref: str) -> catalog.MachineType:
        found = MACHINE_TYPE_RE.fullmatch(rel(ref))
        if not found:
            raise _invalid("machineType", ref, "Machine type must be a URL of a machine type of the zone.")
        if found.group(1) != zone:
            raise _invalid("machineType", ref, f"Machine type zone '{found.group(1)}' does not match the "
                                               f"instance zone '{zone}'.")
        machine = catalog.MACHINE_TYPES.get(found.group(2))
        if machine is None:
            raise _invalid("machineType", ref, f"Machine type with name '{found.group(2)}' does not exist in "
                                               f"zone '{zone}'.")
        return machine

    def _disks(self, project: str, zone: str, instance: str,
               specs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(disk key, disk body, attached-disk form) for each disk of an insert, checked."""
        if sum(1 for d in specs if d.get("boot")) != 1:
            raise ApiError(400, "invalid",
                           "Invalid value for field 'resource.disks': exactly one boot disk is required")
        out = []
        for index, spec in enumerate(specs):
            where = f"disks[{index}]"
            if spec.get("source"):
                disk_key = in_project(project, spec["source"])
                disk = self._store.disks.get(disk_key)
                if disk is None:
                    raise not_found(disk_key)
                if disk.get("users"):
                    raise ApiError(400, "resourceInUseByAnotherResource", f"The disk resource '{disk_key}' is "
                                   f"already being used by '{rel(disk['users'][0])}'")
            else:
                disk_key, disk = self._new_disk(project, zone, instance, index, spec, where)
            attached = {
                "kind": "compute#attachedDisk", "type": spec.get("type", "PERSISTENT"),
                "mode": spec.get("mode", "READ_WRITE"), "source": link(disk_key),
                "deviceName": spec.get("deviceName") or f"persistent-disk-{index}", "index": index,
                "boot": bool(spec.get("boot", False)), "autoDelete": bool(spec.get("autoDelete", False)),
                "interface": spec.get("interface", "SCSI"), "diskSizeGb": disk["sizeGb"],
                **({"licenses": disk["licenses"]} if "licenses" in disk else {}),
                **({"architecture": disk["architecture"]} if "architecture" in disk else {}),
            }
            out.append((disk_key, disk, attached))
        return out

    def _new_disk(self, project: str, zone: str, instance: str, index: int, spec: dict[str, Any],
                  where: str) -> tuple[str, dict[str, Any]]:
        params = spec.get("initializeParams") or {}
        image = None
        if params.get("sourceImage"):
            image_ref = in_project(project, params["sourceImage"])
            image = catalog.resolve_image(image_ref)
            if image is None:
                raise not_found(image_ref)
        type_ref = params.get("diskType") or f"zones/{zone}/diskTypes/{catalog.DEFAULT_DISK_TYPE}"
        found = DISK_TYPE_RE.fullmatch(rel(type_ref))
        if not found or found.group(1) != zone:
            raise _invalid(f"{where}.initializeParams.diskType", type_ref,
                           f"Disk type must be a URL of a disk type of zone '{zone}'.")
        disk_type = catalog.DISK_TYPES.get(found.group(2))
        if disk_type is None:
            raise not_found(f"projects/{project}/zones/{zone}/diskTypes/{found.group(2)}")
        size = int(params.get("diskSizeGb") or (image.disk_gb if image else disk_type.default_gb))
        if image and size < image.disk_gb:
            raise _invalid(f"{where}.initializeParams.diskSizeGb", size, "Requested disk size cannot be "
                           f"smaller than the image size ({image.disk_gb} GB)")
        disk_name = valid_name(params.get("diskName") or (instance if spec.get("boot") else f"{instance}-{index}"),
                               f"{where}.initializeParams.diskName")
        disk_key = f"projects/{project}/zones/{zone}/disks/{disk_name}"
        if disk_key in self._store.disks:
            raise ApiError(409, "alreadyExists", f"The resource '{disk_key}' already exists")
        disk: dict[str, Any] = {
            "kind": "compute#disk", "id": str(next(self._ids)), "creationTimestamp": timestamp(),
            "name": disk_name, "sizeGb": str(size), "zone": link(f"projects/{project}/zones/{zone}"),
            "status": "READY", "selfLink": link(disk_key),
            "type": link(f"projects/{project}/zones/{zone}/diskTypes/{disk_type.name}"),
            "labelFingerprint": fingerprint(params.get("labels")), "physicalBlockSizeBytes": "4096",
            "lastAttachTimestamp": timestamp(),
        }
        if image:
            image_body = catalog.image_body(image)
            disk.update(sourceImage=image_body["selfLink"], sourceImageId=image_body["id"],
                        licenses=image_body["licenses"], guestOsFeatures=image_body["guestOsFeatures"],
                        architecture=image.architecture)
        return disk_key, disk

    def _nic(self, project: str, zone: str, nics: list[dict[str, Any]]) -> dict[str, Any]:
        if len(nics) != 1:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.networkInterfaces': the "
                                           "emulator supports exactly one network interface")
        nic = dict(nics[0])
        region = region_of_zone(zone)
        if nic.get("subnetwork"):
            sub_key = in_project(project, nic["subnetwork"])
        else:  # the network's subnetwork in the zone's region, as the API picks it
            network = in_project(project, nic.get("network") or "global/networks/default")
            sub_key = next((k for k, s in self._store.subnetworks.items()
                            if rel(s["network"]) == network and f"/regions/{region}/" in k), network)
        subnet = self._store.subnetworks.get(sub_key)
        if subnet is None:
            raise not_found(sub_key)
        if f"/regions/{region}/" not in sub_key:
            raise ApiError(400, "invalid", f"Subnetwork '{sub_key}' is not in the region of zone {zone}")
        nic.update(kind="compute#networkInterface", network=subnet["network"], subnetwork=link(sub_key),
                   name="nic0", networkIP=self._store.private_pools[sub_key].next(), stackType="IPV4_ONLY")
        nic["accessConfigs"] = [
            {"type": "ONE_TO_ONE_NAT", "name": "External NAT", "networkTier": "PREMIUM", **a,
             "kind": "compute#accessConfig", "natIP": a.get("natIP") or self._public.next()}
            for a in nic.get("accessConfigs", [])
        ]
        nic["fingerprint"] = fingerprint(nic)
        return nic

    # --- get, delete ---------------------------------------------------------------------

    def _instance_get(self, request: Request, p: dict[str, str]) -> Response:
        inst = self._store.instances.get(rel_of(request))
        if inst is None:
            raise not_found(rel_of(request))
        return Response(200, self.render_instance(inst))

    def _instance_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        inst = self._store.instances.get(key)
        if inst is None:
            raise not_found(key)
        inst.deleting = True

        def gone() -> None:
            self._store.instances.pop(key, None)
            for attached in inst.body["disks"]:
                disk_key = rel(attached["source"])
                if attached["autoDelete"]:
                    self._store.disks.pop(disk_key, None)
                elif disk_key in self._store.disks:
                    self._store.disks[disk_key]["users"] = []

        op = self._operation(p["project"], "zones", p["zone"], "delete", key, gone, request.arg("requestId"))
        return self._op_reply(op)

    def _instance_set_metadata(self, request: Request, p: dict[str, str]) -> Response:
        """instances.setMetadata: replaces every item; the body's fingerprint must be the
        current one (412 conditionNotMet otherwise, as the API answers a stale read)."""
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request).removesuffix("/setMetadata")
        inst = self._store.instances.get(key)
        if inst is None:
            raise not_found(key)
        body = request.json()
        current = inst.body["metadata"]
        if body.get("fingerprint") != current["fingerprint"]:
            raise ApiError(412, "conditionNotMet",
                           "Supplied fingerprint does not match current metadata fingerprint.")
        items = body.get("items") or []
        keys = [i.get("key") for i in items]
        if len(set(keys)) != len(keys) or not all(isinstance(k, str) and k for k in keys):
            raise _invalid("metadata.items", keys, "Metadata keys must be unique, non-empty strings.")

        def apply() -> None:
            inst.body["metadata"] = {"kind": "compute#metadata", "fingerprint": fingerprint(items),
                                     **({"items": items} if items else {})}
            inst.body["fingerprint"] = fingerprint({k: v for k, v in inst.body.items() if k != "fingerprint"})

        op = self._operation(p["project"], "zones", p["zone"], "setMetadata", key, apply, request.arg("requestId"))
        return self._op_reply(op)

    def _disk_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        disk = self._store.disks.get(key)
        if disk is None:
            raise not_found(key)
        if disk.get("users"):
            raise ApiError(400, "resourceInUseByAnotherResource",
                           f"The disk resource '{key}' is already being used by '{rel(disk['users'][0])}'")
        del self._store.disks[key]
        op = self._operation(p["project"], "zones", p["zone"], "delete", key, None, request.arg("requestId"),
                             target_id=disk["id"])
        return self._op_reply(op)
