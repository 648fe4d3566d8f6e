"""regions.yaml checked against DigitalOcean's catalog in the emulator: every size cast accepts
(the defaults among them) with the region map's image, in every DigitalOcean region of the
map, is accepted by a droplet create made with pydo; a wrong one is refused as the API does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pydo
import pytest
from azure.core.exceptions import HttpResponseError

from provisioner.clouds.loopback import static_bearer
from provisioner.regions import load_region_map

from .conftest import TOKEN


@pytest.fixture
def client(emulator):
    return pydo.Client(token=TOKEN, endpoint=emulator.url, authentication_policy=static_bearer(TOKEN), retry_total=0)


def _combinations() -> list[tuple[str, str, str]]:
    region_map = load_region_map()
    out = []
    for region in region_map.regions.values():
        do = region.clouds.get("digitalocean")
        if do is None:
            continue
        sizes = dict.fromkeys([*do.sizes.values(), *region_map.sizes["digitalocean"]])
        out += [(do.region, size, do.image["slug"]) for size in sizes]
    return out


def test_the_region_map_names_digitalocean_regions_sizes_and_images():
    combos = _combinations()
    assert len({region for region, _, _ in combos}) >= 5
    assert {"s-2vcpu-8gb-amd", "s-2vcpu-4gb"} <= {size for _, size, _ in combos}


def test_every_size_and_image_of_the_region_map_is_accepted_in_every_region(emulator, client):
    for region, size, image in _combinations():
        made = client.droplets.create(body={"name": f"cat-{region}-{size}", "region": region, "size": size,
                                            "image": image})
        assert "droplet" in made, (region, size, image, made)
        assert made["droplet"]["size"]["slug"] == size and made["droplet"]["region"]["slug"] == region
        assert made["droplet"]["image"]["slug"] == image
    assert len(emulator.droplets) == len(_combinations())
    regions = {r["slug"]: r for r in client.regions.list(per_page=200)["regions"]}
    sizes = {s["slug"]: s for s in client.sizes.list(per_page=200)["sizes"]}
    for region, size, _ in _combinations():
        assert regions[region]["available"] and size in regions[region]["sizes"] and region in sizes[size]["regions"]


@pytest.mark.parametrize(("change", "message"), [
    ({"size": "s-2vcpu-4gb-typo"}, "You specified an invalid size for Droplet creation."),
    ({"image": "ubuntu-24-04-x86"}, "You specified an invalid image for Droplet creation."),
    ({"region": "fra2"}, "You specified an invalid region for Droplet creation."),
])
def test_a_typo_in_the_region_map_would_be_refused(emulator, client, change, message):
    region, size, image = _combinations()[0]
    body = {"name": "typo", "region": region, "size": size, "image": image, **change}
    with pytest.raises(HttpResponseError) as refused:
        client.droplets.create(body=body)
    assert refused.value.status_code == 422
    answer = refused.value.response.json()
    assert (answer["id"], answer["message"]) == ("unprocessable_entity", message)
    assert emulator.droplets == {}


def _refresh_script():
    path = Path(__file__).resolve().parents[3] / "scripts" / "refresh_do_catalog.py"
    spec = importlib.util.spec_from_file_location("refresh_do_catalog", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_refresh_script_reads_the_api_listings_and_names_what_changed(emulator):
    script = _refresh_script()
    listings = [script.fetch(emulator.url, TOKEN, path, key) for path, key in (
        ("/v2/regions", "regions"), ("/v2/sizes", "sizes"), ("/v2/images", "images"))]
    assert script.differences(*listings) == []  # the emulator serves the catalog itself
    regions, sizes, images = listings
    next(s for s in sizes if s["slug"] == "s-2vcpu-4gb")["price_monthly"] = 26.0
    sizes[:] = [s for s in sizes if s["slug"] != "g-2vcpu-8gb"]
    found = script.differences(regions, sizes, images)
    assert any(line.startswith("SIZES['s-2vcpu-4gb']") and "26.0" in line for line in found)
    assert "SIZES: 'g-2vcpu-8gb' is not offered by the API" in found
