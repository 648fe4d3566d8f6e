"""The cluster side of ingress: ingress-nginx and cert-manager pinned by version and SHA-256,
applied after flannel by the first master, the controller on the load balancers' fixed NodePorts
with its Prometheus endpoint, every image by digest, and a Let's Encrypt issuer only when the
user gave an e-mail (checked with kubectl's own kustomize on manifests of the release manifests'
shape, and on the real ones when their paths are given)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from provisioner.clouds.balancing import HTTP_NODEPORT, HTTPS_NODEPORT
from provisioner.kube import cert_manager, ingress_nginx, paths
from provisioner.kube.addons import IngressSettings
from provisioner.kube.bootstrap import init_bootstrap
from provisioner.kube.versions import (
    CERT_MANAGER_IMAGES,
    CERT_MANAGER_MANIFEST_SHA256,
    CERT_MANAGER_MANIFEST_URL,
    CERT_MANAGER_VERSION,
    INGRESS_NGINX_IMAGES,
    INGRESS_NGINX_MANIFEST_SHA256,
    INGRESS_NGINX_MANIFEST_URL,
    INGRESS_NGINX_VERSION,
)

from .addon_manifests import (
    CERT_MANAGER_ENV,
    INGRESS_NGINX_ENV,
    built,
    kustomize,
    needs_kubectl,
    pod_images,
    synthetic_cert_manager,
    synthetic_ingress_nginx,
    upstream_or_skip,
)
from .sample_cluster import CERTIFICATE_KEY, CLUSTER, KUBERNETES_VERSION, NODES, TOKEN

EMAIL = "ops@example.com"


def _init(ingress: IngressSettings | None):
    return init_bootstrap(CLUSTER, NODES, token=TOKEN, certificate_key=CERTIFICATE_KEY,
                          kubernetes_version=KUBERNETES_VERSION, ingress=ingress)


def _ingress_files() -> dict[str, str]:
    return {"deploy.yaml": synthetic_ingress_nginx(),
            "metrics-service.yaml": dict(ingress_nginx.files())[ingress_nginx.METRICS],
            "kustomization.yaml": ingress_nginx.kustomization()}


def test_both_manifests_are_pinned_by_version_and_checksum() -> None:
    assert f"/controller-{INGRESS_NGINX_VERSION}/" in INGRESS_NGINX_MANIFEST_URL
    assert f"/{CERT_MANAGER_VERSION}/" in CERT_MANAGER_MANIFEST_URL
    for module, sha in ((ingress_nginx, INGRESS_NGINX_MANIFEST_SHA256), (cert_manager, CERT_MANAGER_MANIFEST_SHA256)):
        assert re.fullmatch(r"[0-9a-f]{64}", sha)
        files = dict(module.files() if module is ingress_nginx else module.files(EMAIL))
        assert files[module.CHECKSUM] == f"{sha}  {module.MANIFEST}\n"
    download, check, apply = ingress_nginx.commands(paths.ADMIN_KUBECONFIG)
    assert download.startswith("curl -fsSL") and INGRESS_NGINX_MANIFEST_URL in download
    assert check == f"sha256sum --check --strict --quiet {ingress_nginx.CHECKSUM}"
    assert apply.endswith(f"apply -k {ingress_nginx.DIRECTORY}")


def test_the_addons_are_applied_after_the_pod_network_and_only_with_ingress() -> None:
    plain = _init(None)
    assert not any("ingress-nginx" in c or "cert-manager" in c for c in plain.commands)
    assert not any(paths.INGRESS_NGINX_DIR in f.path or paths.CERT_MANAGER_DIR in f.path for f in plain.files)

    commands = list(_init(IngressSettings(EMAIL)).commands)
    flannel = commands.index(f"kubectl --kubeconfig {paths.ADMIN_KUBECONFIG} apply -k {paths.FLANNEL_DIR}")
    nginx = commands.index(ingress_nginx.commands(paths.ADMIN_KUBECONFIG)[0])
    certs = commands.index(cert_manager.commands(paths.ADMIN_KUBECONFIG, EMAIL)[0])
    assert flannel < nginx < certs
    assert commands[nginx:] == [*ingress_nginx.commands(paths.ADMIN_KUBECONFIG),
                                *cert_manager.commands(paths.ADMIN_KUBECONFIG, EMAIL)]


def test_the_issuer_comes_only_with_an_email_and_after_cert_manager_is_up() -> None:
    without = _init(IngressSettings(None))
    assert not any(f.path == cert_manager.ISSUER_FILE for f in without.files)
    assert not any("cluster-issuer" in c or " wait " in c for c in without.commands)

    with_email = _init(IngressSettings(EMAIL))
    issuer = yaml.safe_load(next(f.content for f in with_email.files if f.path == cert_manager.ISSUER_FILE))
    acme = issuer["spec"]["acme"]
    assert issuer["kind"] == "ClusterIssuer" and acme["email"] == EMAIL
    assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory"
    assert acme["solvers"] == [{"http01": {"ingress": {"ingressClassName": ingress_nginx.INGRESS_CLASS}}}]
    wait, apply = with_email.commands[-2:]
    assert "wait --for=condition=Available" in wait and all(f"deployment/{d}" in wait for d in cert_manager.DEPLOYMENTS)
    assert f"apply -f {cert_manager.ISSUER_FILE}" in apply and apply.startswith(f"timeout {cert_manager.ISSUER_WAIT_S} ")


@pytest.mark.parametrize("bad", ["", "ops", "ops@localhost", "a b@example.com", "ops@example.com\nkind: Secret"])
def test_an_email_that_is_not_one_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an e-mail address"):
        IngressSettings(bad)


def test_every_image_is_pinned_by_a_sha256_digest() -> None:
    for image in (*INGRESS_NGINX_IMAGES, *CERT_MANAGER_IMAGES):
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", image.digest), image
    for module, images in ((ingress_nginx, INGRESS_NGINX_IMAGES), (cert_manager, CERT_MANAGER_IMAGES)):
        overrides = yaml.safe_load(module.kustomization())["images"]
        assert overrides == [{"name": i.name, "digest": i.digest} for i in images]


@needs_kubectl
def test_the_controller_listens_on_the_load_balancers_node_ports(tmp_path: Path) -> None:
    objects = {(d["kind"], d["metadata"]["name"]): d for d in built(tmp_path, _ingress_files())}
    service = objects[("Service", ingress_nginx.CONTROLLER)]["spec"]
    assert service["type"] == "NodePort"
    assert {p["port"]: p["nodePort"] for p in service["ports"]} == {80: HTTP_NODEPORT, 443: HTTPS_NODEPORT}
    assert {p["port"]: p["targetPort"] for p in service["ports"]} == {80: "http", 443: "https"}  # kept
    default = objects[("IngressClass", "nginx")]["metadata"]["annotations"]
    assert default == {"ingressclass.kubernetes.io/is-default-class": "true"}


@needs_kubectl
def test_the_controllers_prometheus_endpoint_is_enabled_and_served(tmp_path: Path) -> None:
    objects = {(d["kind"], d["metadata"]["name"]): d for d in built(tmp_path, _ingress_files())}
    pod = objects[("Deployment", ingress_nginx.CONTROLLER)]["spec"]["template"]
    (controller,) = pod["spec"]["containers"]
    assert controller["args"][-1] == "--enable-metrics=true"
    assert {"name": "metrics", "containerPort": 10254, "protocol": "TCP"} in controller["ports"]
    metrics = objects[("Service", ingress_nginx.METRICS_SERVICE)]
    assert metrics["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert metrics["spec"]["ports"] == [{"name": "metrics", "port": 10254, "targetPort": "metrics", "protocol": "TCP"}]
    assert metrics["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


@needs_kubectl
def test_the_kustomization_refuses_a_manifest_whose_first_container_is_not_the_controller(tmp_path: Path) -> None:
    result = kustomize(tmp_path, {**_ingress_files(), "deploy.yaml": synthetic_ingress_nginx("sidecar")})
    assert result.returncode != 0 and "test" in result.stderr


@needs_kubectl
def test_every_addon_pod_runs_a_digest_pinned_image(tmp_path: Path) -> None:
    (tmp_path / "nginx").mkdir()
    (tmp_path / "certs").mkdir()
    nginx = pod_images(built(tmp_path / "nginx", _ingress_files()))
    assert sorted(nginx) == sorted(f"{i.name}@{i.digest}" for i in INGRESS_NGINX_IMAGES)
    certs = built(tmp_path / "certs", {"cert-manager.yaml": synthetic_cert_manager(),
                                       "kustomization.yaml": cert_manager.kustomization()})
    assert sorted(pod_images(certs)) == sorted(f"{i.name}@{i.digest}" for i in CERT_MANAGER_IMAGES)
    for deployment in (d for d in certs if d["kind"] == "Deployment"):  # up before any worker joins
        assert deployment["spec"]["template"]["spec"]["tolerations"] == [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]


@needs_kubectl
def test_the_pinned_ingress_nginx_manifest_runs_only_digest_pinned_images(tmp_path: Path) -> None:
    manifest = upstream_or_skip(INGRESS_NGINX_ENV, INGRESS_NGINX_MANIFEST_URL)
    assert hashlib.sha256(manifest).hexdigest() == INGRESS_NGINX_MANIFEST_SHA256
    named = set(pod_images(list(yaml.safe_load_all(manifest))))
    assert named == {f"{i.name}:{i.tag}@{i.digest}" for i in INGRESS_NGINX_IMAGES}
    documents = built(tmp_path, {**_ingress_files(), "deploy.yaml": manifest})
    assert set(pod_images(documents)) == {f"{i.name}@{i.digest}" for i in INGRESS_NGINX_IMAGES}
    service = next(d for d in documents if (d["kind"], d["metadata"]["name"]) == ("Service", ingress_nginx.CONTROLLER))
    assert sorted(p["nodePort"] for p in service["spec"]["ports"]) == [HTTP_NODEPORT, HTTPS_NODEPORT]


@needs_kubectl
def test_the_pinned_cert_manager_manifest_runs_only_digest_pinned_images(tmp_path: Path) -> None:
    manifest = upstream_or_skip(CERT_MANAGER_ENV, CERT_MANAGER_MANIFEST_URL)
    assert hashlib.sha256(manifest).hexdigest() == CERT_MANAGER_MANIFEST_SHA256
    assert set(pod_images(list(yaml.safe_load_all(manifest)))) == {f"{i.name}:{i.tag}" for i in CERT_MANAGER_IMAGES}
    documents = built(tmp_path, {"cert-manager.yaml": manifest, "kustomization.yaml": cert_manager.kustomization()})
    assert set(pod_images(documents)) == {f"{i.name}@{i.digest}" for i in CERT_MANAGER_IMAGES}


def test_an_external_ip_that_is_not_an_address_is_refused():
    import pytest

    from provisioner.kube.addons import IngressSettings

    with pytest.raises(ValueError):
        IngressSettings(external_ips=("198.18.1.20\nexternalIPs: [1.2.3.4]",))
