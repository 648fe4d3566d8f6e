"""The user's DigitalOcean DNS zone (clouds/do_dns.py) through the real pydo against the
emulator over HTTP: the zone found by the longest suffix, record sets read, replaced and
deleted, the user's other records left alone, errors as the API gives them."""

from __future__ import annotations

import functools
import json
import urllib.request
from pathlib import Path

import pytest

from provisioner.clouds.balancing import RecordSet, open_dns
from provisioner.clouds.do_client import ApiError
from provisioner.clouds.do_dns import Zone, zone_for
from provisioner.errors import InputError
from provisioner.sandbox.do_emulator import DigitalOceanEmulator

from .conftest import raw
from .test_do_recorded_shapes import _shape_gaps

APP = "apps.example.com"
OWNER = "cast-cluster-uuid=0b9f3a52-5d1e-4c36-9a63-8e7a3f1d2c10"


@pytest.fixture
def zones(emulator: DigitalOceanEmulator) -> None:
    """The user's account: example.com (with a record of theirs) and a deeper zone."""
    assert raw(emulator, "POST", "/v2/domains", {"name": "example.com"})[0] == 201
    assert raw(emulator, "POST", "/v2/domains", {"name": "deep.example.org"})[0] == 201
    assert raw(emulator, "POST", "/v2/domains/example.com/records",
               {"type": "A", "name": "www", "data": "192.0.2.7", "ttl": 300})[0] == 201


def _sandbox_view(emulator: DigitalOceanEmulator) -> dict[str, dict]:
    with urllib.request.urlopen(f"{emulator.url}/_emulator/dns-zones", timeout=10) as resp:
        return {z["zone"]: z for z in json.loads(resp.read())}


def test_the_zone_is_the_longest_suffix():
    assert zone_for("apps.example.com", ["example.com", "com", "ample.com"]) == "example.com"
    assert zone_for("a.b.deep.example.org", ["example.org", "deep.example.org"]) == "deep.example.org"
    assert zone_for("example.com", ["example.com"]) == "example.com"
    assert zone_for("badexample.com", ["example.com"]) is None


def test_open_dns_finds_the_zone_and_a_missing_one_is_bad_input(emulator, zones):
    zone = open_dns("digitalocean", APP)
    assert isinstance(zone, Zone) and zone.zone == "example.com" and zone.provider == "digitalocean"
    with pytest.raises(InputError) as refused:
        Zone("apps.nowhere.net")
    assert refused.value.exit_code == 2
    assert "apps.nowhere.net" in str(refused.value) and "digitalocean" in str(refused.value).lower()


def test_upsert_creates_replaces_and_reads_record_sets(emulator, zones):
    zone = Zone(APP)
    assert zone.record_sets(APP) == []
    zone.upsert(RecordSet(APP, "A", ("198.18.3.20", "198.18.0.20")))
    zone.upsert(RecordSet(APP, "TXT", (OWNER,)))
    assert zone.record_sets(APP) == [RecordSet(APP, "A", ("198.18.0.20", "198.18.3.20")),
                                     RecordSet(APP, "TXT", (OWNER,))]
    shown = _sandbox_view(emulator)["example.com"]["records"]  # what the sandbox's DNS server answers
    a = next(r for r in shown if (r["name"], r["type"]) == (APP, "A"))
    assert sorted(a["values"]) == ["198.18.0.20", "198.18.3.20"] and a["ttl"] == 60
    assert {"name": APP, "type": "TXT", "ttl": 60, "values": [OWNER]} in shown

    zone.upsert(RecordSet(APP, "A", ("198.18.3.20", "198.18.1.20"), ttl=120))  # one address went, one came
    assert zone.record_sets(APP)[0] == RecordSet(APP, "A", ("198.18.1.20", "198.18.3.20"), ttl=120)
    emulator.clear_calls()
    zone.upsert(RecordSet(APP, "A", ("198.18.1.20", "198.18.3.20"), ttl=120))
    assert not any(not r.startswith("GET") for r in emulator.calls), "an unchanged set is left alone"


