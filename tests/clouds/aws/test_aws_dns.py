"""The user's Route 53 zone through boto3 against moto, and cast's record ownership on it (the
TXT owner record beside the A record set): what a user sees with a plain boto3 client."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from provisioner.clouds.aws_dns import Zone
from provisioner.clouds.balancing import RecordSet, open_dns
from provisioner.errors import InputError
from provisioner.ingress_dns import RecordOwnedError, delete_records, ensure_records, owner_value
from provisioner.sandbox.aws_moto import MotoSandbox


@pytest.fixture
def route53(sandbox: MotoSandbox) -> Any:
    return boto3.client("route53", endpoint_url=sandbox.endpoint, region_name="us-east-1",
                        aws_access_key_id=sandbox.access_key, aws_secret_access_key=sandbox.secret_key)


@pytest.fixture
def zone_name(route53: Any, aws_env: Any) -> str:
    """A fresh public zone holding one record of the user's own."""
    name = f"z{uuid.uuid4().hex[:8]}.example"
    zone_id = route53.create_hosted_zone(Name=name, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": f"www.{name}.", "Type": "A", "TTL": 300,
                                                   "ResourceRecords": [{"Value": "203.0.113.7"}]}}]})
    return name


def sets(route53: Any, zone: str) -> dict[tuple[str, str], list[str]]:
    zone_id = next(z["Id"] for z in route53.list_hosted_zones()["HostedZones"] if z["Name"] == f"{zone}.")
    out = {}
    for r in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]:
        if r["Type"] in ("A", "TXT"):
            out[(r["Name"], r["Type"])] = sorted(v["Value"] for v in r["ResourceRecords"])
    return out


def test_zone_is_found_by_the_longest_suffix_and_open_dns_reaches_it(zone_name: str) -> None:
    zone = open_dns("route53", f"apps.{zone_name}")
    assert isinstance(zone, Zone) and zone.zone_name == zone_name


def test_no_zone_for_the_domain_is_bad_input(aws_env: Any) -> None:
    with pytest.raises(InputError) as err:
        Zone("apps.nowhere-at-all.example")
    assert err.value.exit_code == 2 and "apps.nowhere-at-all.example" in str(err.value)


def test_records_round_trip_with_quoted_txt(zone_name: str, route53: Any) -> None:
    zone = Zone(f"apps.{zone_name}")
    domain = f"apps.{zone_name}"
    zone.upsert(RecordSet(domain, "TXT", ('say "hi"',)))
    assert sets(route53, zone_name)[(f"{domain}.", "TXT")] == ['"say \\"hi\\""']
    assert [r.values for r in zone.record_sets(domain)] == [('say "hi"',)]
    zone.delete(RecordSet(domain, "TXT", ()))
    zone.delete(RecordSet(domain, "TXT", ()))  # absent counts as done
    assert zone.record_sets(domain) == []


def test_cast_owns_writes_and_deletes_only_its_own_records(zone_name: str, route53: Any) -> None:
    domain, me = f"apps.{zone_name}", str(uuid.uuid4())
    zone = Zone(domain)
    actions = ensure_records(zone, domain, me, ["198.18.0.20", "198.18.1.20"])
    assert actions
    found = sets(route53, zone_name)
    assert found[(f"{domain}.", "A")] == ["198.18.0.20", "198.18.1.20"]
    assert found[(f"{domain}.", "TXT")] == [f'"{owner_value(me)}"']
    assert ensure_records(zone, domain, me, ["198.18.0.20", "198.18.1.20"]) == []
    delete_records(zone, domain, me)
    left = sets(route53, zone_name)
    assert (f"{domain}.", "A") not in left and (f"{domain}.", "TXT") not in left
    assert left[(f"www.{zone_name}.", "A")] == ["203.0.113.7"]  # the user's record stays


@pytest.mark.parametrize("theirs", [("TXT", '"heritage=external-dns,external-dns/owner=default"'),
                                    ("A", "203.0.113.9")])
def test_a_name_owned_by_another_is_refused_and_left_as_it_was(zone_name: str, route53: Any,
                                                              theirs: tuple[str, str]) -> None:
    domain, me = f"apps.{zone_name}", str(uuid.uuid4())
    zone = Zone(domain)
    zone_id = zone.zone_id
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": f"{domain}.", "Type": theirs[0], "TTL": 300,
                                                   "ResourceRecords": [{"Value": theirs[1]}]}}]})
    before = sets(route53, zone_name)
    with pytest.raises(RecordOwnedError) as err:
        ensure_records(zone, domain, me, ["198.18.0.20"])
    assert err.value.exit_code == 4
    assert delete_records(zone, domain, me) == []
    assert sets(route53, zone_name) == before


def test_other_txt_values_at_the_name_are_kept(zone_name: str, route53: Any) -> None:
    domain, me = f"apps.{zone_name}", str(uuid.uuid4())
    zone = Zone(domain)
    zone.upsert(RecordSet(domain, "TXT", ("v=spf1 -all",), 300))
    ensure_records(zone, domain, me, ["198.18.0.20"])
    assert sorted(sets(route53, zone_name)[(f"{domain}.", "TXT")]) == sorted(['"v=spf1 -all"',
                                                                              f'"{owner_value(me)}"'])
    delete_records(zone, domain, me)
    assert sets(route53, zone_name)[(f"{domain}.", "TXT")] == ['"v=spf1 -all"']
