"""The pod network: flannel's pod range and MTU fit the mesh, the manifest is pinned, and the
kustomization patches what it means to (checked with kubectl's own kustomize on a manifest of
the same shape as flannel's)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner import ipam, mesh
from provisioner.kube import cni, paths
from provisioner.kube.versions import FLANNEL_IMAGES, FLANNEL_MANIFEST_SHA256, FLANNEL_MANIFEST_URL, FLANNEL_VERSION

FLANNEL = next(i for i in FLANNEL_IMAGES if i.name.endswith("/flannel"))
CNI_PLUGIN = next(i for i in FLANNEL_IMAGES if i.name.endswith("/flannel-cni-plugin"))


def test_pod_mtu_fits_inside_the_mesh() -> None:
    assert cni.POD_MTU == mesh.MTU - 50 == 1330
    assert cni.POD_MTU < mesh.MTU
    conf = json.loads(cni.net_conf())
    # flannel's Backend.MTU is the encapsulated packet's size: exactly the mesh's.
    assert conf["Backend"] == {"Type": "vxlan", "MTU": mesh.MTU}
    assert conf["Network"] == str(ipam.PODS)


def test_manifest_is_pinned_by_tag_and_checksum() -> None:
    assert f"/{FLANNEL_VERSION}/" in FLANNEL_MANIFEST_URL and FLANNEL_MANIFEST_URL.startswith("https://")
    network = cni.cni_files(paths.ADMIN_KUBECONFIG)
    files = dict(network.files)
    assert files[cni.CHECKSUM] == f"{FLANNEL_MANIFEST_SHA256}  {cni.MANIFEST}\n"
    download, check, apply = network.commands
    assert FLANNEL_MANIFEST_URL in download and f"-o {cni.MANIFEST}" in download
    assert check == f"sha256sum --check --strict --quiet {cni.CHECKSUM}"
    assert apply.endswith(f"apply -k {cni.DIRECTORY}")


def _synthetic_manifest(first_container: str) -> str:
    """A manifest with the names, layout and images (by tag) of flannel's (written for this test)."""
    flannel, cni_plugin = f"{FLANNEL.name}:{FLANNEL.tag}", f"{CNI_PLUGIN.name}:{CNI_PLUGIN.tag}"
    documents = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-flannel"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel"},
         "data": {"cni-conf.json": '{"name": "cbr0"}\n', "net-conf.json": '{"Network": "10.244.0.0/16"}\n'}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet",
         "metadata": {"name": "kube-flannel-ds", "namespace": "kube-flannel"},
         "spec": {"selector": {"matchLabels": {"app": "flannel"}},
                  "template": {"metadata": {"labels": {"app": "flannel"}},
                               "spec": {"initContainers": [
                                   {"name": "install-cni-plugin", "image": cni_plugin, "command": ["cp"]},
                                   {"name": "install-cni", "image": flannel, "command": ["cp"]}],
                                   "containers": [
                                   {"name": first_container, "image": flannel,
                                    "args": ["--ip-masq", "--kube-subnet-mgr"]},
                                   {"name": "sidecar", "image": flannel, "args": ["--x"]}]}}}},
    ]
    return yaml.safe_dump_all(documents)


def _pod_images(documents: list[Any]) -> list[str]:
    """Every container and init container image of every pod template in `documents`."""
    images = []
    for document in documents:
        pod = ((document or {}).get("spec") or {}).get("template", {}).get("spec", {})
        images += [c["image"] for c in pod.get("initContainers", []) + pod.get("containers", [])]
    return images


def _kustomize(tmp_path: Path, first_container: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "kube-flannel.yml").write_text(_synthetic_manifest(first_container))
    (tmp_path / "kustomization.yaml").write_text(cni.kustomization())
    return subprocess.run(["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60)


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (its kustomize) is not installed")


@needs_kubectl
def test_kustomization_sets_pod_range_mtu_and_mesh_interface(tmp_path: Path) -> None:
    result = _kustomize(tmp_path, "kube-flannel")
    assert result.returncode == 0, result.stderr
    objects = {d["kind"]: d for d in yaml.safe_load_all(result.stdout)}
    data = objects["ConfigMap"]["data"]
    assert json.loads(data["net-conf.json"]) == json.loads(cni.net_conf())
    assert data["cni-conf.json"] == '{"name": "cbr0"}\n'
    flanneld, sidecar = objects["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    assert flanneld["args"] == ["--ip-masq", "--kube-subnet-mgr", f"--iface={mesh.INTERFACE}"]
    assert sidecar["args"] == ["--x"]


@needs_kubectl
def test_kustomization_refuses_a_manifest_whose_first_container_is_not_flanneld(tmp_path: Path) -> None:
    result = _kustomize(tmp_path, "something-else")
    assert result.returncode != 0
    assert "test" in result.stderr


def test_images_are_pinned_by_sha256_digest() -> None:
    assert {i.name for i in FLANNEL_IMAGES} == {"ghcr.io/flannel-io/flannel", "ghcr.io/flannel-io/flannel-cni-plugin"}
    assert FLANNEL.tag == FLANNEL_VERSION
    for image in FLANNEL_IMAGES:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", image.digest), image
    overrides = yaml.safe_load(cni.kustomization())["images"]
    assert overrides == [{"name": i.name, "digest": i.digest} for i in FLANNEL_IMAGES]


@needs_kubectl
def test_every_image_is_pulled_by_its_pinned_digest(tmp_path: Path) -> None:
    result = _kustomize(tmp_path, "kube-flannel")
    assert result.returncode == 0, result.stderr
    images = _pod_images(list(yaml.safe_load_all(result.stdout)))
    assert len(images) == 4
    pinned = {f"{i.name}@{i.digest}" for i in FLANNEL_IMAGES}
    assert set(images) == pinned, "every init container and container runs a digest-pinned image"


@needs_kubectl
@pytest.mark.skipif(not os.environ.get("CAST_FLANNEL_MANIFEST"),
                    reason="CAST_FLANNEL_MANIFEST is not set: the path of flannel's manifest as cast pins it "
                           f"(curl -fsSLo kube-flannel.yml {FLANNEL_MANIFEST_URL})")
def test_the_pinned_manifest_runs_only_digest_pinned_images(tmp_path: Path) -> None:
    """The real manifest (its SHA-256 the pinned one): every image it names, by tag, is one cast
    pins, and after the kustomization every pod template runs it by digest."""
    manifest = Path(os.environ["CAST_FLANNEL_MANIFEST"]).read_bytes()
    assert hashlib.sha256(manifest).hexdigest() == FLANNEL_MANIFEST_SHA256
    upstream = _pod_images(list(yaml.safe_load_all(manifest)))
    assert set(upstream) == {f"{i.name}:{i.tag}" for i in FLANNEL_IMAGES}
    (tmp_path / "kube-flannel.yml").write_bytes(manifest)
    (tmp_path / "kustomization.yaml").write_text(cni.kustomization())
    result = subprocess.run(["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    images = _pod_images(list(yaml.safe_load_all(result.stdout)))
    assert len(images) == len(upstream)
    assert set(images) == {f"{i.name}@{i.digest}" for i in FLANNEL_IMAGES}
