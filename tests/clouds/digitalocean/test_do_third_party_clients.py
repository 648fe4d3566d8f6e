"""Clients nobody on this project wrote, against the DigitalOcean emulator: python-digitalocean
and apache-libcloud's DigitalOcean v2 driver each create, list, get and destroy a droplet and
meet one refusal, as they would against the API.

Pointing them at the emulator: python-digitalocean reads DIGITALOCEAN_END_POINT (objects it
builds from listings ignore a per-object end_point); libcloud's connection gets `secure`,
`host` and `port` set after the driver is made, then reconnects (see `_driver`)."""

from __future__ import annotations

import pytest

from .conftest import PUBLIC_KEY, TOKEN

digitalocean = pytest.importorskip("digitalocean", reason="python-digitalocean is not installed (test extra)")
libcloud_providers = pytest.importorskip("libcloud.compute.providers",
                                         reason="apache-libcloud is not installed (test extra)")

REGION = "fra1"
SIZE = "s-2vcpu-4gb"
IMAGE = "ubuntu-24-04-x64"


@pytest.fixture
def end_point(emulator, monkeypatch):
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", f"{emulator.url}/v2/")
    return f"{emulator.url}/v2/"


def test_python_digitalocean_creates_lists_gets_and_destroys_a_droplet(emulator, end_point):
    manager = digitalocean.Manager(token=TOKEN)
    assert manager.get_account().status == "active"
    assert REGION in {r.slug for r in manager.get_all_regions()}
    assert SIZE in {s.slug for s in manager.get_all_sizes()}
    assert IMAGE in {i.slug for i in manager.get_distro_images()}
    key = digitalocean.SSHKey(token=TOKEN, name="third-party", public_key=PUBLIC_KEY)
    key.create()  # keeps only the id
    assert key.id and manager.get_ssh_key(key.id).fingerprint

    droplet = digitalocean.Droplet(token=TOKEN, name="pdo-1", region=REGION, image=IMAGE, size_slug=SIZE,
                                   ssh_keys=[key.id], tags=["pdo"], user_data="#cloud-config\n")
    droplet.create()
    assert droplet.id and droplet.action_ids
    assert droplet.get_action(droplet.action_ids[0]).wait(update_every_seconds=0.05) is True
    listed = manager.get_all_droplets(tag_name="pdo")
    assert [d.id for d in listed] == [droplet.id]
    got = manager.get_droplet(droplet.id)
    assert (got.name, got.size_slug, got.region["slug"], got.image["slug"]) == ("pdo-1", SIZE, REGION, IMAGE)
    assert got.status == "active" and got.ip_address and got.private_ip_address
    assert got.created_at == listed[0].created_at
    assert [(a.type, a.status) for a in got.get_actions()] == [("create", "completed")]

    assert listed[0].destroy() is True  # from a listing: reaches the emulator through the env var
    assert manager.get_all_droplets(tag_name="pdo") == []
    key.destroy()
    assert manager.get_all_sshkeys() == []


def test_python_digitalocean_reports_the_apis_refusal(emulator, end_point):
    bad = digitalocean.Droplet(token=TOKEN, name="pdo-bad", region=REGION, image="no-such-image", size_slug=SIZE)
    with pytest.raises(digitalocean.DataReadError, match="You specified an invalid image for Droplet creation."):
        bad.create()
    with pytest.raises(digitalocean.NotFoundError):
        digitalocean.Manager(token=TOKEN).get_droplet(424242)


def _driver(emulator):
    driver = libcloud_providers.get_driver(libcloud_providers.Provider.DIGITAL_OCEAN)(TOKEN, api_version="v2")
    # libcloud 3.9's DigitalOcean driver cannot take secure=/host=/port= as keywords (its __new__
    # hands them to object.__new__: TypeError), so they are set on its connection instead.
    driver.connection.secure, driver.connection.host, driver.connection.port = 0, "127.0.0.1", emulator.port
    driver.connection.connect()  # the driver connected when made; again, to the emulator
    return driver


def test_libcloud_creates_lists_gets_and_destroys_a_node(emulator):
    driver = _driver(emulator)
    location = next(loc for loc in driver.list_locations() if loc.id == REGION)
    size = next(s for s in driver.list_sizes(location) if s.id == SIZE)
    image = next(i for i in driver.list_images() if i.extra["slug"] == IMAGE)
    key = driver.create_key_pair("libcloud", PUBLIC_KEY)
    assert key.fingerprint

    node = driver.create_node("lc-1", size, image, location,
                              ex_create_attr={"ssh_keys": [key.extra["id"]], "tags": ["lc"]},
                              ex_user_data="#cloud-config\n")
    assert node.extra["size_slug"] == SIZE and node.image.extra["distribution"] == "Ubuntu"
    [(running, addresses)] = driver.wait_until_running([node], wait_period=0.05, timeout=5)
    assert addresses and running.private_ips
    nodes = driver.list_nodes()
    assert [n.id for n in nodes] == [node.id] and nodes[0].state == "running"
    assert nodes[0].size.ram == 4096 and nodes[0].extra["region"] == "Frankfurt 1"
    details = driver.ex_get_node_details(node.id)
    assert details.created_at == node.created_at and details.extra["tags"] == ["lc"]

    assert driver.destroy_node(nodes[0]) is True
    assert driver.list_nodes() == []
    assert driver.delete_key_pair(key) is True
    assert driver.list_key_pairs() == []


def test_libcloud_reports_the_apis_refusal(emulator):
    driver = _driver(emulator)
    location = next(loc for loc in driver.list_locations() if loc.id == "sfo2")
    premium = next(s for s in driver.list_sizes() if s.id == "s-2vcpu-8gb-amd")
    assert premium not in driver.list_sizes(location)  # libcloud itself sees it is not sold there
    image = next(i for i in driver.list_images() if i.extra["slug"] == IMAGE)
    with pytest.raises(Exception, match="Size is not available in this region."):
        driver.create_node("lc-bad", premium, image, location)
    assert emulator.droplets == {}
