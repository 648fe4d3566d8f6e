"""Cloud DNS (clouds/gcp_dns) through google-cloud-dns against the GCP emulator over HTTP; the
emulator's dns v1 routes checked against the dns v1 discovery document (the conftest fails a
test whose requests break it), its errors, the control route's shape, and google-api-python-
client's dns v1 discovery client as a second client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from provisioner.clouds.balancing import RecordSet, open_dns
from provisioner.clouds.gcp import Provider
from provisioner.clouds.gcp_dns import Zone
from provisioner.errors import InputError
from provisioner.sandbox.gcp_emulator import GcpEmulator

from .conftest import http

PROJECT = "cast-test"
DNS = f"/dns/v1/projects/{PROJECT}"


def sdk_client(emulator: GcpEmulator) -> Any:
    from google.cloud import dns
    from google.oauth2.credentials import Credentials

    return dns.Client(project=PROJECT, credentials=Credentials(token="test-token"),
                      client_options={"api_endpoint": emulator.url})


@pytest.fixture
def domain(emulator: GcpEmulator, provider: Provider) -> str:  # provider: the environment on the emulator
    """A fresh zone `<random>.example.com.` made through google-cloud-dns; its name."""
    name = f"z{uuid.uuid4().hex[:10]}"
    sdk_client(emulator).zone(name, f"{name}.example.com.", description="the user's zone").create()
    return f"{name}.example.com"


def zone_view(emulator: GcpEmulator, domain: str) -> list[dict[str, Any]]:
    status, zones = http(emulator, "GET", "/_emulator/dns-zones")
    assert status == 200
    return [z for z in zones if z["zone"] == domain]


def test_upsert_read_and_delete_records(emulator: GcpEmulator, domain: str, calls: Any) -> None:
    zone = open_dns("clouddns", f"apps.{domain}")
    assert isinstance(zone, Zone) and zone.zone.dns_name == f"{domain}."
    assert zone.record_sets(f"apps.{domain}") == []

    zone.upsert(RecordSet(f"apps.{domain}", "A", ("198.18.1.20", "198.18.3.20"), ttl=60))
    zone.upsert(RecordSet(f"apps.{domain}", "TXT", ('heritage=cast,owner="c-1"',), ttl=300))
    assert sorted(zone.record_sets(f"apps.{domain}"), key=lambda r: r.type) == [
        RecordSet(f"apps.{domain}", "A", ("198.18.1.20", "198.18.3.20"), 60),
        RecordSet(f"apps.{domain}", "TXT", ('heritage=cast,owner="c-1"',), 300)]
    _, listed = http(emulator, "GET", f"{DNS}/managedZones/{domain.split('.')[0]}/rrsets?name=apps.{domain}.&type=TXT")
    assert listed["rrsets"][0]["rrdatas"] == ['"heritage=cast,owner=\\"c-1\\""']  # kept quoted, as Cloud DNS keeps TXT

    zone.upsert(RecordSet(f"apps.{domain}", "A", ("198.18.1.20",), ttl=60))  # replaced, not added to
    assert [r.values for r in zone.record_sets(f"apps.{domain}") if r.type == "A"] == [("198.18.1.20",)]
    calls()
    zone.upsert(RecordSet(f"apps.{domain}", "A", ("198.18.1.20",), ttl=60))  # as it is: no change sent
    assert "dns.changes.create" not in calls()

    [shown] = zone_view(emulator, domain)
    assert {"name": f"apps.{domain}", "type": "A", "ttl": 60, "values": ["198.18.1.20"]} in shown["records"]
    assert {"name": f"apps.{domain}", "type": "TXT", "ttl": 300,
            "values": ['heritage=cast,owner="c-1"']} in shown["records"]  # unquoted
    assert {r["type"] for r in shown["records"] if r["name"] == domain} == {"NS", "SOA"}

    zone.delete(RecordSet(f"apps.{domain}", "A", ()))
    zone.delete(RecordSet(f"apps.{domain}", "A", ()))  # absent: done
    assert [r.type for r in zone.record_sets(f"apps.{domain}")] == ["TXT"]


def test_the_longest_zone_holding_the_domain_is_chosen(emulator: GcpEmulator, domain: str) -> None:
    sub = f"s{uuid.uuid4().hex[:8]}"
    sdk_client(emulator).zone(sub, f"deep.{domain}.").create()
    assert Zone(f"apps.deep.{domain}").zone.name == sub
    assert Zone(f"apps.{domain}").zone.name == domain.split(".")[0]


def test_no_zone_for_the_domain_is_bad_input(emulator: GcpEmulator, provider: Provider) -> None:
    with pytest.raises(InputError) as caught:
        Zone("apps.nowhere-at-all.test")
    assert caught.value.exit_code == 2
    assert "apps.nowhere-at-all.test" in str(caught.value) and "clouddns" in str(caught.value)


def test_the_api_refuses_what_cloud_dns_refuses(emulator: GcpEmulator, domain: str) -> None:
    zone = domain.split(".")[0]
    status, body = http(emulator, "GET", f"{DNS}/managedZones/no-such-zone")
    assert status == 404 and body["error"]["errors"][0]["reason"] == "notFound"
    status, body = http(emulator, "POST", f"{DNS}/managedZones/{zone}/changes", {
        "additions": [{"name": "elsewhere.test.", "type": "A", "ttl": 60, "rrdatas": ["198.18.1.9"]}]})
    assert status == 400 and body["error"]["errors"][0]["reason"] == "invalid"
    status, body = http(emulator, "POST", f"{DNS}/managedZones/{zone}/changes", {
        "additions": [{"name": f"x.{domain}.", "type": "A", "ttl": 60, "rrdatas": ["not-an-ip"]}]})
    assert status == 400 and "rrdata" in body["error"]["message"]
    status, body = http(emulator, "POST", f"{DNS}/managedZones/{zone}/changes", {
        "deletions": [{"name": f"gone.{domain}.", "type": "A", "ttl": 60, "rrdatas": ["198.18.1.9"]}]})
    assert status == 404 and "does not exist" in body["error"]["message"]
    status, body = http(emulator, "POST", f"{DNS}/managedZones", {"name": "Bad_Name", "dnsName": "bad.test."})
    assert status == 400
    assert http(emulator, "POST", f"{DNS}/managedZones", {"name": zone, "dnsName": f"{domain}."})[0] == 409
    assert http(emulator, "GET", f"{DNS}/managedZones", auth=None)[0] == 401

    status, _ = http(emulator, "POST", f"{DNS}/managedZones/{zone}/changes", {"additions": [{"nmae": "typo"}]})
    assert status == 400 and any("unknown field 'nmae'" in v for v in emulator.violations)  # the document's check
    emulator.violations.clear()


def test_a_zone_with_records_is_not_deleted(emulator: GcpEmulator, domain: str) -> None:
    Zone(domain).upsert(RecordSet(f"www.{domain}", "A", ("198.18.1.30",)))
    sdk_zone = sdk_client(emulator).zone(domain.split(".")[0], f"{domain}.")
    from google.api_core import exceptions

    with pytest.raises(exceptions.BadRequest, match="not empty"):
        sdk_zone.delete()
    Zone(domain).delete(RecordSet(f"www.{domain}", "A", ()))
    sdk_zone.delete()
    assert zone_view(emulator, domain) == []


def test_the_discovery_client_lists_what_cast_wrote(emulator: GcpEmulator, domain: str) -> None:
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    Zone(domain).upsert(RecordSet(f"apps.{domain}", "A", ("198.18.1.40",)))
    service = build("dns", "v1", credentials=Credentials(token="t"), static_discovery=True,
                    client_options={"api_endpoint": emulator.url + "/"})
    zones = service.managedZones().list(project=PROJECT, dnsName=f"{domain}.").execute()
    assert [z["dnsName"] for z in zones["managedZones"]] == [f"{domain}."]
    rrsets = service.resourceRecordSets().list(project=PROJECT, managedZone=domain.split(".")[0],
                                               name=f"apps.{domain}.").execute()
    assert rrsets["rrsets"] == [{"kind": "dns#resourceRecordSet", "name": f"apps.{domain}.", "type": "A",
                                 "ttl": 60, "rrdatas": ["198.18.1.40"]}]
    service.resourceRecordSets().delete(project=PROJECT, managedZone=domain.split(".")[0],
                                        name=f"apps.{domain}.", type="A").execute()
    assert Zone(domain).record_sets(f"apps.{domain}") == []
