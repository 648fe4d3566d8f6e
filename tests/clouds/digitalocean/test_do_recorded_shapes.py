"""The emulator's answers have the shape of responses recorded from the real API: the
DigitalOcean v2 fixtures apache-libcloud ships with its tests (read from the installed
package, not copied here). Every field a recorded response has, the emulator's has too, with
a value of the same JSON type (null where the API also sends null for it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import PUBLIC_KEY, raw

libcloud = pytest.importorskip("libcloud", reason="apache-libcloud is not installed (test extra)")
FIXTURES = Path(libcloud.__file__).parent / "test" / "compute" / "fixtures" / "digitalocean_v2"
# fields the API sends as null in some recordings and as a value in others
NULLABLE = {"kernel", "slug", "next_backup_window", "gateway"}


def _recorded(name: str) -> Any:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"libcloud's recorded response {name} is not in this installation")
    return json.loads(path.read_text())


def _shape_gaps(recorded: Any, ours: Any, where: str = "") -> list[str]:
    """Where `ours` lacks a field `recorded` has, or has one of another JSON type."""
    if isinstance(recorded, dict):
        if not isinstance(ours, dict):
            return [f"{where}: an object in the recording, {type(ours).__name__} here"]
        gaps = []
        for key, value in recorded.items():
            if key not in ours:
                gaps.append(f"{where}.{key}: missing")
            elif value is None or ours[key] is None:
                if key not in NULLABLE and value != ours[key]:
                    gaps.append(f"{where}.{key}: null in one, {ours[key]!r} / {value!r}")
            else:
                gaps += _shape_gaps(value, ours[key], f"{where}.{key}")
        return gaps
    if isinstance(recorded, list):
        if not isinstance(ours, list):
            return [f"{where}: a list in the recording, {type(ours).__name__} here"]
        if recorded and ours and isinstance(recorded[0], dict):
            return _shape_gaps(recorded[0], ours[0], f"{where}[0]")
        return []
    if isinstance(recorded, bool) != isinstance(ours, bool):
        return [f"{where}: {type(recorded).__name__} in the recording, {type(ours).__name__} here"]
    numbers = (int, float)
    if isinstance(recorded, numbers) and isinstance(ours, numbers):
        return []
    if type(recorded) is not type(ours):
        return [f"{where}: {type(recorded).__name__} in the recording, {type(ours).__name__} here"]
    return []


def test_a_droplet_has_every_field_of_the_recorded_ones(emulator):
    emulator.boot_delay_s = 0
    made = raw(emulator, "POST", "/v2/droplets", {"name": "shape", "region": "fra1", "size": "s-2vcpu-4gb",
                                                  "image": "ubuntu-24-04-x64", "tags": ["shape"]})[1]
    ours = raw(emulator, "GET", f"/v2/droplets/{made['droplet']['id']}")[1]
    assert _shape_gaps(_recorded("list_node.json"), ours) == []
    listed = raw(emulator, "GET", "/v2/droplets")[1]
    recorded = _recorded("list_nodes.json")
    recorded.pop("links")  # the recording's links name pages that one listing here does not have
    assert _shape_gaps(recorded, listed) == []


@pytest.mark.parametrize(("fixture", "path"), [
    ("list_sizes.json", "/v2/sizes"),
    ("list_locations.json", "/v2/regions"),
    ("list_images.json", "/v2/images"),
    ("get_image.json", "/v2/images/ubuntu-24-04-x64"),
])
def test_the_catalog_has_every_field_of_the_recorded_listings(emulator, fixture, path):
    assert _shape_gaps(_recorded(fixture), raw(emulator, "GET", path)[1]) == []


def test_keys_and_errors_have_the_recorded_shape(emulator):
    created = raw(emulator, "POST", "/v2/account/keys", {"name": "shape", "public_key": PUBLIC_KEY})[1]
    assert _shape_gaps(_recorded("create_key_pair.json"), created) == []
    assert _shape_gaps(_recorded("list_key_pairs.json"), raw(emulator, "GET", "/v2/account/keys")[1]) == []
    refused = raw(emulator, "POST", "/v2/droplets", {"name": "x", "region": "fra1", "size": "s-2vcpu-4gb",
                                                     "image": "no-such-image"})[1]
    recorded = _recorded("error_invalid_image.json")
    assert {k: refused[k] for k in recorded} == recorded  # same id and message, word for word
