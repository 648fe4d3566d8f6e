"""The Kubernetes release cast installs, pinned in one place. Nodes get kubeadm, kubelet and
kubectl from the Kubernetes project's apt repository for this minor (pkgs.k8s.io has one
repository per minor, so pinning the repository pins the minor; the node takes its newest patch
and holds it)."""

from __future__ import annotations

KUBERNETES_MINOR = "1.36"

# pkgs.k8s.io, the project's own package host: one repository per minor, signed by the key
# published beside it (Release.key).
KUBERNETES_APT_REPOSITORY = f"https://pkgs.k8s.io/core:/stable:/v{KUBERNETES_MINOR}/deb/"
KUBERNETES_APT_KEY_URL = f"{KUBERNETES_APT_REPOSITORY}Release.key"

# The pod network (provisioner/kube/cni.py): flannel's manifest as the repository holds it at the
# release tag, pinned by its SHA-256 (git show v0.28.9:Documentation/kube-flannel.yml | sha256sum).
FLANNEL_VERSION = "v0.28.9"
FLANNEL_MANIFEST_URL = (
    f"https://raw.githubusercontent.com/flannel-io/flannel/{FLANNEL_VERSION}/Documentation/kube-flannel.yml"
)
FLANNEL_MANIFEST_SHA256 = "e875824be2f552b45711dbda91af81b17eb961d00025d914d9fef18fad8f09c0"
