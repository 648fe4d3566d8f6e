"""The DigitalOcean emulator's tags and firewalls: what ties resources together by tag.

- Tags: create, get (with `resources` counts and the last tagged droplet's URI), list,
  delete, and tagging or untagging droplets (`POST|DELETE /v2/tags/{tag}/resources`).
- Firewalls: create, get, list, update, delete, and their tags
  (`POST|DELETE /v2/firewalls/{id}/tags`). Every tag a firewall names must exist (422
  otherwise, as on the API); `created_at` is fixed at creation.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol

from .do_wire import error, iso, not_found, page
from .emulator import Request, Response


class _Tagged(Protocol):
    id: int
    tags: list[str]


class TagsAndFirewalls:
    """A mixin of the emulator: it provides `tags`, `droplets`, `firewalls` and `url`."""

    tags: set[str]
    droplets: dict[int, Any]
    firewalls: dict[str, dict[str, Any]]
    url: str

    # --- tags --------------------------------------------------------------------------

    def _tag_json(self, name: str) -> dict[str, Any]:
        tagged = [d for d in self.droplets.values() if name in d.tags]
        droplets: dict[str, Any] = {"count": len(tagged)}
        if tagged:
            droplets["last_tagged_uri"] = f"{self.url}/v2/droplets/{tagged[-1].id}"
        return {"name": name, "resources": {**droplets, "droplets": dict(droplets)}}

    def _post_tags(self, request: Request, body: dict[str, Any]) -> Response:
        self.tags.add(body["name"])
        return Response(201, {"tag": self._tag_json(body["name"])})

    def _get_tags(self, request: Request, body: Any) -> Response:
        return page(request, self.url, "tags", [self._tag_json(t) for t in sorted(self.tags)])

    def _get_tags_id(self, request: Request, body: Any, name: str) -> Response:
        return Response(200, {"tag": self._tag_json(name)}) if name in self.tags else not_found()

    def _delete_tags_id(self, request: Request, body: Any, name: str) -> Response:
        if name not in self.tags:
            return not_found()
        self.tags.discard(name)
        for d in self.droplets.values():
            d.tags = [t for t in d.tags if t != name]
        for fw in self.firewalls.values():
            fw["tags"] = [t for t in fw["tags"] if t != name]
        return Response(204)

    def _tag_targets(self, body: dict[str, Any]) -> list[_Tagged] | Response:
        targets = []
        for resource in body.get("resources") or []:
            if not isinstance(resource, dict):
                return error(400, "bad_request", "resources must be objects with resource_id and resource_type.")
            rid = str(resource.get("resource_id", ""))
            if resource.get("resource_type", "droplet") != "droplet":
                continue  # the emulator holds no images, volumes or snapshots to tag
            droplet = self.droplets.get(int(rid)) if rid.isdigit() else None
            if droplet is None:
                return error(404, "not_found", f"droplet {rid} could not be found.")
            targets.append(droplet)
        return targets

    def _post_tags_id_resources(self, request: Request, body: dict[str, Any], name: str) -> Response:
        return self._retag(body, name, tag=True)

    def _delete_tags_id_resources(self, request: Request, body: dict[str, Any], name: str) -> Response:
        return self._retag(body, name, tag=False)

    def _retag(self, body: dict[str, Any], name: str, *, tag: bool) -> Response:
        """Tag (or untag) the resources `body` names with the existing tag `name`."""
        if name not in self.tags:
            return not_found()
        targets = self._tag_targets(body)
        if isinstance(targets, Response):
            return targets
        for d in targets:
            if not tag:
                d.tags = [t for t in d.tags if t != name]
            elif name not in d.tags:
                d.tags.append(name)
        return Response(204)

    # --- firewalls ---------------------------------------------------------------------

    def _missing_tags(self, tags: list[str]) -> Response | None:
        missing = [t for t in tags if t not in self.tags]
        if missing:
            return error(422, "unprocessable_entity", f"tag(s) not found: {', '.join(missing)}")
        return None

    def _firewall_from(self, body: dict[str, Any], fw_id: str, created_at: str) -> dict[str, Any] | Response:
        tags = list(body.get("tags") or [])
        refused = self._missing_tags(tags)
        if refused:
            return refused
        return {
            "id": fw_id, "name": body["name"], "status": "succeeded", "created_at": created_at,
            "pending_changes": [], "droplet_ids": list(body.get("droplet_ids") or []), "tags": tags,
            "inbound_rules": list(body.get("inbound_rules") or []),
            "outbound_rules": list(body.get("outbound_rules") or []),
        }

    def _post_firewalls(self, request: Request, body: dict[str, Any]) -> Response:
        fw = self._firewall_from(body, str(uuid.uuid4()), iso(time.time()))
        if isinstance(fw, Response):
            return fw
        self.firewalls[fw["id"]] = fw
        return Response(202, {"firewall": fw})

    def _get_firewalls(self, request: Request, body: Any) -> Response:
        return page(request, self.url, "firewalls", list(self.firewalls.values()))

    def _get_firewalls_id(self, request: Request, body: Any, fw_id: str) -> Response:
        fw = self.firewalls.get(fw_id)
        return Response(200, {"firewall": fw}) if fw else not_found()

    def _put_firewalls_id(self, request: Request, body: dict[str, Any], fw_id: str) -> Response:
        if fw_id not in self.firewalls:
            return not_found()
        fw = self._firewall_from(body, fw_id, self.firewalls[fw_id]["created_at"])
        if isinstance(fw, Response):
            return fw
        self.firewalls[fw_id] = fw
        return Response(200, {"firewall": fw})

    def _delete_firewalls_id(self, request: Request, body: Any, fw_id: str) -> Response:
        if self.firewalls.pop(fw_id, None) is None:
            return not_found()
        return Response(204)

    def _post_firewalls_id_tags(self, request: Request, body: dict[str, Any], fw_id: str) -> Response:
        fw = self.firewalls.get(fw_id)
        if fw is None:
            return not_found()
        refused = self._missing_tags(list(body.get("tags") or []))
        if refused:
            return refused
        fw["tags"] += [t for t in body.get("tags") or [] if t not in fw["tags"]]
        return Response(204)

    def _delete_firewalls_id_tags(self, request: Request, body: dict[str, Any], fw_id: str) -> Response:
        fw = self.firewalls.get(fw_id)
        if fw is None:
            return not_found()
        fw["tags"] = [t for t in fw["tags"] if t not in (body.get("tags") or [])]
        return Response(204)
