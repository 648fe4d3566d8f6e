"""The DigitalOcean emulator's droplets, their actions and the catalog they are made from.

- Droplets: several at once by `names` (ten at most, as the API reference says); listed by
  `tag_name` or `name`, paged; deleted one by one or by tag. A create names a region, size
  and image of the catalog (do_catalog), else the API's 422; without `vpc_uuid` it goes into
  the region's default VPC. Each carries the full `image`, `size` and `region` objects and
  keeps its `created_at`.
- Actions: each create has one, `in-progress` until its droplet is up, then `completed`;
  served under /v2/actions and /v2/droplets/{id}/actions.
- The catalog: /v2/regions, /v2/sizes, /v2/images (type and private filters, paged).
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from . import do_catalog as catalog
from .do_wire import iso, not_found, page, unprocessable
from .emulator import Request, Response


@dataclass
class Droplet:
    id: int
    name: str
    region: str
    size: str
    image: str
    vpc_uuid: str
    tags: list[str]
    user_data: str
    ssh_keys: list[str]  # public keys
    created_at: float  # unix time
    active_at: float  # monotonic
    public_ip: str | None = None
    private_ip: str | None = None
    netmask: str = ""
    actions: list[int] = field(default_factory=list)  # ids of its actions
    features: list[str] = field(default_factory=lambda: ["private_networking"])

    @property
    def active(self) -> bool:
        return self.public_ip is not None


class DropletsAndCatalog:
    """A mixin of the emulator, which provides the attributes below and `_key` (an SSH key
    by id or fingerprint) and `_default_vpc` (a region's default VPC, made if need be)."""

    vpcs: dict[str, Any]
    droplets: dict[int, Droplet]
    actions: dict[int, dict[str, Any]]
    tags: set[str]
    url: str
    public_gateway: str
    boot_delay_s: float
    member_linger_s: float
    droplet_limit: int
    _ids: itertools.count[int]
    _slow: dict[str, float]

    def _key(self, ident: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _default_vpc(self, region: str) -> Any:
        raise NotImplementedError

    # --- droplets ----------------------------------------------------------------------

    def _droplet_json(self, d: Droplet) -> dict[str, Any]:
        v4 = []
        if d.active:
            private = ipaddress.IPv4Network(self.vpcs[d.vpc_uuid].ip_range) if d.vpc_uuid in self.vpcs else None
            v4 = [
                {"ip_address": d.private_ip, "netmask": d.netmask, "type": "private",
                 "gateway": str(next(private.hosts())) if private else ""},
                {"ip_address": d.public_ip, "netmask": "255.255.255.0", "gateway": self.public_gateway,
                 "type": "public"},
            ]
        size = catalog.size_json(d.size)
        image = catalog.find_image(d.image)
        return {
            "id": d.id, "name": d.name, "memory": size["memory"], "vcpus": size["vcpus"], "disk": size["disk"],
            "disk_info": size["disk_info"], "locked": False, "status": "active" if d.active else "new",
            "kernel": None, "created_at": iso(d.created_at), "features": list(d.features),
            "backup_ids": [], "next_backup_window": None, "snapshot_ids": [],
            "image": catalog.image_json(image) if image else {}, "volume_ids": [], "size": size,
            "size_slug": d.size, "networks": {"v4": v4, "v6": []}, "region": catalog.region_json(d.region),
            "tags": list(d.tags), "vpc_uuid": d.vpc_uuid,
        }

    def _post_droplets(self, request: Request, body: dict[str, Any]) -> Response:
        names = body.get("names") or [body.get("name")]
        if not all(isinstance(n, str) and n for n in names):
            return unprocessable("name is required.")
        if len(names) > MAX_NAMES:  # "Up to ten Droplets may be created this way at a time."
            return unprocessable(TOO_MANY_NAMES)
        vpc = self.vpcs.get(body["vpc_uuid"]) if "vpc_uuid" in body else None
        if "vpc_uuid" in body and vpc is None:
            return unprocessable("You specified an invalid VPC UUID for Droplet creation.")
        region = body.get("region") or (vpc.region if vpc else "nyc3")
        refused = catalog.droplet_refusal(region, str(body.get("size")), body.get("image"))
        if refused:
            return unprocessable(refused)
        if vpc is not None and vpc.region != region:
            return unprocessable("The VPC you specified is not in the region of the Droplet.")
        keys = [(str(k), self._key(str(k))) for k in body.get("ssh_keys", [])]
        unknown = [ident for ident, key in keys if key is None]
        if unknown:
            return unprocessable(f"{', '.join(unknown)} are invalid key identifiers for Droplet creation.")
        if len(self.droplets) + len(names) > self.droplet_limit:
            return unprocessable(LIMIT_MESSAGE)
        vpc = vpc or self._default_vpc(region)
        tags = list(body.get("tags") or [])
        self.tags.update(tags)
        now = time.monotonic()
        made = []
        for name in names:
            delay = next((s for m, s in self._slow.items() if m in name), self.boot_delay_s)
            d = Droplet(
                id=next(self._ids), name=name, region=region, size=body["size"], image=str(body["image"]),
                vpc_uuid=vpc.id, tags=list(tags), user_data=body.get("user_data", ""),
                ssh_keys=[k["public_key"] for _, k in keys if k], created_at=time.time(), active_at=now + delay,
                features=[f for f in ("backups", "ipv6", "monitoring") if body.get(f) is True] + ["private_networking"],
            )
            self.droplets[d.id] = d
            made.append(d)
        actions = [self._action("create", d) for d in made]
        links = {"actions": [{"id": a["id"], "rel": "create", "href": f"{self.url}/v2/actions/{a['id']}"}
                             for a in actions]}
        if "names" in body:
            return Response(202, {"droplets": [self._droplet_json(d) for d in made], "links": links})
        return Response(202, {"droplet": self._droplet_json(made[0]), "links": links})

    def _get_droplets(self, request: Request, body: Any) -> Response:
        tag = request.arg("tag_name")
        name = request.arg("name")
        found = [
            d for d in self.droplets.values()
            if (tag is None or tag in d.tags) and (name is None or d.name.lower() == name.lower())
        ]
        return page(request, self.url, "droplets", [self._droplet_json(d) for d in found])

    def _droplet(self, droplet_id: str) -> Droplet | None:
        return self.droplets.get(int(droplet_id)) if droplet_id.isdigit() else None

    def _get_droplets_id(self, request: Request, body: Any, droplet_id: str) -> Response:
        d = self._droplet(droplet_id)
        return Response(200, {"droplet": self._droplet_json(d)}) if d else not_found()

    def _forget(self, d: Droplet) -> None:
        del self.droplets[d.id]
        if d.vpc_uuid in self.vpcs:
            until = time.monotonic() + self.member_linger_s
            self.vpcs[d.vpc_uuid].gone_members[d.id] = (until, d.name, iso(d.created_at))

    def _delete_droplets_id(self, request: Request, body: Any, droplet_id: str) -> Response:
        d = self._droplet(droplet_id)
        if d is None:
            return not_found()
        self._forget(d)
        return Response(204)

    def _delete_droplets(self, request: Request, body: Any) -> Response:
        tag = request.arg("tag_name")
        for d in [d for d in self.droplets.values() if tag in d.tags]:
            self._forget(d)
        return Response(204)

    def _get_droplets_id_actions(self, request: Request, body: Any, droplet_id: str) -> Response:
        d = self._droplet(droplet_id)
        if d is None:
            return not_found()
        return page(request, self.url, "actions", [self._action_json(self.actions[i]) for i in d.actions])

    def _get_droplets_id_actions_id(self, request: Request, body: Any, droplet_id: str, action_id: str) -> Response:
        d = self._droplet(droplet_id)
        if d is None or not action_id.isdigit() or int(action_id) not in d.actions:
            return not_found()
        return Response(200, {"action": self._action_json(self.actions[int(action_id)])})

    # --- catalog -----------------------------------------------------------------------

    def _get_regions(self, request: Request, body: Any) -> Response:
        return page(request, self.url, "regions", [catalog.region_json(r) for r in catalog.REGIONS])

    def _get_sizes(self, request: Request, body: Any) -> Response:
        return page(request, self.url, "sizes", [catalog.size_json(s) for s in catalog.SIZES])

    def _get_images(self, request: Request, body: Any) -> Response:
        private = (request.arg("private") or "").lower() == "true"
        kind = request.arg("type")
        listed = [] if request.arg("tag_name") else catalog.images_listed(kind, private)  # public images: untagged
        return page(request, self.url, "images", listed)

    def _get_images_id(self, request: Request, body: Any, ref: str) -> Response:
        image = catalog.find_image(ref)
        return Response(200, {"image": catalog.image_json(image)}) if image else not_found()

    # --- actions -----------------------------------------------------------------------

    def _action(self, kind: str, d: Droplet) -> dict[str, Any]:
        action: dict[str, Any] = {
            "id": next(self._ids), "type": kind, "started_at": iso(d.created_at), "resource_id": d.id,
            "resource_type": "droplet", "region_slug": d.region, "droplet": d,
        }
        self.actions[action["id"]] = action
        d.actions.append(action["id"])
        return self._action_json(action)

    def _action_json(self, action: dict[str, Any]) -> dict[str, Any]:
        """An action as the API shows it: in progress until its droplet is up."""
        d: Droplet = action["droplet"]
        done = d.active or d.id not in self.droplets
        shown = {k: v for k, v in action.items() if k != "droplet"}
        if done and "completed_at" not in action:
            action["completed_at"] = iso(time.time())
        shown.update(status="completed" if done else "in-progress", completed_at=action.get("completed_at"),
                     region=catalog.region_json(d.region))
        return shown

    def _get_actions(self, request: Request, body: Any) -> Response:
        return page(request, self.url, "actions", [self._action_json(a) for a in self.actions.values()])

    def _get_actions_id(self, request: Request, body: Any, action_id: str) -> Response:
        action = self.actions.get(int(action_id)) if action_id.isdigit() else None
        return Response(200, {"action": self._action_json(action)}) if action else not_found()


MAX_NAMES = 10
TOO_MANY_NAMES = "You can only create up to 10 Droplets at a time."  # the emulator's wording; the rule is the API's
LIMIT_MESSAGE = (
    "creating this/these droplet(s) will exceed your droplet limit. "
    "You may request a limit increase at the control panel."
)
