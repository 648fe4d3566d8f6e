"""The DigitalOcean emulator accepts what the API accepts, refuses what it refuses with the
API's status and body, and answers with the fields the API always sends."""

from __future__ import annotations

import dataclasses
import time

import pytest

from provisioner.clouds.digitalocean import Provider
from provisioner.sandbox import do_catalog

from .conftest import PUBLIC_KEY, REGION, build, make_target, raw, vm_requests

UBUNTU = "ubuntu-24-04-x64"


def _droplet(**overrides):
    return {"name": "fid-1", "region": "fra1", "size": "s-2vcpu-4gb", "image": UBUNTU, **overrides}


# --- what the API accepts ------------------------------------------------------------------


def test_unknown_query_parameters_are_ignored(emulator):
    status, body = raw(emulator, "GET", "/v2/account?per_page=200&foo=bar")
    assert status == 200 and body["account"]["status"] == "active"
    status, _ = raw(emulator, "POST", "/v2/tags?per_page=200", {"name": "with-a-query"})
    assert status == 201


def test_null_optional_fields_are_read_as_absent(emulator):
    status, body = raw(emulator, "POST", "/v2/droplets",
                       _droplet(user_data=None, vpc_uuid=None, tags=None, ssh_keys=None, backups=None))
    assert status == 202, body
    assert body["droplet"]["tags"] == []
    status, body = raw(emulator, "POST", "/v2/vpcs", {"name": "nulls", "region": REGION, "description": None,
                                                       "ip_range": "10.240.0.0/20"})
    assert status == 201 and body["vpc"]["description"] == ""


def test_an_empty_body_on_delete_is_tolerated(emulator):
    status, made = raw(emulator, "POST", "/v2/account/keys", {"name": "k", "public_key": PUBLIC_KEY})
    assert status == 201
    status, _ = raw(emulator, "DELETE", f"/v2/account/keys/{made['ssh_key']['id']}/", {})
    assert status == 204
    assert raw(emulator, "GET", f"/v2/account/keys/{made['ssh_key']['id']}")[0] == 404


def test_a_droplet_without_vpc_goes_into_the_regions_default_vpc_made_once(emulator):
    first = raw(emulator, "POST", "/v2/droplets", _droplet(name="a"))[1]["droplet"]
    second = raw(emulator, "POST", "/v2/droplets", _droplet(name="b"))[1]["droplet"]
    elsewhere = raw(emulator, "POST", "/v2/droplets", _droplet(name="c", region="lon1"))[1]["droplet"]
    vpcs = {v["id"]: v for v in raw(emulator, "GET", "/v2/vpcs")[1]["vpcs"]}
    default = vpcs[first["vpc_uuid"]]
    assert second["vpc_uuid"] == first["vpc_uuid"] != elsewhere["vpc_uuid"]
    assert default["default"] is True and default["region"] == "fra1" and default["name"] == "default-fra1"
    assert vpcs[elsewhere["vpc_uuid"]]["region"] == "lon1"
    # the account's pre-seeded default-nyc1 is nyc1's default VPC
    nyc = raw(emulator, "POST", "/v2/droplets", _droplet(name="d", region=REGION))[1]["droplet"]
    assert vpcs[nyc["vpc_uuid"]]["name"] == f"default-{REGION}" and vpcs[nyc["vpc_uuid"]]["default"]


# --- what the API refuses ------------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"image": "no-such-image"}, "You specified an invalid image for Droplet creation."),
    ({"size": "s-99vcpu-1tb"}, "You specified an invalid size for Droplet creation."),
    ({"region": "atlantis1"}, "You specified an invalid region for Droplet creation."),
    ({"region": "sfo2", "size": "s-2vcpu-8gb-amd"}, "Size is not available in this region."),
    ({"region": "nyc2"}, "Region is not available"),
    ({"ssh_keys": ["aa:bb:cc"]}, "aa:bb:cc are invalid key identifiers for Droplet creation."),
])
def test_a_droplet_outside_the_catalog_is_refused_as_the_api_refuses_it(emulator, change, message):
    status, body = raw(emulator, "POST", "/v2/droplets", _droplet(**change))
    assert (status, body["id"], body["message"]) == (422, "unprocessable_entity", message)
    assert emulator.droplets == {}


