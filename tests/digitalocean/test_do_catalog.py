"""regions.yaml checked against DigitalOcean's catalog in the emulator: every size cast accepts
(the defaults among them) with the region map's image, in every DigitalOcean region of the
map, is accepted by a droplet create made with pydo; a wrong one is refused as the API does."""

from __future__ import annotations

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
