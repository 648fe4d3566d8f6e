"""Host keys after first contact (issue 21, item 4), end to end in the sandbox: the key cast
injected through user-data (readable through the metadata service) is replaced on every node,
also on a VM that reconcile recreates, and cast keeps connecting with the new key pinned."""

from __future__ import annotations

import base64
import json
import urllib.request

import paramiko
import pytest
import yaml

from provisioner.regions import load_region_map

from .conftest import SKIP
from .test_lifecycle import REGION, RELAXED, ec2

pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def _presented(ip: str) -> str:
    """The host key a node presents to a new connection, as an OpenSSH public key line."""
    transport = paramiko.Transport((ip, 22))
    try:
        transport.start_client(timeout=10)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}"
    finally:
        transport.close()


def _injected(cast, instance_id: str) -> tuple[str, str]:
    """The host key pair in an AWS VM's user-data: (private key text, public key line)."""
    attribute = ec2(cast).describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    keys = yaml.safe_load(base64.b64decode(attribute["UserData"]["Value"]))["ssh_keys"]
    return keys["ed25519_private"], keys["ed25519_public"]


def _gcp_metadata_keys(cast, node: str) -> set[str]:
    """The metadata keys of the GCP instance whose name starts with `node`."""
    zone = load_region_map().region(REGION).clouds["gcp"].zone
    url = (f"{cast.env['CAST_GCP_ENDPOINT']}/compute/v1/projects/{cast.env['CAST_GCP_PROJECT']}"
           f"/zones/{zone}/instances")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {cast.env['CAST_GCP_TOKEN']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        items = json.load(response).get("items", [])
    instance = next(i for i in items if i["name"].startswith(node))
    return {item["key"] for item in instance.get("metadata", {}).get("items", [])}


def _check_rotated(cast, name: str, uuid: str) -> None:
    nodes = {n["name"]: n for n in cast.cluster(name)["nodes"]}
    with cast.ssh(uuid) as (pool, access):
        for node, row in nodes.items():
            presented = _presented(row["public_ip"])
            assert access[node].host_key.split()[:2] == presented.split(), node  # the pin is the live key
            if row["cloud"] != "aws":
                continue  # only EC2 gives user-data back through its API
            private, public = _injected(cast, row["cloud_id"])
            assert presented != " ".join(public.split()[:2]), f"{node} still presents its user-data's key"
            body = private.strip().splitlines()[2]
            found = pool.run(access[node], f"grep -rlF -- '{body}' /etc/ssh /var/lib/cast /var/lib/cloud").stdout
            assert found == "", f"{node} still holds its user-data's private key in {found}"
    secrets = sorted(p.name for p in (cast.state_dir / "secrets" / uuid).glob("host-key-*"))
    assert secrets == [], "the cluster keeps the nodes' live private host keys"
    latency = cast("check-latency", name, "--count", "2", "--interval", "0.2", "--output", "json", check=False)
    assert latency.returncode in (0, 3), latency.stderr  # connected, pinned, and measured
    assert len(json.loads(latency.stdout)["pairs"]) == len(nodes) * (len(nodes) - 1)


def test_every_node_presents_a_new_host_key_after_create_and_after_recreation(cast):
    cluster = json.loads(cast("create-cluster", "keys", "--region", REGION, "--cloud", "aws:1:1",
                              "--cloud", "gcp:0:1", *RELAXED, "--output", "json").stdout)
    uuid = cluster["uuid"]
    _check_rotated(cast, "keys", uuid)
    # GCP lets the user-data be taken back once the node rotated its key: it is (asked as any
    # client would, through the compute API).
    gcp = [n for n in cluster["nodes"] if n["cloud"] == "gcp"]
    assert gcp and all("user-data" not in _gcp_metadata_keys(cast, n["name"]) for n in gcp)
    assert cast("reconcile", "keys", "--dry-run", "--output", "json").returncode == 0  # nothing to repair

    worker = next(n for n in cluster["nodes"] if n["name"] == "keys-aws-w1")
    ec2(cast).terminate_instances(InstanceIds=[worker["cloud_id"]])
    cast("reconcile", "keys")
    recreated = next(n for n in cast.cluster("keys")["nodes"] if n["name"] == "keys-aws-w1")
    assert recreated["cloud_id"] != worker["cloud_id"]
    _check_rotated(cast, "keys", uuid)
    cast("delete-cluster", "keys", "--yes")
