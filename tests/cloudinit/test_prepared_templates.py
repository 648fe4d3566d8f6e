"""Templates compiled ahead (cloudinit.prepare_templates, what a create does while its networks
are made) render the same user-data, and a template that does not compile is still reported by
the rendering, not by the preparation."""

from __future__ import annotations

import shutil
from importlib.resources import as_file
from pathlib import Path

import jinja2
import pytest

from provisioner.cloudinit import prepare_templates
from provisioner.data import CLOUD_INIT_TEMPLATES, data_file

from .conftest import Render


def _copy_of_the_shipped_templates(tmp_path: Path) -> Path:
    templates = tmp_path / "templates"
    with as_file(data_file(CLOUD_INIT_TEMPLATES)) as shipped:
        shutil.copytree(shipped, templates)
    return templates


def test_prepared_templates_render_the_same_user_data(render: Render, tmp_path: Path) -> None:
    templates = _copy_of_the_shipped_templates(tmp_path)
    before = {role: render(role, "gcp", templates=templates) for role in ("master", "worker")}
    fresh = tmp_path / "fresh"
    shutil.copytree(templates, fresh)
    prepare_templates(fresh)
    assert {role: render(role, "gcp", templates=fresh) for role in ("master", "worker")} == before
    prepare_templates()  # the shipped ones, as a create does
    assert render("worker", "gcp") == before["worker"]


def test_a_template_that_does_not_compile_is_reported_when_rendered(render: Render, tmp_path: Path) -> None:
    templates = _copy_of_the_shipped_templates(tmp_path)
    (templates / "worker.yaml.j2").write_text("{% if %}\n")
    prepare_templates(templates)  # says nothing: the rendering does
    with pytest.raises(jinja2.TemplateSyntaxError):
        render("worker", "aws", templates=templates)
    assert render("master", "aws", templates=templates).startswith("#cloud-config")
