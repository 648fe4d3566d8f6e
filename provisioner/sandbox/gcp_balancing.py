"""The GCP emulator's regional external passthrough load balancing: regional addresses
(static external IPs from the emulator's public pool) and regional forwarding rules (TCP or
UDP on an address, to a target pool with a portRange, or to a regional backend service with up
to five `ports`, a portRange or allPorts). The pieces behind a rule: gcp_target_pools (the
target-pool kind) and gcp_backends (the backend-service kind). Refused as the API refuses
them: bad names, ports that are not ports, an address or target that does not exist, two
rules on one address whose ports overlap, deleting an address a rule uses
(resourceInUseByAnotherResource). `load_balancers` is what the sandbox control route
`/_emulator/load-balancers` shows.

Neither kind translates ports (a packet reaches the backend on the port it arrived on, as on
GCP): on a real cluster the ingress controller answers the balancer's address on 80 and 443
(kube-proxy's externalIPs rule). The sandbox's forwarder has no kube-proxy; it stands in for
that rule by sending 80 and 443 on to the ingress NodePorts (NODE_PORTS).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from .emulator import AddressPool, Request, Response
from .gcp_backends import BackendsApi, in_use
from .gcp_common import (
    ApiError,
    fingerprint,
    in_project,
    link,
    not_found,
    rel,
    timestamp,
    valid_labels,
    valid_name,
)
from .gcp_state import rel_of
from .gcp_target_pools import TargetPoolsApi

NODE_PORTS = {80: 30080, 443: 30443}  # what kube-proxy's externalIPs rule would do on the node
PORT_RANGE_RE = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?")


def _rule_ports(body: dict[str, Any], by_service: bool) -> set[int]:
    """The ports a forwarding rule takes: its portRange, its `ports` (a backend service's
    rules only, at most five) or all of them."""
    given = [k for k in ("portRange", "ports", "allPorts") if body.get(k)]
    if len(given) != 1:
        raise ApiError(400, "invalid", "Invalid value for field 'resource': exactly one of portRange, ports and "
                                       "allPorts must be given.")
    if given[0] == "allPorts":
        if not by_service:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.allPorts': a target pool's rule "
                                           "takes a portRange.")
        return set(range(1, 65536))
    if given[0] == "portRange":
        low, high = _port_range(body["portRange"])
        return set(range(low, high + 1))
    if not by_service:
        raise ApiError(400, "invalid", "Invalid value for field 'resource.ports': a target pool's rule takes a "
                                       "portRange.")
    ports = body["ports"]
    if len(ports) > 5:
        raise ApiError(400, "invalid", "Invalid value for field 'resource.ports': at most 5 ports.")
    singles = {_port_range(port) for port in ports}
    if any(low != high for low, high in singles):
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.ports': {ports}. Ports, not ranges.")
    return {low for low, _ in singles}


def _port_range(value: Any) -> tuple[int, int]:
    found = PORT_RANGE_RE.fullmatch(str(value)) if value is not None else None
    low = int(found.group(1)) if found else 0
    high = int(found.group(2) or low) if found else 0
    if not found or not 1 <= low <= high <= 65535:
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.portRange': '{value}'. "
                                       "Invalid port range specified.")
    return low, high


class BalancingApi(TargetPoolsApi, BackendsApi):
    """Handlers of compute.addresses.*, compute.httpHealthChecks.*, compute.targetPools.* and
    compute.forwardingRules.*."""

    _public: AddressPool
    public_pool: str

    def balancing_handlers(self) -> dict[str, Callable[[Request, dict[str, str]], Response]]:
        """These handlers, gcp_target_pools' and gcp_backends'."""
        def region_list(table: dict[str, dict[str, Any]], kind: str) -> Callable[[Request, dict[str, str]], Response]:
            return lambda r, p: self._list(r, [v for k, v in table.items() if k.startswith(rel_of(r) + "/")], kind)

        return {
            "compute.addresses.insert": self._address_insert,
            "compute.addresses.get": lambda r, p: self._get(self._store.addresses, rel_of(r)),
            "compute.addresses.list": lambda r, p: region_list(self._store.addresses, "compute#addressList")(r, p),
            "compute.addresses.delete": self._address_delete,
            "compute.forwardingRules.insert": self._rule_insert,
            "compute.forwardingRules.get": lambda r, p: self._get(self._store.forwarding_rules, rel_of(r)),
            "compute.forwardingRules.list": lambda r, p: region_list(self._store.forwarding_rules,
                                                                     "compute#forwardingRuleList")(r, p),
            "compute.forwardingRules.delete": self._rule_delete,
            **{f"compute.{field}.aggregatedList": partial(self._aggregated_of, field)
               for field in ("addresses", "targetPools", "forwardingRules")},
            **self.target_pool_handlers(),
            **self.backend_handlers(),
        }

    def _aggregated_of(self, field: str, request: Request, p: dict[str, str]) -> Response:
        table = {"addresses": self._store.addresses, "targetPools": self._store.target_pools,
                 "forwardingRules": self._store.forwarding_rules}[field]
        kind = {"addresses": "compute#addressAggregatedList", "targetPools": "compute#targetPoolAggregatedList",
                "forwardingRules": "compute#forwardingRuleAggregatedList"}[field]
        return self._regional_aggregated(request, p["project"], table, kind, field)

    # --- addresses ---------------------------------------------------------------------

    def _address_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/regions/{p['region']}/addresses/{name}"
        if key in self._store.addresses:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        if body.get("addressType", "EXTERNAL") != "EXTERNAL":
            raise ApiError(400, "invalid", "Invalid value for field 'resource.addressType': "
                                           f"'{body.get('addressType')}'. The emulator reserves external ones only.")
        if body.get("address"):  # a given address must be one the project may reserve: the pool's
            try:
                inside = ipaddress.ip_address(body["address"]) in ipaddress.ip_network(self.public_pool)
            except ValueError:
                inside = False
            if not inside:
                raise ApiError(400, "invalid", f"Invalid value for field 'resource.address': '{body['address']}'. "
                                               "Specified IP address is not available.")
        labels = valid_labels(body.get("labels"))
        self._store.addresses[key] = {
            "networkTier": "PREMIUM", "ipVersion": "IPV4", **body, "kind": "compute#address",
            "id": str(next(self._ids)), "creationTimestamp": timestamp(), "name": name,
            "address": body.get("address") or self._public.next(), "addressType": "EXTERNAL",
            "status": "RESERVED", "region": link(f"projects/{p['project']}/regions/{p['region']}"),
            "selfLink": link(key), "labels": labels, "labelFingerprint": fingerprint(labels),
        }
        op = self._operation(p["project"], "regions", p["region"], "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _address_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        address = self._store.addresses.get(key)
        if address is None:
            raise not_found(key)
        if address.get("users"):
            raise in_use("address", key, rel(address["users"][0]))
        del self._store.addresses[key]
        op = self._operation(p["project"], "regions", p["region"], "delete", key, None, request.arg("requestId"),
                             target_id=address["id"])
        return self._op_reply(op)

    # --- forwarding rules --------------------------------------------------------------

    def _rule_address(self, project: str, region: str, value: Any) -> tuple[str, dict[str, Any] | None]:
        """The literal IP of a rule's IPAddress (an IP or an address's link) and the address."""
        if not value:
            raise ApiError(400, "invalid", "Invalid value for field 'resource.IPAddress': ''. The emulator "
                                           "needs a reserved address (ephemeral ones are not emulated).")
        try:
            ip = str(ipaddress.IPv4Address(value))
        except ValueError:
            key = in_project(project, str(value))
            found = self._store.addresses.get(key)
            if found is None:
                raise ApiError(400, "invalid", f"The resource '{key}' was not found") from None
            return found["address"], found
        owner = next((a for k, a in self._store.addresses.items()
                      if a["address"] == ip and f"/regions/{region}/" in k), None)
        if owner is None:
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.IPAddress': '{ip}'. "
                                           "Specified IP address is not reserved in this region.")
        return ip, owner

    def _rule_insert(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        body = request.json()
        name = valid_name(body.get("name"))
        key = f"projects/{p['project']}/regions/{p['region']}/forwardingRules/{name}"
        if key in self._store.forwarding_rules:
            raise ApiError(409, "alreadyExists", f"The resource '{key}' already exists")
        protocol = body.get("IPProtocol", "TCP")
        if protocol not in ("TCP", "UDP"):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.IPProtocol': '{protocol}'.")
        if body.get("loadBalancingScheme", "EXTERNAL") != "EXTERNAL":
            raise ApiError(400, "invalid", "Invalid value for field 'resource.loadBalancingScheme': "
                                           f"'{body.get('loadBalancingScheme')}'. A target pool takes EXTERNAL.")
        if bool(body.get("target")) == bool(body.get("backendService")):
            raise ApiError(400, "invalid", "Invalid value for field 'resource': a forwarding rule names either a "
                                           "target or a backendService.")
        if body.get("target"):
            target, table = in_project(p["project"], body["target"]), self._store.target_pools
        else:
            target, table = in_project(p["project"], body["backendService"]), self._store.backend_services
        if target not in table:
            raise ApiError(400, "invalid", f"The resource '{target}' was not found")
        ports = _rule_ports(body, by_service=table is self._store.backend_services)
        ip, address = self._rule_address(p["project"], p["region"], body.get("IPAddress"))
        for other_key, other in self._store.forwarding_rules.items():
            if other["IPAddress"] == ip and other["IPProtocol"] == protocol and ports & _rule_ports(other, True):
                raise ApiError(400, "invalid", "Invalid value for field 'resource.ports': the ports overlap those "
                                               f"of '{other_key}' on {ip}.")
        labels = valid_labels(body.get("labels"))
        rule = {
            "networkTier": "PREMIUM", **body, "kind": "compute#forwardingRule", "id": str(next(self._ids)),
            "creationTimestamp": timestamp(), "name": name, "selfLink": link(key), "selfLinkWithId": link(key),
            "region": link(f"projects/{p['project']}/regions/{p['region']}"), "IPAddress": ip,
            "IPProtocol": protocol, "loadBalancingScheme": "EXTERNAL", "labels": labels,
            "labelFingerprint": fingerprint(labels),
            **({"target": link(target)} if body.get("target") else {"backendService": link(target)}),
        }
        if body.get("portRange"):
            low, high = _port_range(body["portRange"])
            rule["portRange"] = f"{low}-{high}"
        rule["fingerprint"] = fingerprint(rule)
        self._store.forwarding_rules[key] = rule
        if address is not None:
            address["users"] = [*address.get("users", []), link(key)]
            address["status"] = "IN_USE"
        op = self._operation(p["project"], "regions", p["region"], "insert", key, None, request.arg("requestId"))
        return self._op_reply(op)

    def _rule_delete(self, request: Request, p: dict[str, str]) -> Response:
        replay = self._replayed(request)
        if replay:
            return replay
        key = rel_of(request)
        rule = self._store.forwarding_rules.pop(key, None)
        if rule is None:
            raise not_found(key)
        for address in self._store.addresses.values():
            if link(key) in address.get("users", []):
                address["users"] = [u for u in address["users"] if u != link(key)]
                if not address["users"]:
                    del address["users"]
                    address["status"] = "RESERVED"
        op = self._operation(p["project"], "regions", p["region"], "delete", key, None, request.arg("requestId"),
                             target_id=rule["id"])
        return self._op_reply(op)

    # --- the sandbox's view ------------------------------------------------------------

    def load_balancers(self) -> list[dict[str, Any]]:
        """One entry per (address, target pool) that forwarding rules join, in the control
        route's shape: forwards (the rules' ports, on to NODE_PORTS), the pool's health check,
        its instances with their addresses (under self.lock)."""
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for rule in self._store.forwarding_rules.values():
            grouped.setdefault((rule["IPAddress"], rel(rule.get("target") or rule["backendService"])), []).append(rule)
        out = []
        for (ip, target_key), rules in sorted(grouped.items()):
            ports = sorted(set().union(*(_rule_ports(r, True) for r in rules)))
            if len(ports) > 16:  # allPorts, or a wide range: the ingress ports are what the sandbox serves
                ports = [port for port in ports if port in NODE_PORTS]
            forwards = [[port, NODE_PORTS.get(port, port)] for port in ports]
            pool = self._store.target_pools.get(target_key)
            if pool is not None:
                check = next((self._store.health_checks.get(rel(c)) for c in pool.get("healthChecks", [])), None)
                health = {"port": check["port"], "path": check["requestPath"]} if check else None
                members = [rel(i) for i in pool["instances"]]
            else:
                health, members = self.service_members(target_key)
            backends = []
            for member in members:
                inst = self._store.instances.get(member)
                if inst is None:
                    continue  # deleted: the pool keeps the stale link, as GCP's does
                nic = inst.body["networkInterfaces"][0]
                access = nic.get("accessConfigs") or [{}]
                backends.append({"name": inst.body["name"], "private_ip": nic.get("networkIP"),
                                 "public_ip": access[0].get("natIP")})
            out.append({"cloud": "gcp", "id": target_key, "address": ip, "forwards": forwards, "health": health,
                        "backends": backends})
        return out
