"""What an installed cast reads is what the repository holds: the region map and the cloud-init
templates are shipped with the package and read through importlib.resources; the version comes
from the package metadata."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from provisioner.data import CLOUD_INIT_TEMPLATES, REGION_MAP, data_file

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_region_map_is_the_top_level_one() -> None:
    assert data_file(REGION_MAP).read_text(encoding="utf-8") == (REPO / "regions.yaml").read_text(encoding="utf-8")


def test_every_cloud_init_template_is_shipped() -> None:
    shipped = {p.name: p.read_text(encoding="utf-8") for p in data_file(CLOUD_INIT_TEMPLATES).iterdir()}
    top = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "templates" / "cloud-init").glob("*.j2")}
    assert top and shipped == top


def test_version_comes_from_the_package_metadata() -> None:
    done = subprocess.run([sys.executable, "-m", "provisioner", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"cast {version('cast')}"
