"""What the sandbox's load balancers and DNS server serve, as the clouds' APIs say: our emulators
through their control routes (`GET /_emulator/load-balancers`, `GET /_emulator/dns-zones`, the
shape in provisioner/clouds/balancing.py's brief), AWS through boto3 against moto (elbv2, EC2
and Route 53, as any AWS client sees them; the Elastic IP of a subnet mapping from what the
sandbox remembered at create, which moto does not keep).

Both come out in the control routes' shape:
  balancer: {"cloud", "id", "address", "forwards": [[80, 30080], ...], "health": {"port", "path"},
             "backends": [{"name", "private_ip", "public_ip"}]}
  zone:     {"zone", "records": [{"name", "type", "ttl", "values"}]}
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from .emulator import CONTROL_TOKEN_HEADER

LOG = logging.getLogger("cast.sandbox")
TIMEOUT_S = 5.0


def emulator_view(url: str, token: str | None, route: str) -> list[dict[str, Any]]:
    """One of an emulator's control routes; an emulator without it (404) has none."""
    request = urllib.request.Request(f"{url}/_emulator/{route}", headers={CONTROL_TOKEN_HEADER: token or ""})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            found = json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise
    return list(found) if isinstance(found, list) else []


class MotoView:
    """moto's load balancers and hosted zones, read through boto3 with the sandbox's key."""

    def __init__(self, moto: Any):
        self.moto = moto
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        import boto3

        key = (service, region)
        if key not in self._clients:
            self._clients[key] = boto3.client(service, endpoint_url=self.moto.endpoint, region_name=region,
                                              aws_access_key_id=self.moto.access_key,
                                              aws_secret_access_key=self.moto.secret_key)
        return self._clients[key]

    def _busy_regions(self) -> list[str]:
        """The regions with a load balancer: asked in-process first, so idle regions cost no call."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.elbv2.models import elbv2_backends

        backends = elbv2_backends[DEFAULT_ACCOUNT_ID]
        return [r for r in self.moto.regions if r in backends and backends[r].load_balancers]

    def load_balancers(self) -> list[dict[str, Any]]:
        out = []
        for region in self._busy_regions():
            elbv2, ec2 = self.client("elbv2", region), self.client("ec2", region)
            for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
                if lb.get("Type") != "network" or lb.get("State", {}).get("Code") != "active":
                    continue
                view = self._balancer(elbv2, ec2, lb)
                if view is not None:
                    out.append(view)
        return out

    def _balancer(self, elbv2: Any, ec2: Any, lb: Mapping[str, Any]) -> dict[str, Any] | None:
        allocations = self.moto.mapped_addresses(lb["LoadBalancerArn"])
        if not allocations:
            return None  # no Elastic IP: no address the sandbox can serve
        addresses = ec2.describe_addresses(AllocationIds=allocations[:1])["Addresses"]
        forwards, health, targets = [], {"port": 0, "path": "/"}, set()
        for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
            action = next((a for a in listener.get("DefaultActions", []) if a.get("Type") == "forward"), None)
            if action is None or listener.get("Protocol") != "TCP":
                continue
            group = elbv2.describe_target_groups(TargetGroupArns=[action["TargetGroupArn"]])["TargetGroups"][0]
            forwards.append([listener["Port"], group["Port"]])
            port = group.get("HealthCheckPort", "traffic-port")
            health = {"port": int(group["Port"] if port == "traffic-port" else port),
                      "path": group.get("HealthCheckPath") or "/"}
            described = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
            targets |= {d["Target"]["Id"] for d in described["TargetHealthDescriptions"]}
        backends = []
        if targets:
            for reservation in ec2.describe_instances(InstanceIds=sorted(targets))["Reservations"]:
                for instance in reservation["Instances"]:
                    if instance["State"]["Name"] == "running":
                        backends.append({"name": instance["InstanceId"], "private_ip": instance.get("PrivateIpAddress"),
                                         "public_ip": instance.get("PublicIpAddress")})
        return {"cloud": "aws", "id": lb["LoadBalancerArn"], "address": addresses[0]["PublicIp"] if addresses else None,
                "forwards": sorted(forwards), "health": health, "backends": backends}

    def dns_zones(self) -> list[dict[str, Any]]:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.route53.models import route53_backends

        if not route53_backends[DEFAULT_ACCOUNT_ID]["global"].zones:
            return []  # asked in-process first: no zone costs no call
        route53 = self.client("route53", "us-east-1")
        out = []
        for zone in route53.list_hosted_zones()["HostedZones"]:
            if zone.get("Config", {}).get("PrivateZone"):
                continue
            records = []
            for item in route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]:
                values = [r["Value"] for r in item.get("ResourceRecords", [])]
                if item["Type"] == "TXT":
                    values = [v[1:-1] if len(v) >= 2 and v[0] == v[-1] == '"' else v for v in values]
                records.append({"name": item["Name"].rstrip("."), "type": item["Type"],
                                "ttl": int(item.get("TTL", 60)), "values": values})
            out.append({"zone": zone["Name"].rstrip("."), "records": records})
        return out


def collect(moto: MotoView, emulators: Mapping[str, Any],
            token: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
    """Every load balancer and every DNS zone the sandbox's clouds hold, and the clouds that
    could not be read in this pass (logged; what they had stays as it was until the next)."""
    balancers: list[dict[str, Any]] = []
    zones: list[dict[str, Any]] = []
    failed: set[str] = set()
    sources: list[tuple[str, Any, Any]] = [("aws", moto.load_balancers, moto.dns_zones)]
    for cloud, emulator in emulators.items():
        sources.append((cloud, lambda url=emulator.url: emulator_view(url, token, "load-balancers"),
                        lambda url=emulator.url: emulator_view(url, token, "dns-zones")))
    for cloud, lbs, dns in sources:
        try:
            found_lbs, found_zones = lbs(), dns()
        except Exception as exc:  # one cloud's hiccup must not stop the others' traffic
            LOG.warning("sandbox ingress: cannot read %s's load balancers or zones: %s", cloud, exc)
            failed.add(cloud)
            continue
        balancers += [dict(b, cloud=b.get("cloud", cloud)) for b in found_lbs]
        zones += [dict(z, cloud=cloud) for z in found_zones]
    return balancers, zones, failed
