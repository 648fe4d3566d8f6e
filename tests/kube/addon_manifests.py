"""For the add-on tests: manifests with the names, layout and image references of ingress-nginx's
and cert-manager's pinned release manifests (written for these tests, not copied from them), the
real ones when a path is given in CAST_INGRESS_NGINX_MANIFEST / CAST_CERT_MANAGER_MANIFEST, and
`kubectl kustomize` over a kustomization cast writes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.kube.versions import (
    CERT_MANAGER_IMAGES,
    INGRESS_NGINX_IMAGES,
)

INGRESS_NGINX_ENV = "CAST_INGRESS_NGINX_MANIFEST"
CERT_MANAGER_ENV = "CAST_CERT_MANAGER_MANIFEST"
FLANNEL_ENV = "CAST_FLANNEL_MANIFEST"

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (its kustomize) is not installed")
LABELS = {"app.kubernetes.io/component": "controller", "app.kubernetes.io/instance": "ingress-nginx",
          "app.kubernetes.io/name": "ingress-nginx"}


def _pod(containers: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": {"containers": containers}}


def synthetic_ingress_nginx(first_container: str = "controller") -> str:
    controller, certgen = (f"{i.name}:{i.tag}@{i.digest}" for i in INGRESS_NGINX_IMAGES)
    namespace = "ingress-nginx"
    documents = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ingress-nginx-controller", "namespace": namespace},
         "spec": {"type": "NodePort", "selector": LABELS, "ports": [
             {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "appProtocol": "http"},
             {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "appProtocol": "https"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "ingress-nginx-controller", "namespace": namespace},
         "spec": {"selector": {"matchLabels": LABELS}, "template": _pod([
             {"name": first_container, "image": controller,
              "args": ["/nginx-ingress-controller", "--ingress-class=nginx"],
              "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"},
                        {"containerPort": 443, "name": "https", "protocol": "TCP"}]}], LABELS)}},
        {"apiVersion": "batch/v1", "kind": "Job",
         "metadata": {"name": "ingress-nginx-admission-create", "namespace": namespace},
         "spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [
             {"name": "create", "image": certgen, "args": ["create"]}]}}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
         "spec": {"controller": "k8s.io/ingress-nginx"}},
    ]
    return yaml.safe_dump_all(documents)


def synthetic_cert_manager() -> str:
    namespace = "cert-manager"
    documents: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    for name, image in zip(("cert-manager", "cert-manager-cainjector", "cert-manager-webhook"), CERT_MANAGER_IMAGES,
                           strict=True):
        labels = {"app.kubernetes.io/name": name.removeprefix("cert-manager-") or "cert-manager"}
        documents.append({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels},
                     "template": _pod([{"name": name, "image": f"{image.name}:{image.tag}"}], labels)}})
    return yaml.safe_dump_all(documents)


def upstream(env: str, url: str) -> bytes | None:
    """The real release manifest, when its path is in `env` (curl -fsSLo <file> <url>)."""
    path = os.environ.get(env)
    return Path(path).read_bytes() if path else None


def upstream_or_skip(env: str, url: str) -> bytes:
    found = upstream(env, url)
    if found is None:
        pytest.skip(f"{env} is not set: the path of the release manifest cast pins (curl -fsSLo <file> {url})")
    return found




def kustomize(directory: Path, files: dict[str, str | bytes]) -> subprocess.CompletedProcess[str]:
    """`kubectl kustomize` over `files` (name -> content) written into `directory`."""
    for name, content in files.items():
        target = directory / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120)


def built(directory: Path, files: dict[str, str | bytes]) -> list[dict[str, Any]]:
    result = kustomize(directory, files)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def pod_images(documents: list[Any]) -> list[str]:
    """Every container and init container image of every pod template in `documents`."""
    images = []
    for document in documents:
        pod = ((document or {}).get("spec") or {}).get("template", {}).get("spec", {})
        images += [c["image"] for c in pod.get("initContainers", []) + pod.get("containers", [])]
    return images
