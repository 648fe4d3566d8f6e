"""The Azure emulator's load balancers (Microsoft.Network/loadBalancers, checked against
loadBalancer.json of network 2024-10-01 like the rest; shapes from its examples, e.g.
LoadBalancerCreateStandardSku.json): frontend IP configurations on public IPs, backend address
pools that NIC ip configurations join (loadBalancerBackendAddressPools), probes and
load-balancing rules. A PUT is long-running like every network PUT (azure_emulator).

Refused as ARM refuses them: a public IP that does not exist or is used elsewhere, a Standard
load balancer on a Basic public IP (or the other way round), a rule or a NIC naming a pool,
frontend or probe that does not exist, ports out of range, an Http probe without a path, two
rules on one frontend, protocol and port; deleting a public IP a frontend uses. `load_balancers`
is what the sandbox control route `/_emulator/load-balancers` shows. Callers hold the lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .azure_catalog import ArmError

if TYPE_CHECKING:
    from .azure_state import AzureState, Resource

LB = "Microsoft.Network/loadBalancers"
NIC, PIP, VM = "Microsoft.Network/networkInterfaces", "Microsoft.Network/publicIPAddresses", \
    "Microsoft.Compute/virtualMachines"  # as azure_views names them (which imports this module)
CHILDREN = {"frontendIPConfigurations": "frontendIPConfigurations", "backendAddressPools": "backendAddressPools",
            "loadBalancingRules": "loadBalancingRules", "probes": "probes"}


def _ref(obj: Any) -> str:
    return str((obj or {}).get("id") or "").lower()


def _sku(res: Resource) -> str:
    return str((res.body.get("sku") or {}).get("name") or "Basic").lower()


def put_lb(state: AzureState, res: Resource, existing: Resource | None) -> None:
    """Check and normalise a load balancer's PUT body (ids, types, defaults of its children)."""
    props = res.props
    res.body.setdefault("sku", {"name": "Basic", "tier": "Regional"})
    res.body["sku"].setdefault("tier", "Regional")
    for kind in CHILDREN:
        for child in props.setdefault(kind, []):
            if not child.get("name"):
                raise ArmError(400, "InvalidRequestFormat", f"A {kind[:-1]} of load balancer {res.name} has no name.")
            child["id"] = f"{res.id}/{kind}/{child['name']}"
            child["type"] = f"{LB}/{kind}"
            child.setdefault("properties", {})["provisioningState"] = "Succeeded"
    own = {kind: {c["id"].lower() for c in props[kind]} for kind in CHILDREN}
    for front in props["frontendIPConfigurations"]:
        fp = front["properties"]
        pip_id = _ref(fp.get("publicIPAddress"))
        if not pip_id:
            raise ArmError(400, "InvalidRequestFormat", f"Frontend {front['name']} needs a public IP address "
                           "(the emulator serves public load balancers only).")
        pip = state.get(pip_id, "InvalidResourceReference")
        if _sku(pip) != _sku(res):
            raise ArmError(400, "DifferentSkuLoadBalancerAndPublicIPAddressNotAllowed",
                           f"Load balancer {res.id} with SKU {_sku(res)} cannot reference public IP address "
                           f"{pip.id} with SKU {_sku(pip)}.")
        user = pip_user(state, pip)
        if user and not user.lower().startswith(res.key + "/"):
            raise ArmError(400, "PublicIPAddressInUse", f"Public IP address {pip.id} is already used by {user}.")
    for probe in props["probes"]:
        pp = probe["properties"]
        _port(pp.get("port"), f"probes[{probe['name']}].port", low=1)
        if str(pp.get("protocol", "")).lower() in ("http", "https") and not pp.get("requestPath"):
            raise ArmError(400, "InvalidRequestFormat", f"Probe {probe['name']} of protocol {pp['protocol']} "
                           "needs a requestPath.")
        pp.setdefault("intervalInSeconds", 15)
        pp.setdefault("numberOfProbes", 2)
        pp.setdefault("probeThreshold", 1)
    seen: dict[tuple[str, str, int], str] = {}
    for rule in props["loadBalancingRules"]:
        rp = rule["properties"]
        front = _ref(rp.get("frontendIPConfiguration"))
        for field, kind in (("frontendIPConfiguration", "frontendIPConfigurations"),
                            ("backendAddressPool", "backendAddressPools"), ("probe", "probes")):
            ref = _ref(rp.get(field))
            if (ref or field == "frontendIPConfiguration") and ref not in own[kind]:
                raise ArmError(400, "InvalidResourceReference", f"Resource {rp.get(field, {}).get('id')} "
                               f"referenced by resource {rule['id']} was not found.")
        frontend_port = _port(rp.get("frontendPort"), f"loadBalancingRules[{rule['name']}].frontendPort", low=0,
                              high=65534)
        rp["backendPort"] = _port(rp.get("backendPort", frontend_port),
                                  f"loadBalancingRules[{rule['name']}].backendPort", low=0)
        key = (front, str(rp.get("protocol", "")).lower(), frontend_port)
        if key in seen:
            raise ArmError(400, "RulesUseSameFrontendIPAndPort", f"Load balancer rules {seen[key]} and {rule['id']} "
                           "use the same frontend IP configuration, protocol and port.")
        seen[key] = rule["id"]
        rp.setdefault("idleTimeoutInMinutes", 4)
        rp.setdefault("enableFloatingIP", False)
        rp.setdefault("loadDistribution", "Default")
        rp.setdefault("disableOutboundSnat", False)
        rp.setdefault("enableTcpReset", False)


