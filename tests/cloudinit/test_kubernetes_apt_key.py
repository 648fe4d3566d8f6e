"""The Kubernetes apt key is trusted only when its fingerprint is the pinned one: the rendered
check runs before the key is installed, and its shell, run here against throw-away keys made
with gpg (curl faked on PATH, the node's /etc/apt moved to a scratch directory), refuses a
wrong key or an extra key and installs the right one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provisioner.cloudinit import STATE_DIR
from provisioner.kube.versions import KUBERNETES_APT_KEY_FINGERPRINT

from .conftest import Render

KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
SOURCES = "/etc/apt/sources.list.d/kubernetes.list"

needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed (apt-get install gnupg)")


def key_script(render: Render) -> str:
    data = yaml.safe_load(render("worker", "aws"))
    found = [entry[2] for entry in data["runcmd"] if SOURCES in entry[2]]
    assert len(found) == 1
    return found[0]


def test_the_pinned_fingerprint_is_checked_before_the_key_is_installed(render: Render) -> None:
    assert re.fullmatch(r"[0-9A-F]{40}", KUBERNETES_APT_KEY_FINGERPRINT)
    script = key_script(render)
    assert KUBERNETES_APT_KEY_FINGERPRINT in script
    check = script.index("gpg --batch --show-keys --with-colons")
    assert check < script.index(f"--dearmor -o {KEYRING}") < script.index(SOURCES)
    assert "fingerprint" in script and "boot-failures" in script


# --- the check's shell, run against throw-away keys ----------------------------------------

def new_key(gnupg: Path, uid: str) -> tuple[str, bytes]:
    """A fresh ed25519 signing key in `gnupg`: (its fingerprint, the armored public key)."""
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
                   env=env, check=True, capture_output=True, timeout=60)
    listing = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys", uid], env=env, check=True,
                             capture_output=True, text=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    armored = subprocess.run(["gpg", "--batch", "--armor", "--export", uid], env=env, check=True,
                             capture_output=True).stdout
    return fingerprint, armored


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[str, bytes]]]:
    gnupg = tmp_path_factory.mktemp("gnupg")
    gnupg.chmod(0o700)
    try:
        yield {name: new_key(gnupg, f"cast test {name} <{name}@example.invalid>") for name in ("pinned", "other")}
    finally:  # making a key starts a gpg-agent for this home: end it, it outlives the test otherwise
        subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "all"], capture_output=True, timeout=30)


def run_key_step(render: Render, tmp_path: Path, served: bytes, pinned: str) -> tuple[Path, str]:
    """Run the rendered step with `pinned` as the pinned fingerprint, curl serving `served`;
    return (the scratch root standing for /, the failures file's text)."""
    root, state, bin_dir, home = (tmp_path / d for d in ("root", "state", "bin", "gnupg"))
    for d in (root / "etc/apt/sources.list.d", state, bin_dir, home):
        d.mkdir(parents=True)
    home.chmod(0o700)
    (tmp_path / "served.key").write_bytes(served)
    curl = bin_dir / "curl"
    curl.write_text('#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n'
                    f'cp {tmp_path / "served.key"} "$out"\n')
    curl.chmod(0o755)
    script = (key_script(render).replace(KUBERNETES_APT_KEY_FINGERPRINT, pinned)
              .replace(STATE_DIR, str(state)).replace("/etc/apt/", f"{root}/etc/apt/"))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GNUPGHOME": str(home)}
    subprocess.run(["sh", "-c", script], env=env, check=True, timeout=60)
    failures = state / "boot-failures"
    return root, failures.read_text() if failures.exists() else ""


@needs_gpg
def test_a_key_with_another_fingerprint_is_refused(render: Render, keys: dict[str, tuple[str, bytes]],
                                                  tmp_path: Path) -> None:
    _, other = keys["other"]
    root, failures = run_key_step(render, tmp_path, other, KUBERNETES_APT_KEY_FINGERPRINT)
    assert failures.startswith("Kubernetes apt key fingerprint")
    assert KUBERNETES_APT_KEY_FINGERPRINT in failures
    assert not (root / KEYRING.lstrip("/")).exists(), "the wrong key is not installed"
    assert not (root / SOURCES.lstrip("/")).exists(), "the repository is not added"


@needs_gpg
def test_the_pinned_key_with_another_beside_it_is_refused(render: Render, keys: dict[str, tuple[str, bytes]],
                                                         tmp_path: Path) -> None:
    pinned, good = keys["pinned"]
    _, other = keys["other"]
    root, failures = run_key_step(render, tmp_path, good + other, pinned)
    assert failures.startswith("Kubernetes apt key fingerprint")
    assert not (root / KEYRING.lstrip("/")).exists()
    assert not (root / SOURCES.lstrip("/")).exists()


@needs_gpg
def test_the_key_with_the_pinned_fingerprint_is_installed(render: Render, keys: dict[str, tuple[str, bytes]],
                                                         tmp_path: Path) -> None:
    pinned, good = keys["pinned"]
    root, failures = run_key_step(render, tmp_path, good, pinned)
    assert failures == ""
    keyring = root / KEYRING.lstrip("/")
    shown = subprocess.run(["gpg", "--batch", "--show-keys", "--with-colons", str(keyring)], check=True,
                           capture_output=True, text=True, env={**os.environ, "GNUPGHOME": str(tmp_path / "gnupg")})
    assert f"fpr:::::::::{pinned}:" in shown.stdout
    sources = (root / SOURCES.lstrip("/")).read_text()
    assert sources.startswith(f"deb [signed-by={keyring}] https://pkgs.k8s.io/core:/stable:/v")
