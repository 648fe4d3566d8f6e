"""What a cluster exposes (issue 21, item 5), end to end in the sandbox: WireGuard opened to the
cluster's own nodes only, following add-node and remove-node; the API to --api-cidr only;
NodePorts closed. Read through EC2's API, as anyone auditing the account would."""

from __future__ import annotations

import json

import pytest

from .conftest import SKIP
from .test_lifecycle import REGION, RELAXED, ec2

pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def _inbound(cast, uuid: str) -> dict[str, set[tuple[str, int, str]]]:
    """The cluster's AWS security groups' inbound rules, by role: (protocol, port, source)."""
    groups = ec2(cast).describe_security_groups(
        Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [uuid]}])["SecurityGroups"]
    out = {}
    for g in groups:
        role = {t["Key"]: t["Value"] for t in g.get("Tags", [])}.get("cast-role", g["GroupName"])
        out[role] = {(p["IpProtocol"], p["FromPort"], r["CidrIp"]) for p in g["IpPermissions"]
                     for r in p.get("IpRanges", [])}
    return out


def _wireguard_sources(cast, name: str, uuid: str) -> tuple[set[str], dict[str, set[str]]]:
    nodes = cast.cluster(name)["nodes"]
    wanted = {f"{n['public_ip']}/32" for n in nodes}
    found = {role: {src for proto, port, src in rules if (proto, port) == ("udp", 51820)}
             for role, rules in _inbound(cast, uuid).items()}
    return wanted, found


def test_wireguard_follows_the_nodes_and_the_api_and_nodeports_stay_narrow(cast):
    cluster = json.loads(cast("create-cluster", "expo", "--region", REGION, "--cloud", "aws:1:1",
                              "--cloud", "gcp:0:1", "--api-cidr", "203.0.113.0/24", *RELAXED,
                              "--output", "json").stdout)
    uuid = cluster["uuid"]
    wanted, found = _wireguard_sources(cast, "expo", uuid)
    assert len(wanted) == 3 and found == {"master": wanted, "worker": wanted}  # every node, of every cloud
    rules = _inbound(cast, uuid)
    assert {src for proto, port, src in rules["master"] if port == 6443} == {"203.0.113.0/24"}
    assert not any(port == 30000 for r in rules.values() for _, port, _ in r)  # NodePorts closed

    cast("add-node", "expo", "--cloud", "gcp")
    wanted, found = _wireguard_sources(cast, "expo", uuid)
    assert len(wanted) == 4 and found == {"master": wanted, "worker": wanted}  # AWS lets the new GCP node in
    assert not list((cast.state_dir / "secrets" / uuid).glob("host-key-*"))  # the new node rotated its key too

    cast("remove-node", "expo", "expo-gcp-w1")
    wanted, found = _wireguard_sources(cast, "expo", uuid)
    assert len(wanted) == 3 and found == {"master": wanted, "worker": wanted}  # and forgets the removed one
    latency = cast("check-latency", "expo", "--count", "2", "--interval", "0.2", check=False)
    assert latency.returncode in (0, 3), latency.stderr
    assert json.loads(cast("reconcile", "expo", "--dry-run", "--output", "json").stdout)["findings"] == []
    cast("delete-cluster", "expo", "--yes")
