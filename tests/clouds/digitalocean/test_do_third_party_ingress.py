"""Clients nobody on this project wrote, against the DigitalOcean emulator's load balancers and
domains: python-digitalocean creates, lists, changes and destroys a load balancer and domain
records; libcloud's DigitalOcean DNS driver lists zones and makes and deletes a record.
Pointing them at the emulator: as in test_do_third_party_clients."""

from __future__ import annotations

import time

import pytest

from .conftest import TOKEN

digitalocean = pytest.importorskip("digitalocean", reason="python-digitalocean is not installed (test extra)")
libcloud_dns = pytest.importorskip("libcloud.dns.providers", reason="apache-libcloud is not installed (test extra)")

REGION = "fra1"


@pytest.fixture
def end_point(emulator, monkeypatch):
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", f"{emulator.url}/v2/")


def _droplets(n: int) -> list:
    made = []
    for i in range(n):
        d = digitalocean.Droplet(token=TOKEN, name=f"pdo-web-{i}", region=REGION, image="ubuntu-24-04-x64",
                                 size_slug="s-2vcpu-4gb")
        d.create()
        made.append(d)
    return made


def _active(lb_id: str):
    manager = digitalocean.Manager(token=TOKEN)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lb = manager.get_load_balancer(lb_id)
        if lb.status == "active":
            return lb
        time.sleep(0.05)
    raise AssertionError("the load balancer never became active")


def test_python_digitalocean_creates_lists_changes_and_destroys_a_load_balancer(emulator, end_point):
    first, second = _droplets(2)
    lb = digitalocean.LoadBalancer(
        token=TOKEN, name="pdo-lb", region=REGION, droplet_ids=[first.id],
        forwarding_rules=[digitalocean.ForwardingRule(entry_protocol="tcp", entry_port=80, target_protocol="tcp",
                                                      target_port=30080)],
        health_check=digitalocean.HealthCheck(protocol="http", port=30080, path="/healthz"))
    lb.create()
    assert lb.id and lb.status == "new"
    emulator.unknown_properties.clear()  # python-digitalocean sends the fields its objects have

    active = _active(lb.id)
    assert active.ip and active.droplet_ids == [first.id]
    assert active.health_check.path == "/healthz" and active.forwarding_rules[0].target_port == 30080
    assert [b.id for b in digitalocean.Manager(token=TOKEN).get_all_load_balancers()] == [lb.id]
    active.add_droplets([second.id])
    assert _active(lb.id).droplet_ids == [first.id, second.id]
    active.remove_droplets([first.id])
    assert _active(lb.id).droplet_ids == [second.id]
    active.destroy()
    assert digitalocean.Manager(token=TOKEN).get_all_load_balancers() == []
    emulator.unknown_properties.clear()


def test_python_digitalocean_hears_the_apis_refusal_of_a_bad_rule(emulator, end_point):
    bad = digitalocean.LoadBalancer(
        token=TOKEN, name="pdo-bad", region=REGION, tag="web",
        forwarding_rules=[digitalocean.ForwardingRule(entry_protocol="tcp", entry_port=80, target_protocol="http",
                                                      target_port=30080)])
    with pytest.raises(digitalocean.DataReadError, match="cannot forward to target_protocol http"):
        bad.create()
    assert emulator.balancers == {}
    emulator.unknown_properties.clear()


def test_python_digitalocean_makes_and_reads_domain_records(emulator, end_point):
    domain = digitalocean.Domain(token=TOKEN, name="example.com", ip_address="192.0.2.1")
    domain.create()
    assert [d.name for d in digitalocean.Manager(token=TOKEN).get_all_domains()] == ["example.com"]
    domain.create_new_domain_record(type="A", name="apps", data="198.18.3.20", ttl=60)
    domain.create_new_domain_record(type="TXT", name="apps", data="owner=cast", ttl=60)
    records = {(r.type, r.name): r for r in domain.get_records()}
    assert set(records) == {("NS", "@"), ("A", "@"), ("A", "apps"), ("TXT", "apps")}
    assert records[("A", "apps")].data == "198.18.3.20" and records[("TXT", "apps")].ttl == 60
    records[("A", "apps")].destroy()
    assert ("A", "apps") not in {(r.type, r.name) for r in domain.get_records()}
    domain.destroy()
    assert digitalocean.Manager(token=TOKEN).get_all_domains() == []
    emulator.unknown_properties.clear()


def test_libclouds_dns_driver_lists_zones_and_makes_and_deletes_a_record(emulator):
    driver = libcloud_dns.get_driver(libcloud_dns.Provider.DIGITAL_OCEAN)(TOKEN)
    driver.connection.secure, driver.connection.host, driver.connection.port = 0, "127.0.0.1", emulator.port
    driver.connection.connect()
    zone = driver.create_zone("example.org")
    assert [z.domain for z in driver.list_zones()] == ["example.org"]
    record = driver.create_record("apps", zone, "A", "198.18.3.21", extra={"ttl": 60})
    assert record.id and record.data == "198.18.3.21"
    listed = [r for r in driver.list_records(zone) if r.type == "A"]
    # libcloud gives a new zone an apex A record of 127.0.0.1 (the API wants an address for it)
    assert [(r.name, r.data) for r in listed] == [("@", "127.0.0.1"), ("apps", "198.18.3.21")]
    assert driver.delete_record(record) is True
    assert driver.delete_zone(zone) is True
    assert driver.list_zones() == []
    emulator.unknown_properties.clear()
