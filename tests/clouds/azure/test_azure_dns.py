"""Azure DNS (clouds/azure_dns) through azure-mgmt-dns against the emulator over HTTP; the
emulator's DNS routes checked against azure-mgmt-dns's models (the DNS specification is not in
/work/shared/specs; a violation lands in `errors`, which the conftest asserts empty), its
refusals, the control route's shape, and a plain REST client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from provisioner.clouds.azure_dns import Zone
from provisioner.clouds.azure_session import AzureSession
from provisioner.clouds.balancing import RecordSet, open_dns
from provisioner.errors import InputError
from provisioner.sandbox.azure_emulator import AzureEmulator

from .conftest import SUB, arm_call

DNS_API = "api-version=2018-05-01"


@pytest.fixture
def domain(emulator: AzureEmulator) -> str:
    """A fresh zone `<random>.example.org` in its own resource group, made through azure-mgmt-dns."""
    from azure.mgmt.dns import models

    name = f"z{uuid.uuid4().hex[:10]}.example.org"
    group = f"dns-{name.split('.')[0]}"
    session = AzureSession.from_env()
    session.resources.resource_groups.create_or_update(group, {"location": "eastus"})
    session.dns.zones.create_or_update(group, name, models.Zone(location="global", tags={"owner": "the user"}))
    return name


def zone_view(emulator: AzureEmulator, domain: str) -> list[dict[str, Any]]:
    status, zones = arm_call(emulator, "GET", "/_emulator/dns-zones")
    assert status == 200
    return [z for z in zones if z["zone"] == domain]


def test_upsert_read_and_delete_records(emulator: AzureEmulator, domain: str) -> None:
    zone = open_dns("azuredns", f"apps.{domain}")
    assert isinstance(zone, Zone) and zone.zone.name == domain and zone.group == f"dns-{domain.split('.')[0]}"
    assert zone.record_sets(f"apps.{domain}") == []

    zone.upsert(RecordSet(f"apps.{domain}", "A", ("198.18.2.20", "198.18.1.20"), ttl=60))
    long_owner = "heritage=cast,owner=" + "u" * 300  # more than one 255-character string
    zone.upsert(RecordSet(f"apps.{domain}", "TXT", (long_owner,), ttl=300))
    assert sorted(zone.record_sets(f"apps.{domain}"), key=lambda r: r.type) == [
        RecordSet(f"apps.{domain}", "A", ("198.18.2.20", "198.18.1.20"), 60),
        RecordSet(f"apps.{domain}", "TXT", (long_owner,), 300)]
    rrset = AzureSession.from_env().dns.record_sets.get(zone.group, domain, "apps", "TXT")
    assert [len(part) for part in rrset.txt_records[0].value] == [255, 65] and rrset.fqdn == f"apps.{domain}."

    zone.upsert(RecordSet(f"apps.{domain}", "A", ("198.18.2.20",), ttl=60))  # replaced
    assert [r.values for r in zone.record_sets(f"apps.{domain}") if r.type == "A"] == [("198.18.2.20",)]

    [shown] = zone_view(emulator, domain)
    assert {"name": f"apps.{domain}", "type": "A", "ttl": 60, "values": ["198.18.2.20"]} in shown["records"]
    assert {"name": f"apps.{domain}", "type": "TXT", "ttl": 300, "values": [long_owner]} in shown["records"]
    assert {r["type"] for r in shown["records"] if r["name"] == domain} == {"NS", "SOA"}

    zone.delete(RecordSet(f"apps.{domain}", "A", ()))
    zone.delete(RecordSet(f"apps.{domain}", "A", ()))  # absent: done
    assert [r.type for r in zone.record_sets(f"apps.{domain}")] == ["TXT"]


def test_the_apex_and_the_longest_zone(emulator: AzureEmulator, domain: str) -> None:
    from azure.mgmt.dns import models

    group = f"dns-{domain.split('.')[0]}"
    AzureSession.from_env().dns.zones.create_or_update(group, f"deep.{domain}", models.Zone(location="global"))
    assert Zone(f"apps.deep.{domain}").zone.name == f"deep.{domain}"
    apex = Zone(domain)
    assert apex.zone.name == domain
    apex.upsert(RecordSet(domain, "A", ("198.18.2.30",)))
    assert AzureSession.from_env().dns.record_sets.get(group, domain, "@", "A").a_records[0].ipv4_address == \
        "198.18.2.30"
    assert [r.values for r in apex.record_sets(domain) if r.type == "A"] == [("198.18.2.30",)]


def test_no_zone_for_the_domain_is_bad_input(emulator: AzureEmulator) -> None:
    with pytest.raises(InputError) as caught:
        Zone("apps.nowhere-at-all.test")
    assert caught.value.exit_code == 2
    assert "apps.nowhere-at-all.test" in str(caught.value) and "azuredns" in str(caught.value)


def test_the_api_refuses_what_azure_dns_refuses(emulator: AzureEmulator, domain: str) -> None:
    base = f"{SUB}/resourceGroups/dns-{domain.split('.')[0]}/providers/Microsoft.Network/dnszones"
    status, body = arm_call(emulator, "GET", f"{base}/missing.example.org?{DNS_API}")
    assert status == 404 and body["error"]["code"] == "ResourceNotFound"
    status, body = arm_call(emulator, "GET", f"{base}/{domain}/A/nothing?{DNS_API}")
    assert status == 404 and body["error"]["code"] == "NotFound"
    status, body = arm_call(emulator, "PUT", f"{base}/other.example.org?{DNS_API}", {"location": "eastus"})
    assert status == 400 and body["error"]["code"] == "LocationNotAvailableForResourceType"
    status, body = arm_call(emulator, "PUT", f"{base}/{domain}/A/www?{DNS_API}",
                            {"properties": {"TTL": 60, "ARecords": [{"ipv4Address": "not-an-ip"}]}})
    assert status == 400 and "invalid" in body["error"]["message"]
    status, body = arm_call(emulator, "PUT", f"{base}/{domain}/A/www?{DNS_API}",
                            {"properties": {"TTL": 60, "TXTRecords": [{"value": ["x"]}]}})
    assert status == 400 and body["error"]["code"] == "BadRequest"
    status, body = arm_call(emulator, "PUT", f"{base}/{domain}/BOGUS/www?{DNS_API}", {"properties": {"TTL": 60}})
    assert status == 400 and "not supported" in body["error"]["message"]
    assert arm_call(emulator, "GET", f"{base}/{domain}?{DNS_API}", auth=None)[0] == 401
    assert arm_call(emulator, "GET", f"{base}/{domain}")[0] == 400  # api-version is required
    emulator.errors.clear()

    status, body = arm_call(emulator, "PUT", f"{base}/{domain}/A/www?{DNS_API}",
                            {"properties": {"TTL": "sixty", "Arecords": []}})
    assert status == 400 and body["error"]["code"] == "InvalidRequestContent"
    assert any("unknown property 'Arecords'" in e for e in emulator.errors)  # azure-mgmt-dns's model says so
    assert any("TTL: expected int" in e for e in emulator.errors)
    emulator.errors.clear()


def test_if_none_match_protects_a_record_set(emulator: AzureEmulator, domain: str) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.dns import models

    zone = Zone(domain)
    zone.upsert(RecordSet(f"www.{domain}", "A", ("198.18.2.40",)))
    dns = AzureSession.from_env().dns
    with pytest.raises(HttpResponseError) as refused:
        dns.record_sets.create_or_update(zone.group, domain, "www", "A", models.RecordSet(
            ttl=60, a_records=[models.ARecord(ipv4_address="198.18.2.41")]), if_none_match="*")
    assert refused.value.status_code == 412 and refused.value.error.code == "PreconditionFailed"
    assert [r.values for r in zone.record_sets(f"www.{domain}")] == [("198.18.2.40",)]


def test_deleting_the_zone_takes_its_records(emulator: AzureEmulator, domain: str) -> None:
    zone = Zone(domain)
    zone.upsert(RecordSet(f"www.{domain}", "A", ("198.18.2.50",)))
    AzureSession.from_env().dns.zones.begin_delete(zone.group, domain).result()
    assert zone_view(emulator, domain) == []


def test_a_plain_rest_client_lists_the_records(emulator: AzureEmulator, domain: str) -> None:
    import requests

    Zone(domain).upsert(RecordSet(f"apps.{domain}", "A", ("198.18.2.60",)))
    base = f"{emulator.url}{SUB}/resourceGroups/dns-{domain.split('.')[0]}/providers/Microsoft.Network/dnsZones"
    session = requests.Session()
    session.headers["Authorization"] = "Bearer plain-rest"
    listed = session.get(f"{base}/{domain}/A?{DNS_API}", timeout=5).json()
    assert [(r["name"], r["properties"]["ARecords"]) for r in listed["value"]] == [
        ("apps", [{"ipv4Address": "198.18.2.60"}])]
    zones = session.get(f"{emulator.url}{SUB}/providers/Microsoft.Network/dnszones?{DNS_API}", timeout=5).json()
    assert domain in [z["name"] for z in zones["value"]]


def test_the_model_check_can_fail() -> None:
    """The check the DNS routes go through (azure-mgmt-dns's models) reports what a model lacks."""
    from provisioner.sandbox.azure_dns import model_problems

    good = {"properties": {"TTL": 60, "ARecords": [{"ipv4Address": "198.18.2.1"}], "metadata": {"k": "v"}}}
    assert model_problems("RecordSet", good, "body") == []
    bad = {"properties": {"TTL": 60, "ARecords": [{"ipv4": "198.18.2.1"}], "fqdn": 7}}
    assert model_problems("RecordSet", bad, "body") == [
        "body.properties.ARecords[0]: unknown property 'ipv4'", "body.properties.fqdn: expected str, got int"]
