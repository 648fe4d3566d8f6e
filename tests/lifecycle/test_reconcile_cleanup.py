"""reconcile's clean-up in the sandbox, on every cloud, with each case made out of band through
the clouds' SDKs on one shared cluster: a VM carrying the cluster's UUID whose node the cluster
does not have (made as cast's own create makes one, its state write lost), a firewall rule
added by hand, a WireGuard peer added by hand, a node removed from the state by hand (its VM
and its peers become leftovers). A dry run names them all and changes nothing; reconcile
removes them; a VM without the cluster's UUID is never touched."""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import replace

import pytest

from provisioner.cloudinit import render_user_data
from provisioner.clouds import open_cloud
from provisioner.clouds.base import VmRequest
from provisioner.context import Cluster
from provisioner.creation import target
from provisioner.keys import new_ed25519, public_of
from provisioner.plan import make_plan
from provisioner.regions import load_region_map
from provisioner.spec import spec_from_dict
from provisioner.state import StateStore

from .conftest import SKIP
from .test_lifecycle import FOUR, REGION, ec2

pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
CLOUDS = ("aws", "gcp", "azure", "digitalocean")
HAND = "198.51.100.7/32"  # the source of every firewall rule added by hand


@contextlib.contextmanager
def sandbox_env(cast):
    saved = dict(os.environ)
    os.environ.update(cast.env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def providers(cast, name: str):
    """{cloud: (provider, target)} of the cluster, through the providers (their SDK clients)."""
    store = StateStore(cast.state_dir)
    row = store.cluster(name)
    spec = spec_from_dict(row.spec)
    plan = make_plan(spec, load_region_map())
    return {cp.cloud: (open_cloud(cp.cloud, cp.region, cp.zone), target(Cluster(row, spec), cp))
            for cp in plan.clouds}, store, row


def stray(provider, tgt, store, row, cloud: str) -> str:
    """A VM made as cast's create makes one (the provider, through its SDK), for a node the
    state does not have: what a crash between the create and the state write leaves."""
    worker = next(n for n in store.nodes(row.uuid) if n.cloud == cloud and n.role == "worker")
    name = re.sub(r"\d+$", "9", worker.name)
    key = new_ed25519(name)
    client = store.read_secret(row.uuid, "ssh_key")
    authorized = public_of(client, f"cast-{row.name}")
    data = render_user_data(cluster=row.name, node=name, role="worker", cloud=cloud, host_key_private=key.private,
                            host_key_public=key.public, authorized_key=authorized, master_mesh_ips=[])
    if cloud == "digitalocean":  # the VPC the cloud chose, as the engine's executor passes it on
        tgt = replace(tgt, network_cidr=provider.ensure_network(tgt).network_cidr)
    provider.ensure_vms(tgt, [VmRequest(name, "worker", worker.size, data)], authorized)
    return name


def add_rule_by_hand(cloud: str, provider, tgt, cast) -> None:
    """One inbound rule the plan does not have, on the cluster's worker firewall, by the SDK."""
    ref = tgt.cluster
    if cloud == "aws":
        client = ec2(cast)
        groups = client.describe_security_groups(
            Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [ref.uuid]}])["SecurityGroups"]
        client.authorize_security_group_ingress(GroupId=groups[0]["GroupId"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 9999, "ToPort": 9999, "IpRanges": [{"CidrIp": HAND}]}])
    elif cloud == "gcp":
        from google.cloud import compute_v1

        api = provider.api
        firewall = provider._firewalls(ref)[0]
        firewall.source_ranges.append(HAND)
        api.mutate("a rule by hand", api.client("FirewallsClient").update_unary, compute_v1.UpdateFirewallRequest(
            project=api.project, firewall=firewall.name, firewall_resource=firewall))
    elif cloud == "azure":
        from azure.mgmt.network.models import SecurityRule

        group = provider.group_of(ref)
        nsg = next(iter(provider.nsgs_of(group, ref).values()))
        nsg.security_rules.append(SecurityRule(
            name="by-hand", protocol="Tcp", source_address_prefix=HAND, source_port_range="*",
            destination_address_prefix="*", destination_port_range="9999", access="Allow", direction="Inbound",
            priority=4000))
        provider.session.network.network_security_groups.begin_create_or_update(group, nsg.name, nsg).result()
    else:
        fw = next(iter(provider._firewalls(ref).values()))[0]
        inbound = [*fw["inbound_rules"], {"protocol": "tcp", "ports": "9999", "sources": {"addresses": [HAND]}}]
        body = {"name": fw["name"], "tags": fw["tags"], "inbound_rules": inbound,
                "outbound_rules": fw["outbound_rules"]}
        provider.api.call("a rule by hand", lambda c: c.firewalls.update, fw["id"], body=body)


