"""The ingress controller: ingress-nginx, pinned to one release, its bare-metal manifest checked by
SHA-256 and adjusted by a kustomization cast writes beside it (applied with `kubectl apply -k`).

What the kustomization changes in the upstream manifest:
- the controller's Service (already of type NodePort) gets the fixed NodePorts every cloud's load
  balancer forwards to: 80 -> HTTP_NODEPORT, 443 -> HTTPS_NODEPORT (clouds/balancing.py). The
  balancers' health check, GET /healthz on the HTTP NodePort, is answered 200 by the controller's
  default server;
- the controller's Prometheus metrics: `--enable-metrics=true` set explicitly, the container port
  `metrics` (10254, where /metrics is served) named, and a ClusterIP Service
  `ingress-nginx-controller-metrics` in front of it, annotated for Prometheus' usual pod/service
  discovery (prometheus.io/scrape, /port, /path);
- the IngressClass `nginx` becomes the cluster's default, so an Ingress without a class is served;
- every image is pulled by its pinned SHA-256 digest (versions.INGRESS_NGINX_IMAGES).

The names the patches target (namespace ingress-nginx, Service and Deployment
ingress-nginx-controller whose first container is `controller`, IngressClass nginx) are those of
the manifest at INGRESS_NGINX_VERSION; the JSON patch tests the container's name first, so an
unexpected layout fails the apply instead of patching the wrong container.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..clouds.balancing import HTTP_NODEPORT, HTTPS_NODEPORT
from . import paths, yamltext
from .versions import (
    INGRESS_NGINX_IMAGES,
    INGRESS_NGINX_MANIFEST_SHA256,
    INGRESS_NGINX_MANIFEST_URL,
    INGRESS_NGINX_VERSION,
)

NAMESPACE = "ingress-nginx"
CONTROLLER = "ingress-nginx-controller"  # its Deployment and its Service
CONTAINER = "controller"
INGRESS_CLASS = "nginx"
METRICS_PORT = 10254
METRICS_PATH = "/metrics"
METRICS_SERVICE = f"{CONTROLLER}-metrics"
SELECTOR = {"app.kubernetes.io/component": "controller", "app.kubernetes.io/instance": "ingress-nginx",
            "app.kubernetes.io/name": "ingress-nginx"}

DIRECTORY = paths.INGRESS_NGINX_DIR
MANIFEST = f"{DIRECTORY}/deploy.yaml"
CHECKSUM = f"{DIRECTORY}/deploy.yaml.sha256"
METRICS = f"{DIRECTORY}/metrics-service.yaml"
KUSTOMIZATION = f"{DIRECTORY}/kustomization.yaml"


def metrics_service() -> dict[str, Any]:
    """The ClusterIP Service in front of the controller's Prometheus endpoint."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": METRICS_SERVICE, "namespace": NAMESPACE, "labels": dict(SELECTOR),
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT),
                            "prometheus.io/path": METRICS_PATH},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": dict(SELECTOR),
            "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }


def service_patch(external_ips: Sequence[str] = ()) -> dict[str, Any]:
    """The controller's Service on the fixed NodePorts (ports merge by `port`); with
    `external_ips`, those addresses too, on ports 80 and 443: a load balancer that delivers
    packets to the nodes on the port they arrived on (GCP's passthrough one) reaches the
    controller through them (kube-proxy takes its address's ports 80 and 443)."""
    spec: dict[str, Any] = {"type": "NodePort", "ports": [
        {"name": "http", "port": 80, "protocol": "TCP", "nodePort": HTTP_NODEPORT},
        {"name": "https", "port": 443, "protocol": "TCP", "nodePort": HTTPS_NODEPORT},
    ]}
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": CONTROLLER, "namespace": NAMESPACE},
            "spec": spec}


def kustomization(external_ips: Sequence[str] = ()) -> str:
    """kustomization.yaml: the pinned manifest and the metrics Service, with the NodePort,
    metrics and default-class patches and every image pinned by digest."""
    container = "/spec/template/spec/containers/0"
    controller_patch = [
        {"op": "test", "path": f"{container}/name", "value": CONTAINER},
        {"op": "add", "path": f"{container}/args/-", "value": "--enable-metrics=true"},
        {"op": "add", "path": f"{container}/ports/-",
         "value": {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}},
    ]
    class_patch = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": INGRESS_CLASS, "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
    }
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["deploy.yaml", "metrics-service.yaml"],
        "patches": [
            {"patch": yamltext.dump(service_patch(external_ips))},
            {"target": {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": NAMESPACE,
                        "name": CONTROLLER},
             "patch": yamltext.dump(controller_patch)},
            {"patch": yamltext.dump(class_patch)},
        ],
        "images": [{"name": image.name, "digest": image.digest} for image in INGRESS_NGINX_IMAGES],
    }
    header = (
        f"Managed by cast: ingress-nginx {INGRESS_NGINX_VERSION}, its Service on NodePorts "
        f"{HTTP_NODEPORT} (http) and {HTTPS_NODEPORT} (https),\n"
        f"the cloud load balancers' backends; Prometheus metrics on :{METRICS_PORT}{METRICS_PATH} "
        f"(Service {METRICS_SERVICE})."
    )
    return yamltext.dump_all([document], header)


def files(external_ips: Sequence[str] = ()) -> tuple[tuple[str, str], ...]:
    """The files cast writes (path -> text, public)."""
    return (
        (CHECKSUM, f"{INGRESS_NGINX_MANIFEST_SHA256}  {MANIFEST}\n"),
        (METRICS, yamltext.dump(metrics_service())),
        (KUSTOMIZATION, kustomization(external_ips)),
    )


def commands(kubeconfig: str) -> tuple[str, ...]:
    """Download the pinned manifest, check its SHA-256, apply the kustomization."""
    return (
        f"curl -fsSL --retry 5 -o {MANIFEST} {INGRESS_NGINX_MANIFEST_URL}",
        f"sha256sum --check --strict --quiet {CHECKSUM}",
        f"kubectl --kubeconfig {kubeconfig} apply -k {DIRECTORY}",
    )
