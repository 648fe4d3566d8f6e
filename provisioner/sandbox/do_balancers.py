"""The DigitalOcean emulator's load balancers (/v2/load_balancers).

- Create names its droplets by `tag` (every droplet carrying it, now and later) or by
  `droplet_ids` (not both), a `region` of the catalog that takes new resources, and at least
  one forwarding rule; a `vpc_uuid` must be a VPC of that region (without one it goes into
  the region's default VPC). Refusals are the API's 422 `unprocessable_entity`.
- A balancer is `new` (its `ip` empty) for `lb_delay_s`, then `active` with a public IPv4
  from the emulator's public pool (the DigitalOcean sandbox pool, shared with droplets).
- Get, list (paged), update (PUT: the whole description again; its ip and created_at stay),
  delete; droplets added and removed by id (`POST|DELETE .../droplets`, refused for a
  balancer that selects by tag) and forwarding rules added and removed.
- Every answer has the fields the API always sends (its examples in the OpenAPI
  description): defaults filled in for the health check, sticky sessions, the firewall, the
  size and the flags.
- `balancers_for_sandbox` is what the control route GET /_emulator/load-balancers shows: the
  active balancers with their forwards, health check and backends (the active droplets).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from . import do_catalog as catalog
from .do_wire import error, iso, not_found, page, unprocessable
from .emulator import AddressPool, Request, Response

HEALTH_DEFAULTS = {"protocol": "http", "port": 80, "path": "/", "check_interval_seconds": 10,
                   "response_timeout_seconds": 5, "healthy_threshold": 3, "unhealthy_threshold": 5}
FLAG_DEFAULTS = {"redirect_http_to_https": False, "enable_proxy_protocol": False, "enable_backend_keepalive": False,
                 "disable_lets_encrypt_dns_records": False, "http_idle_timeout_seconds": 60}
SETTING_DEFAULTS = {"size_unit": 1, "size": "lb-small", "algorithm": "round_robin", "network": "EXTERNAL",
                    "network_stack": "IPV4", "type": "REGIONAL", "tls_cipher_policy": "DEFAULT"}
PROJECT_ID = "a1b2c3d4-0000-4000-8000-00000000cafe"  # the account's default project here
BOTH_SELECTORS = "Load balancers may select droplets by tag or by droplet_ids, not both."
TAGGED_NO_IDS = "This load balancer selects its droplets by tag: droplets cannot be added or removed by id."


class LoadBalancers:
    """A mixin of the emulator, which provides the attributes below, `_default_vpc` and
    `_advance` (it calls `_activate_balancers`)."""

    balancers: dict[str, dict[str, Any]]
    droplets: dict[int, Any]
    vpcs: dict[str, Any]
    url: str
    lb_delay_s: float
    _public: AddressPool

    def _default_vpc(self, region: str) -> Any:
        raise NotImplementedError

    # --- state -------------------------------------------------------------------------

    def _activate_balancers(self, now: float) -> None:
        for lb in self.balancers.values():
            if lb["status"] == "new" and now >= lb["_active_at"]:
                lb["status"], lb["ip"] = "active", self._public.next()

    def _backend_ids(self, lb: dict[str, Any]) -> list[int]:
        if lb["tag"]:
            return [d.id for d in self.droplets.values() if lb["tag"] in d.tags]
        return [i for i in lb["_droplet_ids"] if i in self.droplets]

    def _lb_json(self, lb: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in lb.items() if not k.startswith("_")}
        shown["region"] = catalog.region_json(lb["_region"])
        shown["droplet_ids"] = self._backend_ids(lb)
        return shown

    # --- checks ------------------------------------------------------------------------

    @staticmethod
    def _rule_refusal(rules: list[dict[str, Any]]) -> str | None:
        """The API's refusal of these forwarding rules, or None."""
        if not rules:
            return "At least one forwarding rule is required."
        entries = [r["entry_port"] for r in rules]
        if len(set(entries)) != len(entries):
            return "Forwarding rules must not share an entry port."
        for r in rules:
            for side in ("entry", "target"):
                if not 1 <= r[f"{side}_port"] <= 65535:
                    return f"forwarding_rules: {side}_port {r[f'{side}_port']} must be between 1 and 65535."
            low = {r["entry_protocol"], r["target_protocol"]}
            if ("tcp" in low or "udp" in low) and len(low) != 1:
                return (f"forwarding_rules: entry_protocol {r['entry_protocol']} cannot forward to "
                        f"target_protocol {r['target_protocol']}.")
            if r["entry_protocol"] in ("https", "http2", "http3") and not r.get("tls_passthrough") \
                    and not r.get("certificate_id"):
                return "forwarding_rules: a certificate_id is required for SSL termination."
            if r.get("certificate_id"):
                return f"certificate {r['certificate_id']} could not be found."  # the emulator holds none
        return None

    def _lb_refusal(self, body: dict[str, Any]) -> str | None:
        if "tag" in body and "droplet_ids" in body:
            return BOTH_SELECTORS
        region = body.get("region", "")
        if region not in catalog.REGIONS or not catalog.REGIONS[region][1]:
            return catalog.REGION_UNAVAILABLE
        missing = [i for i in body.get("droplet_ids") or [] if i not in self.droplets]
        if missing:
            return f"Droplet {missing[0]} could not be found."
        elsewhere = [i for i in body.get("droplet_ids") or [] if self.droplets[i].region != region]
        if elsewhere:
            return f"Droplet {elsewhere[0]} is not in the region {region} of the load balancer."
        vpc = self.vpcs.get(body["vpc_uuid"]) if "vpc_uuid" in body else None
        if "vpc_uuid" in body and (vpc is None or vpc.region != region):
            return "You specified an invalid VPC UUID for this region."
        return self._rule_refusal(list(body.get("forwarding_rules") or []))

    def _described(self, body: dict[str, Any], lb_id: str, created_at: str) -> dict[str, Any]:
        """The balancer `body` describes (refusal already checked), without its state."""
        rules = [{"certificate_id": "", "tls_passthrough": False, **r} for r in body["forwarding_rules"]]
        sticky = {"type": "none", **(body.get("sticky_sessions") or {})}
        vpc = body.get("vpc_uuid") or self._default_vpc(body["region"]).id
        lb: dict[str, Any] = {"id": lb_id, "name": body["name"], "ip": "", "status": "new", "created_at": created_at}
        lb.update({k: body.get(k, v) for k, v in SETTING_DEFAULTS.items()})
        lb.update(forwarding_rules=rules, health_check={**HEALTH_DEFAULTS, **(body.get("health_check") or {})},
                  sticky_sessions=sticky, tag=body.get("tag", ""), vpc_uuid=vpc,
                  project_id=body.get("project_id", PROJECT_ID),
                  firewall={"allow": [], "deny": [], **(body.get("firewall") or {})})
        lb.update({k: body.get(k, v) for k, v in FLAG_DEFAULTS.items()})
        lb.update(_region=body["region"], _droplet_ids=list(body.get("droplet_ids") or []),
                  _active_at=time.monotonic() + self.lb_delay_s)
        return lb

    # --- routes ------------------------------------------------------------------------

    def _post_load_balancers(self, request: Request, body: dict[str, Any]) -> Response:
        refused = self._lb_refusal(body)
        if refused:
            return unprocessable(refused)
        lb = self._described(body, str(uuid.uuid4()), iso(time.time()))
        self.balancers[lb["id"]] = lb
        return Response(202, {"load_balancer": self._lb_json(lb)})

    def _get_load_balancers(self, request: Request, body: Any) -> Response:
        return page(request, self.url, "load_balancers", [self._lb_json(lb) for lb in self.balancers.values()])

    def _get_load_balancers_id(self, request: Request, body: Any, lb_id: str) -> Response:
        lb = self.balancers.get(lb_id)
        return Response(200, {"load_balancer": self._lb_json(lb)}) if lb else not_found()

    def _put_load_balancers_id(self, request: Request, body: dict[str, Any], lb_id: str) -> Response:
        old = self.balancers.get(lb_id)
        if old is None:
            return not_found()
        refused = self._lb_refusal(body)
        if refused:
            return unprocessable(refused)
        if body["region"] != old["_region"]:
            return unprocessable("The region of a load balancer cannot be changed.")
        lb = self._described(body, lb_id, old["created_at"])
        lb.update(ip=old["ip"], status=old["status"], _active_at=old["_active_at"])
        self.balancers[lb_id] = lb
        return Response(200, {"load_balancer": self._lb_json(lb)})

    def _delete_load_balancers_id(self, request: Request, body: Any, lb_id: str) -> Response:
        if self.balancers.pop(lb_id, None) is None:
            return not_found()
        return Response(204)

    def _by_id(self, lb_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]] | Response:
        lb = self.balancers.get(lb_id)
        if lb is None:
            return not_found()
        if lb["tag"]:
            return unprocessable(TAGGED_NO_IDS)
        ids = list(body.get("droplet_ids") or [])
        missing = [i for i in ids if i not in self.droplets]
        if missing:
            return unprocessable(f"Droplet {missing[0]} could not be found.")
        return lb, ids

    def _post_load_balancers_id_droplets(self, request: Request, body: dict[str, Any], lb_id: str) -> Response:
        found = self._by_id(lb_id, body)
        if isinstance(found, Response):
            return found
        lb, ids = found
        lb["_droplet_ids"] += [i for i in ids if i not in lb["_droplet_ids"]]
        return Response(204)

    def _delete_load_balancers_id_droplets(self, request: Request, body: dict[str, Any], lb_id: str) -> Response:
        found = self._by_id(lb_id, body)
        if isinstance(found, Response):
            return found
        lb, ids = found
        lb["_droplet_ids"] = [i for i in lb["_droplet_ids"] if i not in ids]
        return Response(204)

    def _post_load_balancers_id_forwarding_rules(self, request: Request, body: dict[str, Any],
                                                 lb_id: str) -> Response:
        lb = self.balancers.get(lb_id)
        if lb is None:
            return not_found()
        added = [{"certificate_id": "", "tls_passthrough": False, **r} for r in body.get("forwarding_rules") or []]
        refused = self._rule_refusal(lb["forwarding_rules"] + added)
        if refused:
            return unprocessable(refused)
        lb["forwarding_rules"] += added
        return Response(204)

    def _delete_load_balancers_id_forwarding_rules(self, request: Request, body: dict[str, Any],
                                                   lb_id: str) -> Response:
        lb = self.balancers.get(lb_id)
        if lb is None:
            return not_found()
        gone = {(r.get("entry_protocol"), r.get("entry_port")) for r in body.get("forwarding_rules") or []}
        kept = [r for r in lb["forwarding_rules"] if (r["entry_protocol"], r["entry_port"]) not in gone]
        if not kept:
            return error(422, "unprocessable_entity", "At least one forwarding rule is required.")
        lb["forwarding_rules"] = kept
        return Response(204)

    # --- the sandbox's view ------------------------------------------------------------

    def balancers_for_sandbox(self) -> list[dict[str, Any]]:
        """The active balancers as the supervisor forwards them (GET /_emulator/load-balancers)."""
        shown = []
        for lb in self.balancers.values():
            if lb["status"] != "active":
                continue
            backends = [self.droplets[i] for i in self._backend_ids(lb)]
            shown.append({
                "cloud": "digitalocean", "id": lb["id"], "address": lb["ip"],
                "forwards": [[r["entry_port"], r["target_port"]] for r in lb["forwarding_rules"]],
                "health": {"port": lb["health_check"]["port"], "path": lb["health_check"]["path"]},
                "backends": [{"name": d.name, "private_ip": d.private_ip, "public_ip": d.public_ip}
                             for d in backends if d.active],
            })
        return shown
