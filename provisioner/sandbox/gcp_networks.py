"""The GCP emulator's networks, subnetworks and firewalls: insert, get, list, update
(firewalls) and delete, refused as the API refuses them (names, CIDRs, overlaps, a network
or subnetwork still in use)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from .emulator import AddressPool, Request, Response
from .gcp_common import (
    ApiError,
    fingerprint,
    in_project,
    link,
    not_found,
    rel,
    timestamp,
    valid_cidr,
    valid_name,
)
from .gcp_state import GcpState, rel_of

PROTOCOLS = ("tcp", "udp", "icmp", "esp", "ah", "sctp", "ipip", "all")


class NetworkApi(GcpState):
    """Handlers of compute.networks.*, compute.subnetworks.* and compute.firewalls.*."""

    def network_handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        return {
            "compute.networks.insert": self._network_insert,
            "compute.networks.get": lambda r, p: self._get(self._store.networks, rel_of(r)),
            "compute.networks.list": lambda r, p: self._list(
                r, self._store.networks.values(), "compute#networkList"),
            "compute.networks.delete": self._network_delete,
            "compute.subnetworks.insert": self._subnetwork_insert,
            "compute.subnetworks.get": lambda r, p: self._get(self._store.subnetworks, rel_of(r)),
            "compute.subnetworks.list": lambda r, p: self._list(
                r, [v for k, v in self._store.subnetworks.items() if k.startswith(rel_of(r) + "/")],
                "compute#subnetworkList"),
            "compute.subnetworks.delete": self._subnetwork_delete,
            "compute.firewalls.insert": self._firewall_insert,
            "compute.firewalls.update": self._firewall_update,
            "compute.firewalls.get": lambda r, p: self._get(self._store.firewalls, rel_of(r)),
            "compute.firewalls.list": lambda r, p: self._list(
                r, self._store.firewalls.values(), "compute#firewallList"),
            "compute.firewalls.delete": self._firewall_delete,
        }

    # --- networks ----------------------------------------------------------------------

    def _network_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/global/networks/{name}"
        if key in self._store.networks:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        self._store.networks[key] = {
            "mtu": 1460, **body, "kind": "compute#network", "id": str(next(self._ids)), "selfLink": link(key),
            "autoCreateSubnetworks": bool(body.get("autoCreateSubnetworks", False)),
            "creationTimestamp": timestamp(), "selfLinkWithId": link(key),
            "routingConfig": body.get("routingConfig") or {"routingMode": "REGIONAL"},
            "networkFirewallPolicyEnforcementOrder": "AFTER_CLASSIC_FIREWALL",
        }
        op = self._operation(p["project"], "global", None, "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _network_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        if key not in self._store.networks:
            raise not_found(key)
        users = [s for s, sub in self._store.subnetworks.items() if rel(sub["network"]) == key]
        users += [f for f, fw in self._store.firewalls.items() if rel(fw["network"]) == key]
        users += [i for i, inst in self._store.instances.items()
                  if any(rel(n.get("network", "")) == key for n in inst.body["networkInterfaces"])]
        users += [g for g, group in self._store.instance_groups.items() if rel(group.get("network", "")) == key]
        if users:
            raise ApiError(400, "resourceInUseByAnotherResource",
                           f"The network resource '{key}' is already being used by '{users[0]}'")
        gone = self._store.networks.pop(key)
        op = self._operation(p["project"], "global", None, "delete", key, None, request.arg("requestId"),
                             target_id=gone["id"])
        return self._op_reply(op)

    def _network_ref(self, project: str, ref: str | None) -> str:
        key = in_project(project, ref or "global/networks/default")
        if key not in self._store.networks:
            raise not_found(key)
        return key

    # --- subnetworks -------------------------------------------------------------------

    def _subnetwork_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/regions/{p['region']}/subnetworks/{name}"
        cidr = valid_cidr(body.get("ipCidrRange"), "ipCidrRange", max_prefix=29)
        network = self._network_ref(p["project"], body.get("network"))
        if key in self._store.subnetworks:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        for other_key, other in self._store.subnetworks.items():
            if rel(other["network"]) == network and cidr.overlaps(ipaddress.IPv4Network(other["ipCidrRange"])):
                raise ApiError(400, "invalid", f"Invalid IPCidrRange: {cidr} conflicts with existing "
                                               f"subnetwork '{other_key}'")
        sub = {
            "privateIpGoogleAccess": False, "purpose": "PRIVATE", "stackType": "IPV4_ONLY", **body,
            "kind": "compute#subnetwork", "id": str(next(self._ids)), "creationTimestamp": timestamp(),
            "selfLink": link(key), "network": link(network),
            "region": link(f"projects/{p['project']}/regions/{p['region']}"),
            "ipCidrRange": str(cidr), "gatewayAddress": str(cidr.network_address + 1),
        }
        sub["fingerprint"] = fingerprint(sub)
        self._store.subnetworks[key] = sub
        self._store.private_pools[key] = AddressPool(str(cidr), first_host=2)
        self._store.networks[network].setdefault("subnetworks", []).append(link(key))
        op = self._operation(p["project"], "regions", p["region"], "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _subnetwork_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        sub = self._store.subnetworks.get(key)
        if sub is None:
            raise not_found(key)
        users = [i for i, inst in self._store.instances.items()
                 if any(rel(n.get("subnetwork", "")) == key for n in inst.body["networkInterfaces"])]
        if users:
            raise ApiError(400, "resourceInUseByAnotherResource",
                           f"The subnetwork resource '{key}' is already being used by '{users[0]}'")
        del self._store.subnetworks[key]
        net = self._store.networks.get(rel(sub["network"]))
        if net is not None:
            net["subnetworks"] = [s for s in net.get("subnetworks", []) if rel(s) != key]
        op = self._operation(p["project"], "regions", p["region"], "delete", key, None, request.arg("requestId"),
                             target_id=sub["id"])
        return self._op_reply(op)

    # --- firewalls ---------------------------------------------------------------------

    def _firewall_body(self, p: dict[str, str], body: dict[str, Any], key: str) -> dict[str, Any]:
        network = self._network_ref(p["project"], body.get("network"))
        for rule in body.get("allowed", []):
            if rule.get("IPProtocol") not in PROTOCOLS:
                raise ApiError(400, "invalid", f"Invalid value for field 'resource.allowed.IPProtocol': "
                                               f"{rule.get('IPProtocol')!r}")
            for ports in rule.get("ports", []):
                if not re.fullmatch(r"\d{1,5}(-\d{1,5})?", ports):
                    raise ApiError(400, "invalid", f"Invalid value for field 'resource.allowed.ports': {ports!r}")
        for source in body.get("sourceRanges", []):
            valid_cidr(source, "sourceRanges", max_prefix=32, strict=False)
        for tag in body.get("targetTags", []):
            valid_name(tag, "targetTags")
        return {
            "disabled": False, "logConfig": {"enable": False}, **body, "kind": "compute#firewall",
            "selfLink": link(key), "network": link(network),
            "direction": body.get("direction", "INGRESS"), "priority": body.get("priority", 1000),
        }

    def _firewall_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/global/firewalls/{name}"
        fw = self._firewall_body(p, body, key)
        if key in self._store.firewalls:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        self._store.firewalls[key] = {**fw, "id": str(next(self._ids)), "creationTimestamp": timestamp()}
        op = self._operation(p["project"], "global", None, "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _firewall_update(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        old = self._store.firewalls.get(key)
        if old is None:
            raise not_found(key)
        body = request.json()
        if body.get("name", p["firewall"]) != p["firewall"]:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.name': the name cannot change")
        self._store.firewalls[key] = {**self._firewall_body(p, body, key), "name": p["firewall"], "id": old["id"],
                                      "creationTimestamp": old["creationTimestamp"]}
        op = self._operation(p["project"], "global", None, "update", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _firewall_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        fw = self._store.firewalls.pop(key, None)
        if fw is None:
            raise not_found(key)
        op = self._operation(p["project"], "global", None, "delete", key, None, request.arg("requestId"),
                             target_id=fw["id"])
        return self._op_reply(op)
