"""Every Kubernetes manifest cast writes or applies, validated by kubernetes-validate against the
schemas of the Kubernetes version cast pins (versions.KUBERNETES_MINOR), strictly (a field the
schema does not know is an error): cast's own resources and patches; what each kustomization
(flannel, ingress-nginx, cert-manager) builds, over manifests of the release manifests' shape, or
over the real ones when their paths are given (CAST_FLANNEL_MANIFEST, CAST_INGRESS_NGINX_MANIFEST,
CAST_CERT_MANAGER_MANIFEST); and the ClusterIssuer against the schema of the CRD cert-manager's
manifest defines. kubeadm's configuration files are not Kubernetes API objects (kubeadm checks
them itself at init and join), so they are not among them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.kube import cert_manager, cni, ingress_nginx
from provisioner.kube.versions import (
    CERT_MANAGER_MANIFEST_URL,
    FLANNEL_MANIFEST_URL,
    INGRESS_NGINX_MANIFEST_URL,
    KUBERNETES_MINOR,
)

from .addon_manifests import (
    CERT_MANAGER_ENV,
    FLANNEL_ENV,
    INGRESS_NGINX_ENV,
    built,
    needs_kubectl,
    synthetic_cert_manager,
    synthetic_ingress_nginx,
    upstream,
    upstream_or_skip,
)
from .test_kube_cni import _synthetic_manifest as synthetic_flannel

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed "
                                          "(test extra)")
SCHEMAS = f"{KUBERNETES_MINOR}.0"


def _problems(documents: list[dict[str, Any]]) -> list[str]:
    problems = []
    for d in documents:
        try:
            kubernetes_validate.validate(d, SCHEMAS, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{d.get('kind')} {d.get('metadata', {}).get('name')}: {first}")
    return problems


def _resource_patches(kustomization: str) -> list[dict[str, Any]]:
    """The strategic-merge patches of a kustomization: partial objects, each still of its kind's schema."""
    patches = [yaml.safe_load(p["patch"]) for p in yaml.safe_load(kustomization)["patches"]]
    return [p for p in patches if isinstance(p, dict) and "kind" in p]


def test_the_pinned_kubernetes_version_has_schemas() -> None:
    assert SCHEMAS in kubernetes_validate.utils.all_versions(), (
        f"kubernetes-validate has no schemas for Kubernetes {SCHEMAS}: update it (pyproject test extra)")


def test_a_wrong_field_is_caught() -> None:
    """The check itself: strict validation refuses what the API server would not take."""
    bad = {**ingress_nginx.metrics_service()}
    bad["spec"] = {**bad["spec"], "port": [{"port": 10254}]}
    assert _problems([bad]) and not _problems([ingress_nginx.metrics_service()])


def test_casts_own_resources_and_patches_are_valid() -> None:
    documents = [ingress_nginx.metrics_service(), ingress_nginx.service_patch()]
    for kustomization in (cni.kustomization(), ingress_nginx.kustomization(), cert_manager.kustomization()):
        documents += _resource_patches(kustomization)
    assert {d["kind"] for d in documents} >= {"Service", "ConfigMap", "IngressClass"}
    assert _problems(documents) == []


ADDONS: dict[str, tuple[str, Callable[[], str], str, Callable[[], str], str]] = {
    # name: (manifest file, kustomization, env, synthetic manifest, url)
    "flannel": ("kube-flannel.yml", cni.kustomization, FLANNEL_ENV, lambda: synthetic_flannel("kube-flannel"),
                FLANNEL_MANIFEST_URL),
    "ingress-nginx": ("deploy.yaml", ingress_nginx.kustomization, INGRESS_NGINX_ENV, synthetic_ingress_nginx,
                      INGRESS_NGINX_MANIFEST_URL),
    "cert-manager": ("cert-manager.yaml", cert_manager.kustomization, CERT_MANAGER_ENV, synthetic_cert_manager,
                     CERT_MANAGER_MANIFEST_URL),
}


@needs_kubectl
@pytest.mark.parametrize("addon", sorted(ADDONS))
def test_what_each_kustomization_applies_is_valid(tmp_path: Path, addon: str) -> None:
    manifest, kustomization, env, synthetic, url = ADDONS[addon]
    files: dict[str, str | bytes] = {manifest: upstream(env, url) or synthetic(), "kustomization.yaml": kustomization()}
    if addon == "ingress-nginx":
        files["metrics-service.yaml"] = yaml.safe_dump(ingress_nginx.metrics_service())
    documents = built(tmp_path, files)
    assert documents
    assert _problems(documents) == []


def test_the_cluster_issuer_is_valid_by_cert_managers_own_schema() -> None:
    import jsonschema

    manifest = upstream_or_skip(CERT_MANAGER_ENV, CERT_MANAGER_MANIFEST_URL)
    crd = next(d for d in yaml.safe_load_all(manifest)
               if d and d.get("kind") == "CustomResourceDefinition" and d["spec"]["names"]["kind"] == "ClusterIssuer")
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    issuer = cert_manager.cluster_issuer("ops@example.com")
    jsonschema.validate(issuer, version["schema"]["openAPIV3Schema"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**issuer, "spec": {"acme": {"email": "x@example.com"}}},
                            version["schema"]["openAPIV3Schema"])