@pytest.mark.parametrize(("key", "message"), [
    ("ssh-rsa AAAAB3replace_me_replace_me", do_catalog.KEY_NO_FINGERPRINT),
    ("---- BEGIN SSH2 PUBLIC KEY ----\nAAAAB3Nza\n---- END SSH2 PUBLIC KEY ----", do_catalog.KEY_INVALID_TYPE),
    ("ssh-ed25519 AAAAC3NzaC1yc2E= wrong-type-inside", do_catalog.KEY_NO_FINGERPRINT),
])
def test_a_public_key_that_is_not_one_is_refused(emulator, key, message):
    status, body = raw(emulator, "POST", "/v2/account/keys", {"name": "bad", "public_key": key})
    assert (status, body["id"], body["message"]) == (422, "unprocessable_entity", message)
    assert emulator.keys == {}


# --- what the API sends --------------------------------------------------------------------


def test_droplets_carry_full_image_size_and_region_and_a_fixed_creation_time(emulator):
    status, made = raw(emulator, "POST", "/v2/droplets", _droplet(monitoring=True, ipv6=False))
    droplet_id = made["droplet"]["id"]
    assert made["droplet"]["features"] == ["monitoring", "private_networking"]
    time.sleep(1.1)  # a recomputed created_at would move by a second
    d = raw(emulator, "GET", f"/v2/droplets/{droplet_id}")[1]["droplet"]
    assert d["created_at"] == made["droplet"]["created_at"]
    assert d["image"]["slug"] == UBUNTU and d["image"]["distribution"] == "Ubuntu" and d["image"]["public"]
    assert d["size"]["slug"] == "s-2vcpu-4gb" and d["size"]["memory"] == d["memory"] == 4096
    assert "fra1" in d["size"]["regions"] and d["size"]["price_monthly"] > 0
    assert d["region"]["slug"] == "fra1" and d["region"]["name"] == "Frankfurt 1" and "s-2vcpu-4gb" in d["region"]["sizes"]
    for key in ("kernel", "features", "backup_ids", "snapshot_ids", "volume_ids", "tags", "vpc_uuid",
                "next_backup_window", "locked", "disk", "vcpus"):
        assert key in d
    types = {n["type"] for n in d["networks"]["v4"]}
    assert types == {"public", "private"} and all(n["gateway"] for n in d["networks"]["v4"])
    vpc = raw(emulator, "GET", f"/v2/vpcs/{d['vpc_uuid']}")[1]["vpc"]
    members = raw(emulator, "GET", f"/v2/vpcs/{d['vpc_uuid']}/members")[1]["members"]
    time.sleep(1.1)
    assert raw(emulator, "GET", f"/v2/vpcs/{d['vpc_uuid']}")[1]["vpc"]["created_at"] == vpc["created_at"]
    assert members == raw(emulator, "GET", f"/v2/vpcs/{d['vpc_uuid']}/members")[1]["members"]
    assert members[0]["created_at"] == d["created_at"]


def test_the_create_action_is_served_and_completes_when_the_droplet_is_up(emulator):
    emulator.boot_delay_s = 0.3
    made = raw(emulator, "POST", "/v2/droplets", _droplet())[1]
    action_id = made["links"]["actions"][0]["id"]
    assert raw(emulator, "GET", f"/v2/actions/{action_id}")[1]["action"]["status"] == "in-progress"
    time.sleep(0.35)
    action = raw(emulator, "GET", f"/v2/actions/{action_id}")[1]["action"]
    assert action["status"] == "completed" and action["completed_at"] and action["region"]["slug"] == "fra1"
    listed = raw(emulator, "GET", f"/v2/droplets/{made['droplet']['id']}/actions")[1]
    assert [a["id"] for a in listed["actions"]] == [action_id] and listed["meta"]["total"] == 1


def test_the_catalog_is_served_with_its_filters_and_pages(emulator):
    regions = raw(emulator, "GET", "/v2/regions?per_page=200")[1]["regions"]
    assert {r["slug"] for r in regions} == set(do_catalog.REGIONS)
    sizes = raw(emulator, "GET", "/v2/sizes")[1]
    assert sizes["meta"]["total"] == len(do_catalog.SIZES)
    apps = raw(emulator, "GET", "/v2/images?type=application")[1]["images"]
    distros = raw(emulator, "GET", "/v2/images?type=distribution&per_page=200")[1]["images"]
    assert apps and distros and not {i["slug"] for i in apps} & {i["slug"] for i in distros}
    assert raw(emulator, "GET", "/v2/images?private=true")[1]["images"] == []
    first = raw(emulator, "GET", "/v2/images?per_page=2")[1]
    assert len(first["images"]) == 2 and "page=2" in first["links"]["pages"]["next"]
    image = raw(emulator, "GET", f"/v2/images/{UBUNTU}")[1]["image"]
    assert raw(emulator, "GET", f"/v2/images/{image['id']}")[1]["image"] == image
    assert raw(emulator, "GET", "/v2/images/no-such-image")[0] == 404


