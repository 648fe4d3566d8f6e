"""The cluster spec's `kubernetes:` section: another apt repository and signing key (a URL or a
file) instead of pkgs.k8s.io, validated (exit 2 naming the field), stored with the spec, and
rendered into every node's cloud-init; without it, the user-data is pkgs.k8s.io's as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provisioner.cloudinit import AptSource, render_user_data
from provisioner.errors import InputError
from provisioner.keys import new_ed25519
from provisioner.kube.versions import KUBERNETES_APT_KEY_FINGERPRINT, KUBERNETES_APT_REPOSITORY
from provisioner.regions import load_region_map
from provisioner.spec import build_spec, spec_from_dict

REGIONS = load_region_map()
FINGERPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"
ARMORED = ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0000BYJKwYBBAHaRw8BAQdA\n=abcd\n"
           "-----END PGP PUBLIC KEY BLOCK-----\n")


def spec_file(tmp_path: Path, kubernetes: object) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"name": "demo", "region": "us-east", "clouds": {"aws": {"masters": 1}},
                                    "kubernetes": kubernetes}))
    return path


def render(source: AptSource | None) -> str:
    host, client = new_ed25519("demo-aws-m1"), new_ed25519("cast-demo")
    return render_user_data(cluster="demo", node="demo-aws-m1", role="master", cloud="aws",
                            host_key_private=host.private, host_key_public=host.public,
                            authorized_key=client.public, apt_source=source)


def key_step(text: str) -> str:
    return next(c[2] for c in yaml.safe_load(text)["runcmd"] if "kubernetes.list" in c[2])


def test_a_repository_with_a_key_url(tmp_path: Path) -> None:
    spec = build_spec(REGIONS, name=None, file=spec_file(tmp_path, {
        "apt_repository": "http://mirror.internal/k8s/v1.36/deb/", "apt_key": "http://mirror.internal/k8s/Release.key",
        "apt_key_fingerprint": FINGERPRINT.lower()[:20] + " " + FINGERPRINT.lower()[20:]}))
    assert spec.kubernetes == AptSource("http://mirror.internal/k8s/v1.36/deb/", FINGERPRINT,
                                        key_url="http://mirror.internal/k8s/Release.key")
    assert spec_from_dict(spec.to_dict()) == spec
    step = key_step(render(spec.kubernetes))
    assert "curl -fsSL --retry 5 -o \"$key\" http://mirror.internal/k8s/Release.key" in step
    assert f"!= \"1:{FINGERPRINT}\"" in step
    assert "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] http://mirror.internal/k8s/v1.36/deb/ /" in step
    assert "pkgs.k8s.io" not in render(spec.kubernetes)


def test_a_key_file_is_written_by_cloud_init_and_not_downloaded(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "mirror.asc").write_text(ARMORED)
    spec = build_spec(REGIONS, name=None, file=spec_file(tmp_path, {
        "apt_repository": "https://mirror.internal/k8s/", "apt_key": "keys/mirror.asc",
        "apt_key_fingerprint": FINGERPRINT}))
    assert spec.kubernetes is not None and spec.kubernetes.key_text == ARMORED
    text = render(spec.kubernetes)
    files = {f["path"]: f for f in yaml.safe_load(text)["write_files"]}
    assert files["/var/lib/cast/kubernetes-release.key"]["content"] == ARMORED
    assert files["/var/lib/cast/kubernetes-release.key"]["permissions"] == "0644"
    assert "curl" not in key_step(text)


def test_without_the_section_nodes_use_pkgs_k8s_io(tmp_path: Path) -> None:
    spec = build_spec(REGIONS, name="demo", region="us-east", cloud_flags=["aws:1:0"])
    assert spec.kubernetes is None and "kubernetes" not in spec.to_dict()
    step = key_step(render(None))
    assert f"{KUBERNETES_APT_REPOSITORY}Release.key" in step and KUBERNETES_APT_KEY_FINGERPRINT in step


@pytest.mark.parametrize(("section", "field", "text"), [
    ("mirror", "kubernetes", "expected a mapping"),
    ({"apt_repository": "http://m/", "apt_key": "http://m/k"}, "kubernetes.apt_key_fingerprint", "missing"),
    ({"apt_repository": "http://m/", "apt_key": "http://m/k", "apt_key_fingerprint": FINGERPRINT, "x": 1},
     "kubernetes.x", "unknown key"),
    ({"apt_repository": "ftp://m/", "apt_key": "http://m/k", "apt_key_fingerprint": FINGERPRINT},
     "kubernetes.apt_repository", "not an http(s) URL"),
    ({"apt_repository": "http://m/'; reboot; '", "apt_key": "http://m/k", "apt_key_fingerprint": FINGERPRINT},
     "kubernetes.apt_repository", "not an http(s) URL"),
    ({"apt_repository": "http://m/", "apt_key": "http://m/k", "apt_key_fingerprint": "ABCD"},
     "kubernetes.apt_key_fingerprint", "not a key fingerprint"),
    ({"apt_repository": "http://m/", "apt_key": "no-such.asc", "apt_key_fingerprint": FINGERPRINT},
     "kubernetes.apt_key", "cannot be read"),
])
def test_bad_values_name_the_field(tmp_path: Path, section: object, field: str, text: str) -> None:
    with pytest.raises(InputError) as raised:
        build_spec(REGIONS, name=None, file=spec_file(tmp_path, section))
    assert raised.value.exit_code == 2
    assert field in str(raised.value) and text in str(raised.value)


def test_a_key_file_that_is_not_an_armored_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key.asc").write_text("runcmd: [reboot]\n")
    with pytest.raises(InputError, match="kubernetes.apt_key.*not an ASCII-armored"):
        build_spec(REGIONS, name=None, file=spec_file(tmp_path, {
            "apt_repository": "http://m/", "apt_key": str(tmp_path / "key.asc"), "apt_key_fingerprint": FINGERPRINT}))
