"""Fixtures for the cloud-init tests: key pairs, a renderer with the engine's arguments, and the
`cloud-init` command (skipped when missing, except under CI, where it must be installed)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from provisioner.cloudinit import render_user_data
from provisioner.keys import KeyPair, new_ed25519
from provisioner.plan import node_name

Render = Callable[..., str]


@pytest.fixture(scope="module")
def host_key() -> KeyPair:
    return new_ed25519("root@demo-aws-m1")


@pytest.fixture(scope="module")
def cluster_key() -> KeyPair:
    return new_ed25519("cast-demo")


@pytest.fixture(scope="module")
def render(host_key: KeyPair, cluster_key: KeyPair) -> Render:
    """render(role, cloud, **overrides): the user-data the engine would send for node 1 of
    `role` on `cloud` in cluster "demo"."""

    def _render(role: str, cloud: str, templates: Path | None = None, **overrides: str) -> str:
        args = dict(
            cluster="demo",
            node=overrides.pop("node", None) or node_name("demo", cloud, role, 1),
            role=role,
            cloud=cloud,
            host_key_private=host_key.private,
            host_key_public=host_key.public,
            authorized_key=cluster_key.public,
        )
        args.update(overrides)
        return render_user_data(templates=templates, **args)  # type: ignore[arg-type]

    return _render


@pytest.fixture(scope="session")
def cloud_init() -> str:
    """The cloud-init command. Missing: a skip on a workstation, a failure under CI (CI
    installs it, so a missing tool must not hide a broken template)."""
    path = shutil.which("cloud-init")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("cloud-init is not installed but CI is set: scripts/setup.sh installs it, "
                        "and without it no template is validated")
        pytest.skip("cloud-init is not installed (apt-get install -y --no-install-recommends cloud-init): "
                    "the rendered user-data is not validated against its schema")
    return path