def test_delete_removes_only_that_set_and_keeps_the_users_records(emulator, zones):
    zone = Zone(APP)
    zone.upsert(RecordSet(APP, "A", ("198.18.3.20",)))
    zone.upsert(RecordSet(APP, "TXT", (OWNER,)))
    zone.delete(RecordSet(APP, "A", ()))
    assert zone.record_sets(APP) == [RecordSet(APP, "TXT", (OWNER,))]
    zone.delete(RecordSet(APP, "TXT", ()))
    zone.delete(RecordSet(APP, "TXT", ()))  # absent counts as done
    assert zone.record_sets(APP) == []
    assert zone.record_sets("www.example.com") == [RecordSet("www.example.com", "A", ("192.0.2.7",), 300)]
    assert [s.type for s in zone.record_sets("example.com")] == ["NS"]


def test_a_name_outside_the_zone_is_refused(emulator, zones):
    with pytest.raises(InputError):
        Zone(APP).upsert(RecordSet("apps.example.net", "A", ("198.18.3.20",)))


def test_a_bad_record_is_refused_with_the_apis_status_and_message(emulator, zones):
    with pytest.raises(ApiError) as refused:
        Zone(APP).upsert(RecordSet(APP, "A", ("not-an-address",)))
    assert refused.value.status == 422 and refused.value.error_id == "unprocessable_entity"
    assert "IPv4" in refused.value.detail
    with pytest.raises(ApiError) as too_short:
        Zone(APP).upsert(RecordSet(APP, "A", ("198.18.3.20",), ttl=5))
    assert too_short.value.status == 422 and "TTL" in too_short.value.detail


def test_records_and_domains_have_every_field_of_the_apis_own_examples(emulator, zones):
    checker = emulator.checker
    if checker is None:
        pytest.skip("DigitalOcean's OpenAPI description is not on this machine")
    paths = checker.document["paths"]
    listing = checker.document["components"]["examples"]["domain_records_all"]["value"]
    ours = raw(emulator, "GET", "/v2/domains/example.com/records")[1]
    assert _shape_gaps({k: v for k, v in listing.items() if k != "links"}, ours) == []
    response = paths["/v2/domains/{domain_name}"]["get"]["responses"]["200"]
    while "$ref" in response:
        response = functools.reduce(lambda node, key: node[key], response["$ref"].removeprefix("#/").split("/"),
                                    checker.document)
    got = response["content"]["application/json"]
    assert _shape_gaps(got["schema"]["example"], raw(emulator, "GET", "/v2/domains/example.com")[1]) == []
    assert "IN NS ns1.digitalocean.com." in raw(emulator, "GET", "/v2/domains/example.com")[1]["domain"]["zone_file"]


@pytest.mark.parametrize(("fixture", "path"), [
    ("_v2_domains.json", "/v2/domains"),
    ("_v2_domains_testdomain.json", "/v2/domains/example.com"),
    ("_v2_domains_testdomain_records.json", "/v2/domains/example.com/records"),
    ("_v2_domains_testdomain_records_1234560.json", "/v2/domains/example.com/records/{first}"),
])
def test_domains_have_every_field_of_the_recorded_responses(emulator, zones, fixture, path):
    """libcloud's recordings of the real API (its DNS tests' fixtures, read from the package)."""
    libcloud = pytest.importorskip("libcloud", reason="apache-libcloud is not installed (test extra)")
    recorded = Path(libcloud.__file__).parent / "test" / "dns" / "fixtures" / "digitalocean" / fixture
    if not recorded.is_file():
        pytest.skip(f"libcloud's recorded response {fixture} is not in this installation")
    first = min(next(iter(emulator.domains.values())))
    assert _shape_gaps(json.loads(recorded.read_text()), raw(emulator, "GET", path.format(first=first))[1]) == []