def test_tags_count_their_droplets_and_firewall_tags_can_be_changed(emulator):
    assert raw(emulator, "POST", "/v2/tags", {"name": "web"})[0] == 201
    d = raw(emulator, "POST", "/v2/droplets", _droplet())[1]["droplet"]
    status, _ = raw(emulator, "POST", "/v2/tags/web/resources",
                    {"resources": [{"resource_id": str(d["id"]), "resource_type": "droplet"}]})
    assert status == 204
    tag = raw(emulator, "GET", "/v2/tags/web")[1]["tag"]
    assert tag["resources"]["count"] == 1 and tag["resources"]["droplets"]["count"] == 1
    assert tag["resources"]["droplets"]["last_tagged_uri"].endswith(f"/v2/droplets/{d['id']}")
    fw = raw(emulator, "POST", "/v2/firewalls", {"name": "fw", "inbound_rules": [
        {"protocol": "tcp", "ports": "22", "sources": {"addresses": ["0.0.0.0/0"]}}]})[1]["firewall"]
    assert raw(emulator, "POST", f"/v2/firewalls/{fw['id']}/tags", {"tags": ["web"]})[0] == 204
    assert raw(emulator, "GET", f"/v2/firewalls/{fw['id']}")[1]["firewall"]["tags"] == ["web"]
    assert raw(emulator, "POST", f"/v2/firewalls/{fw['id']}/tags", {"tags": ["nope"]})[0] == 422
    assert raw(emulator, "DELETE", f"/v2/firewalls/{fw['id']}/tags", {"tags": ["web"]})[0] == 204
    assert raw(emulator, "GET", f"/v2/firewalls/{fw['id']}")[1]["firewall"]["tags"] == []
    assert raw(emulator, "DELETE", "/v2/tags/web/resources",
               {"resources": [{"resource_id": str(d["id"]), "resource_type": "droplet"}]})[0] == 204
    assert raw(emulator, "GET", "/v2/tags/web")[1]["tag"]["resources"]["count"] == 0


def test_the_first_vpc_of_a_region_is_its_default_and_cannot_be_deleted(emulator):
    status, made = raw(emulator, "POST", "/v2/vpcs", {"name": "first-in-lon1", "region": "lon1",
                                                       "ip_range": "10.250.0.0/20"})
    assert status == 201 and made["vpc"]["default"] is True
    second = raw(emulator, "POST", "/v2/vpcs", {"name": "second", "region": "lon1", "ip_range": "10.250.16.0/20"})
    assert second[1]["vpc"]["default"] is False
    status, body = raw(emulator, "DELETE", f"/v2/vpcs/{made['vpc']['id']}")
    assert (status, body["id"]) == (403, "forbidden")
    assert raw(emulator, "DELETE", f"/v2/vpcs/{second[1]['vpc']['id']}")[0] == 204


def test_cast_tears_down_in_a_region_where_the_account_has_no_vpc_yet(emulator):
    # The first VPC of a region becomes its default, which the API never deletes: cast makes the
    # region's default VPC first, so that its own VPC can go with the cluster.
    provider = Provider("lon1")
    provider.settings = dataclasses.replace(provider.settings, poll_initial_s=0.02, poll_max_s=0.1,
                                            stall_budget_s=1.0)
    provider.api.retry_initial_s, provider.api.retry_max_s, provider.api.transient_budget_s = 0.02, 0.1, 2.0
    target = dataclasses.replace(make_target("fresh"), region="lon1")
    build(provider, target, vm_requests("fresh", workers=1))
    provider.teardown(target)
    assert not [v for v in emulator.vpcs.values() if target.cluster.uuid in v.description]
    left = [v for v in emulator.vpcs.values() if v.region == "lon1"]
    assert [(v.name, v.default) for v in left] == [("default-lon1", True)]


def test_at_most_ten_droplets_are_created_in_one_call(emulator):
    status, _ = raw(emulator, "POST", "/v2/droplets", _droplet(name=None, names=[f"n{i}" for i in range(10)]))
    assert status == 202 and len(emulator.droplets) == 10
    status, body = raw(emulator, "POST", "/v2/droplets", _droplet(name=None, names=[f"m{i}" for i in range(11)]))
    assert (status, body["id"]) == (422, "unprocessable_entity") and len(emulator.droplets) == 10


def test_cast_creates_eleven_workers_of_one_kind_in_calls_of_ten_at_most(emulator, provider):
    target = make_target("many")
    build(provider, target, vm_requests("many", masters=0, workers=11))
    assert len(provider.list_vms(target.cluster)) == 11
    assert emulator.calls["POST /v2/droplets"] == 2