def firewall_mentions_hand(cloud: str, provider, tgt, cast) -> bool:
    ref = tgt.cluster
    if cloud == "aws":
        groups = ec2(cast).describe_security_groups(
            Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [ref.uuid]}])["SecurityGroups"]
        return HAND in json.dumps(groups, default=str)
    if cloud == "gcp":
        return any(HAND in f.source_ranges for f in provider._firewalls(ref))
    if cloud == "azure":
        nsgs = provider.nsgs_of(provider.group_of(ref), ref).values()
        return any(r.source_address_prefix == HAND for n in nsgs for r in n.security_rules or [])
    return HAND in json.dumps(provider._firewalls(ref))


def test_reconcile_cleans_up_what_carries_the_uuid_but_is_not_in_the_spec(cast):
    cluster = json.loads(cast("create-cluster", "tidy", "--region", REGION, *FOUR, "--output", "json").stdout)
    uuid = cluster["uuid"]
    with sandbox_env(cast):
        clouds, store, row = providers(cast, "tidy")
        strays = {c: stray(p, t, store, row, c) for c, (p, t) in clouds.items()}
        for c, (p, t) in clouds.items():
            add_rule_by_hand(c, p, t, cast)
    # a peer added by hand on one node; a node removed from the state by hand
    removed = next(n for n in store.nodes(uuid) if n.name == "tidy-gcp-w1")
    with cast.ssh(uuid) as (pool, access):
        fake = pool.check(access["tidy-aws-m1"], "wg genkey | wg pubkey").strip()
        pool.check(access["tidy-aws-m1"], f"wg set wg0 peer {fake} allowed-ips 10.250.0.9/32")
    store.delete_node(uuid, removed.name)
    # and, on AWS, a VM without the cluster's UUID in its subnet: never touched
    client = ec2(cast)
    subnet = client.describe_subnets(Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [uuid]}])["Subnets"][0]
    image = client.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    foreign = client.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                   SubnetId=subnet["SubnetId"])["Instances"][0]["InstanceId"]
    vms = cast.vms("tidy", uuid)

    found = json.loads(cast("reconcile", "tidy", "--dry-run", "--output", "json").stdout)["findings"]
    for c in CLOUDS:
        gone = f"{strays[c]}" + (f", {removed.name}" if c == "gcp" else "")
        assert any(line.startswith(f"{c}: would delete VMs of nodes not in the spec: ") and
                   all(n in line for n in gone.split(", ")) for line in found), (c, found)
        # the rule added by hand: each cloud words its firewall repair its own way
        assert any(re.match(rf"{c}: .*\b(remove|repair)\b", line) and "VMs" not in line for line in found), (c, found)
    assert any("tidy-aws-m1: has" in line and fake in line for line in found), found
    assert any(removed.wg_public_key in line for line in found if "stale peer" in line), found
    assert cast.vms("tidy", uuid) == vms  # the dry run changed nothing
    with sandbox_env(cast):
        assert all(firewall_mentions_hand(c, p, t, cast) for c, (p, t) in clouds.items())

    done = json.loads(cast("reconcile", "tidy", "--output", "json").stdout)["findings"]
    assert any("deleted VMs of nodes not in the spec" in line for line in done), done
    now = cast.vms("tidy", uuid)
    for c in CLOUDS:
        assert strays[c] not in now[c]
    assert removed.name not in now["gcp"] and now["gcp"] == ["tidy-gcp-w2"]  # the spec's worker, anew
    with sandbox_env(cast):
        assert not any(firewall_mentions_hand(c, p, t, cast) for c, (p, t) in clouds.items())
    with cast.ssh(uuid) as (pool, access):
        peers = pool.check(access["tidy-aws-m1"], "wg show wg0 peers").split()
    assert fake not in peers and removed.wg_public_key not in peers
    assert client.describe_instances(InstanceIds=[foreign])["Reservations"][0]["Instances"][0]["State"][
        "Name"] == "running"  # no UUID: untouched
    assert json.loads(cast("reconcile", "tidy", "--dry-run", "--output", "json").stdout)["findings"] == []
    client.terminate_instances(InstanceIds=[foreign])
    cast("delete-cluster", "tidy", "--yes")
    assert cast.leftovers("tidy", uuid, cluster["spec"]) == {c: [] for c in CLOUDS}
