"""Every role on every cloud renders to user-data that cloud-init's own schema accepts, and the
check is able to fail: a template bug of the kind cloud-init would silently skip is rejected."""

from __future__ import annotations

import shutil
import subprocess
from importlib.resources import as_file
from pathlib import Path

import pytest

from provisioner.data import CLOUD_INIT_TEMPLATES, data_file
from provisioner.regions import CLOUDS, ROLES

from .conftest import Render


def schema_check(cloud_init: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cloud_init, "schema", "--config-file", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("role", ROLES)
def test_rendered_user_data_is_valid_cloud_config(cloud_init: str, render: Render, tmp_path: Path,
                                                  role: str, cloud: str) -> None:
    path = tmp_path / f"{cloud}-{role}.yaml"
    path.write_text(render(role, cloud))
    result = schema_check(cloud_init, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_a_broken_template_is_rejected(cloud_init: str, render: Render, tmp_path: Path) -> None:
    # The real templates, with the package list turned into one string: cloud-init would skip
    # the packages at boot, so the schema check must catch it.
    templates = tmp_path / "templates"
    with as_file(data_file(CLOUD_INIT_TEMPLATES)) as shipped:
        shutil.copytree(shipped, templates)
    base = templates / "base.yaml.j2"
    text = base.read_text()
    loop = "packages:\n{% for package in packages %}\n  - {{ package }}\n{% endfor %}\n"
    assert loop in text, "the package list moved: update this test's corruption"
    base.write_text(text.replace(loop, 'packages: {{ packages | join(" ") }}\n'))

    path = tmp_path / "broken.yaml"
    path.write_text(render("worker", "aws", templates=templates))
    result = schema_check(cloud_init, path)
    assert result.returncode != 0
    assert "packages: 'wireguard-tools" in result.stderr
    assert "is not of type 'array'" in result.stderr


def test_user_data_with_a_key_file_is_valid_cloud_config(cloud_init: str, render: Render, tmp_path: Path) -> None:
    # the cluster spec's kubernetes.apt_key as a file: cloud-init writes it (write_files)
    from provisioner.cloudinit import AptSource

    armored = ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0000BYJKwYBBAHaRw8BAQdA\n=abcd\n"
               "-----END PGP PUBLIC KEY BLOCK-----\n")
    source = AptSource("http://mirror.internal/k8s/", "0123456789ABCDEF0123456789ABCDEF01234567", key_text=armored)
    path = tmp_path / "key-file.yaml"
    path.write_text(render("master", "gcp", apt_source=source))
    result = schema_check(cloud_init, path)
    assert result.returncode == 0, result.stdout + result.stderr