def _port(value: Any, where: str, *, low: int, high: int = 65535) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if not low <= port <= high:
        raise ArmError(400, "InvalidParameter", f"The value {value!r} of {where} is out of range: valid values are "
                                                f"{low} to {high}.", where)
    return port


def check_nic_pools(state: AzureState, nic: Resource) -> None:
    """Every backend pool a NIC's ip configurations join must exist (InvalidResourceReference)."""
    for conf in nic.props.get("ipConfigurations", []):
        for pool in conf.get("properties", {}).get("loadBalancerBackendAddressPools") or []:
            if _pool(state, _ref(pool)) is None:
                raise ArmError(400, "InvalidResourceReference", f"Resource {pool.get('id')} referenced by resource "
                               f"{conf.get('id')} was not found.")


def _pool(state: AzureState, pool_id: str) -> dict[str, Any] | None:
    lb = state.resources.get(pool_id.split("/backendaddresspools/")[0])
    if lb is None or lb.type != LB:
        return None
    return next((p for p in lb.props.get("backendAddressPools", []) if p["id"].lower() == pool_id), None)


def forget(state: AzureState, lb: Resource) -> None:
    """A deleted load balancer's pools leave the NICs that joined them (no dangling references)."""
    prefix = lb.key + "/backendaddresspools/"
    for nic in state.of_type(NIC):
        for conf in nic.props.get("ipConfigurations", []):
            props = conf.get("properties", {})
            if props.get("loadBalancerBackendAddressPools"):
                props["loadBalancerBackendAddressPools"] = [
                    p for p in props["loadBalancerBackendAddressPools"] if not _ref(p).startswith(prefix)]


def pip_user(state: AzureState, pip: Resource) -> str | None:
    """The id of the load-balancer frontend that uses this public IP, if any."""
    for lb in state.of_type(LB):
        for front in lb.props.get("frontendIPConfigurations", []):
            if _ref(front.get("properties", {}).get("publicIPAddress")) == pip.key:
                return str(front["id"])
    return None


def _members(state: AzureState, pool_id: str) -> list[tuple[Resource, dict[str, Any]]]:
    """The (NIC, ip configuration) pairs that joined a pool."""
    return [(nic, conf) for nic in state.of_type(NIC) for conf in nic.props.get("ipConfigurations", [])
            if any(_ref(p) == pool_id for p in conf.get("properties", {}).get("loadBalancerBackendAddressPools")
                   or [])]


def render_lb(state: AzureState, res: Resource, props: dict[str, Any]) -> None:
    """What ARM computes on a GET: the children's back-references, their etags."""
    if res.guid:
        props["resourceGuid"] = res.guid
    rules = props.get("loadBalancingRules", [])
    for kind in CHILDREN:
        for child in props.setdefault(kind, []):
            child["etag"] = res.etag
    props.setdefault("inboundNatRules", [])
    props.setdefault("inboundNatPools", [])
    props.setdefault("outboundRules", [])

    def users(field: str, child_id: str) -> list[dict[str, str]]:
        return [{"id": r["id"]} for r in rules if _ref(r["properties"].get(field)) == child_id.lower()]

    for front in props["frontendIPConfigurations"]:
        found = users("frontendIPConfiguration", front["id"])
        if found:
            front["properties"]["loadBalancingRules"] = found
    for probe in props["probes"]:
        found = users("probe", probe["id"])
        if found:
            probe["properties"]["loadBalancingRules"] = found
    for pool in props["backendAddressPools"]:
        found = users("backendAddressPool", pool["id"])
        if found:
            pool["properties"]["loadBalancingRules"] = found
        joined = [{"id": conf["id"]} for _, conf in _members(state, pool["id"].lower())]
        if joined:
            pool["properties"]["backendIPConfigurations"] = joined


def load_balancers(state: AzureState) -> list[dict[str, Any]]:
    """One entry per frontend that rules use, in the control route's shape."""
    out = []
    for lb in sorted(state.of_type(LB), key=lambda r: r.key):
        if lb.state == "Deleting":
            continue
        props = lb.props
        for front in props.get("frontendIPConfigurations", []):
            pip = state.resources.get(_ref(front["properties"].get("publicIPAddress")))
            rules = [r["properties"] for r in props.get("loadBalancingRules", [])
                     if _ref(r["properties"].get("frontendIPConfiguration")) == front["id"].lower()]
            if pip is None or not pip.props.get("ipAddress") or not rules:
                continue
            probe = next((p for p in props.get("probes", []) for r in rules if _ref(r.get("probe")) == p["id"].lower()),
                         None)
            health = None
            if probe is not None:
                health = {"port": probe["properties"]["port"], "path": probe["properties"].get("requestPath")}
            pools = {_ref(r.get("backendAddressPool")) for r in rules} - {""}
            backends = []
            for pool_id in sorted(pools):
                for nic, conf in _members(state, pool_id):
                    vm = state.vm_of_nic(nic)
                    public = state.resources.get(_ref(conf.get("properties", {}).get("publicIPAddress")))
                    backends.append({"name": vm.name if vm is not None and vm.type == VM else nic.name,
                                     "private_ip": conf["properties"].get("privateIPAddress"),
                                     "public_ip": public.props.get("ipAddress") if public is not None
                                     and public.type == PIP else None})
            out.append({"cloud": "azure", "id": front["id"], "address": pip.props["ipAddress"],
                        "forwards": sorted([r["frontendPort"], r["backendPort"]] for r in rules),
                        "health": health, "backends": backends})
    return out
