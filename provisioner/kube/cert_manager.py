"""The certificate manager: cert-manager, pinned to one release, its static manifest checked by
SHA-256 and adjusted by a kustomization cast writes beside it; and, when the user gave an e-mail
address, a ClusterIssuer for Let's Encrypt with the ACME HTTP-01 challenge solved through the
ingress controller.

The kustomization changes two things in the upstream manifest:
- its three Deployments (cert-manager, cert-manager-cainjector, cert-manager-webhook) tolerate
  the control-plane taint, so cert-manager comes up on the first master during the bootstrap,
  before any worker has joined; the ClusterIssuer can only be created once its webhook answers;
- every image is pulled by its pinned SHA-256 digest (versions.CERT_MANAGER_IMAGES).

The issuer is applied after the Deployments are available, and again until the webhook accepts
it (for up to ISSUER_WAIT_S: the webhook serves only once cainjector has given it its CA).
"""

from __future__ import annotations

from typing import Any

from . import paths, yamltext
from .ingress_nginx import INGRESS_CLASS
from .versions import CERT_MANAGER_IMAGES, CERT_MANAGER_MANIFEST_SHA256, CERT_MANAGER_MANIFEST_URL, CERT_MANAGER_VERSION

NAMESPACE = "cert-manager"
DEPLOYMENTS = ("cert-manager", "cert-manager-cainjector", "cert-manager-webhook")
ISSUER = "letsencrypt"
ACME_SERVER = "https://acme-v02.api.letsencrypt.org/directory"
ACCOUNT_KEY_SECRET = "letsencrypt-account-key"
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
READY_WAIT_S = 300
ISSUER_WAIT_S = 300

DIRECTORY = paths.CERT_MANAGER_DIR
MANIFEST = f"{DIRECTORY}/cert-manager.yaml"
CHECKSUM = f"{DIRECTORY}/cert-manager.yaml.sha256"
KUSTOMIZATION = f"{DIRECTORY}/kustomization.yaml"
ISSUER_FILE = f"{DIRECTORY}/cluster-issuer.yaml"

def cluster_issuer(email: str) -> dict[str, Any]:
    """Let's Encrypt's production ACME server, HTTP-01 solved by an Ingress of the nginx class."""
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": {"name": ISSUER},
        "spec": {"acme": {
            "email": email,
            "server": ACME_SERVER,
            "privateKeySecretRef": {"name": ACCOUNT_KEY_SECRET},
            "solvers": [{"http01": {"ingress": {"ingressClassName": INGRESS_CLASS}}}],
        }},
    }


def kustomization() -> str:
    """kustomization.yaml: the pinned manifest, its Deployments tolerating the control plane,
    every image pinned by digest."""
    tolerate = [{"op": "add", "path": "/spec/template/spec/tolerations",
                 "value": [{"key": CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]}]
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["cert-manager.yaml"],
        "patches": [
            {"target": {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": NAMESPACE,
                        "name": name},
             "patch": yamltext.dump(tolerate)}
            for name in DEPLOYMENTS
        ],
        "images": [{"name": image.name, "digest": image.digest} for image in CERT_MANAGER_IMAGES],
    }
    header = (f"Managed by cast: cert-manager {CERT_MANAGER_VERSION}, up on the control plane before "
              "the workers join.")
    return yamltext.dump_all([document], header)


def files(email: str | None) -> tuple[tuple[str, str], ...]:
    """The files cast writes (path -> text, public: the e-mail is the user's ACME contact); the
    issuer only with an `email`."""
    written = [(CHECKSUM, f"{CERT_MANAGER_MANIFEST_SHA256}  {MANIFEST}\n"), (KUSTOMIZATION, kustomization())]
    if email:
        written.append((ISSUER_FILE, yamltext.dump(cluster_issuer(email))))
    return tuple(written)


def commands(kubeconfig: str, email: str | None) -> tuple[str, ...]:
    """Download the pinned manifest, check its SHA-256, apply the kustomization; with an e-mail,
    wait for the Deployments, then apply the issuer until the webhook accepts it."""
    kubectl = f"kubectl --kubeconfig {kubeconfig}"
    steps = [
        f"curl -fsSL --retry 5 -o {MANIFEST} {CERT_MANAGER_MANIFEST_URL}",
        f"sha256sum --check --strict --quiet {CHECKSUM}",
        f"{kubectl} apply -k {DIRECTORY}",
    ]
    if email:
        steps += [
            f"{kubectl} -n {NAMESPACE} wait --for=condition=Available --timeout={READY_WAIT_S}s "
            + " ".join(f"deployment/{d}" for d in DEPLOYMENTS),
            f"timeout {ISSUER_WAIT_S} sh -c 'until {kubectl} apply -f {ISSUER_FILE}; do sleep 5; done'",
        ]
    return tuple(steps)
