"""The region map: the shipped file is complete, and malformed files name file, region and key."""

from pathlib import Path

import pytest

from provisioner.errors import ConfigError
from provisioner.preflight import check_pairs, rtt_lower_bound_ms
from provisioner.regions import CLOUDS, load_region_map, parse_region_map


def test_shipped_map_has_at_least_eight_regions_each_complete():
    regions = load_region_map()
    assert len(regions.regions) >= 8
    for region in regions.regions.values():
        assert region.clouds, region.key
        for c in region.clouds.values():
            assert c.region and c.metro and c.image
            assert set(c.sizes) == {"master", "worker"}
            assert all(size in regions.sizes[c.cloud] for size in c.sizes.values())


def test_us_east_maps_to_the_products_regions():
    east = load_region_map().region("us-east")
    assert {c: east.clouds[c].region for c in CLOUDS} == {
        "aws": "us-east-1",
        "gcp": "us-east4",
        "azure": "eastus",
        "digitalocean": "nyc1",
    }


def test_published_measurement_is_found_in_either_order():
    east = load_region_map().region("us-east")
    m = east.measurement("digitalocean", "aws")
    assert m is not None and m.rtt_ms == pytest.approx(8.6) and "metaforecast" in m.source


def test_bound_between_ashburn_and_new_york_is_about_3_5_ms():
    east = load_region_map().region("us-east")
    assert rtt_lower_bound_ms(east.clouds["aws"], east.clouds["digitalocean"]) == pytest.approx(3.45, abs=0.1)
    assert rtt_lower_bound_ms(east.clouds["aws"], east.clouds["gcp"]) == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(
    ("region", "clouds", "threshold", "verdicts"),
    [
        ("us-east", ["aws", "gcp", "azure"], 10, {"ok"}),
        ("us-east", ["aws", "digitalocean"], 10, {"warn"}),  # published 8.6 ms, within 20%
        ("us-east", ["aws", "digitalocean"], 8, {"fail"}),
        ("us-east", ["gcp", "digitalocean"], 4, {"warn"}),  # bound 3.45 ms, no publication
        ("us-northwest", ["aws", "gcp"], 10, {"fail"}),  # published 13.22 ms
        ("eu-frankfurt", ["aws", "gcp", "azure", "digitalocean"], 10, {"ok"}),
    ],
)
def test_pair_verdicts(region, clouds, threshold, verdicts):
    reg = load_region_map().region(region)
    assert {c.verdict for c in check_pairs(reg, clouds, threshold)} == verdicts


BASE = """
schema_version: 1
latency_threshold_ms: 10
networks: {aws: 10.10.0.0/16, gcp: 10.0.0.0/16, azure: 10.20.0.0/16, digitalocean: 10.100.0.0/20-10.255.240.0/20}
sizes: {aws: [t3.medium], gcp: [e2-medium], azure: [Standard_B2s], digitalocean: [s-2vcpu-4gb]}
regions:
  r1:
    name: R1
    clouds:
      aws: {region: us-east-1, zone: null, metro: X, lat: 1, lon: 2, sizes: {master: t3.medium, worker: t3.medium}, image: {slug: x}}
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("lat: 1", "lat: north"), "regions.r1.clouds.aws.lat: expected float"),
        (("region: us-east-1, ", ""), "regions.r1.clouds.aws.region: missing"),
        (("worker: t3.medium}", "worker: t9.huge}"), "regions.r1.clouds.aws.sizes.worker"),
        (("aws: {region", "mars: {region"), "unknown cloud 'mars'"),
        (("lat: 1", "lat: 100"), "coordinates out of range"),
        (("gcp: 10.0.0.0/16", "gcp: 10.0.0.0/33"), "networks.gcp"),
        (("name: R1", "name: [R1"), "line"),
    ],
)
def test_malformed_map_names_file_region_and_key(change, message):
    text = BASE.replace(*change)
    with pytest.raises(ConfigError) as err:
        parse_region_map(text, Path("/x/regions.yaml"))
    assert "/x/regions.yaml" in str(err.value)
    assert message in str(err.value)
