"""The Kubernetes release cast installs, pinned in one place. Nodes get kubeadm, kubelet and
kubectl from the Kubernetes project's apt repository for this minor (pkgs.k8s.io has one
repository per minor, so pinning the repository pins the minor; the node takes its newest patch
and holds it)."""

from __future__ import annotations

from dataclasses import dataclass

KUBERNETES_MINOR = "1.36"

# pkgs.k8s.io, the project's own package host: one repository per minor, signed by the key
# published beside it (Release.key).
KUBERNETES_APT_REPOSITORY = f"https://pkgs.k8s.io/core:/stable:/v{KUBERNETES_MINOR}/deb/"
KUBERNETES_APT_KEY_URL = f"{KUBERNETES_APT_REPOSITORY}Release.key"
# The one key that file may hold, by fingerprint (checked on the node before the key is trusted).
# pkgs.k8s.io is built and signed by the openSUSE Build Service project isv:kubernetes, one key for
# every minor: "isv:kubernetes OBS Project <isv:kubernetes@build.opensuse.org>", rsa2048, created
# 2022-08-25. The Kubernetes docs do not print it (kubernetes/website#42718 asks them to); this is
# the fingerprint dnf shows importing https://pkgs.k8s.io/core:/stable:/v1.36/rpm/repodata/repomd.xml.key
# and users report for the deb Release.key of v1.28 to v1.35 (kubernetes/release#3818). Its
# expiry (2026-12-29 at last renewal) is extended by OBS in place: the fingerprint stays; a new
# key would be a new pin, after checking it with `gpg --show-keys` on the published Release.key.
KUBERNETES_APT_KEY_FINGERPRINT = "DE15B14486CD377B9E876E1A234654DA9A296436"

# The pod network (provisioner/kube/cni.py): flannel's manifest as the repository holds it at the
# release tag, pinned by its SHA-256 (git show v0.28.9:Documentation/kube-flannel.yml | sha256sum).
FLANNEL_VERSION = "v0.28.9"
FLANNEL_MANIFEST_URL = (
    f"https://raw.githubusercontent.com/flannel-io/flannel/{FLANNEL_VERSION}/Documentation/kube-flannel.yml"
)
FLANNEL_MANIFEST_SHA256 = "e875824be2f552b45711dbda91af81b17eb961d00025d914d9fef18fad8f09c0"


@dataclass(frozen=True)
class PinnedImage:
    """A container image the pinned manifest names by `tag`, pulled instead by `digest` (the
    SHA-256 of its multi-arch index), so that a re-pushed tag cannot change what runs."""

    name: str
    tag: str
    digest: str


# The images flannel's manifest at FLANNEL_VERSION names (its init containers copy the CNI plugin
# into /opt/cni/bin as root), each overridden by digest in the kustomization (kube/cni.py).
# Where the digests come from: flannel-io publishes none in its repository (manifest, chart values
# and docs name tags only). These are the index digests recorded by `docker buildx imagetools
# inspect` on 2026-09-30 in kkonstantin08/trafficops (docs/evidence/stage1-local-2026-09-30.md),
# a third party's record. Check them, and take new ones on every flannel bump, from the registry:
#   crane digest ghcr.io/flannel-io/flannel:<tag>   (or: docker buildx imagetools inspect <ref>)
# A wrong digest fails closed: the node refuses to run the image (ErrImagePull).
FLANNEL_IMAGES = (
    PinnedImage("ghcr.io/flannel-io/flannel", FLANNEL_VERSION,
                "sha256:708a2c9c1cfbfe529d1dbb249cb7113af117f3ed26b5e3e4c8ee015e10555204"),
    PinnedImage("ghcr.io/flannel-io/flannel-cni-plugin", "v1.9.1-flannel3",
                "sha256:9fccdf677e6e26e76a4aa60da2113bab9852e8317287ba51b2c29778d2351345"),
)

# The ingress controller (provisioner/kube/ingress_nginx.py): ingress-nginx's bare-metal manifest
# (a Service of type NodePort) as the repository holds it at the release tag, the file its
# install guide applies, pinned by its SHA-256
# (git show controller-v1.15.1:deploy/static/provider/baremetal/deploy.yaml | sha256sum, computed
# here on 2026-12-01 from the tag's commit 0a5901f3c64f, 2026-03-19). v1.15.1 is the newest
# release: the Kubernetes project announced ingress-nginx's retirement, with no releases after
# March 2026; a successor controller would be a new pin, with its own manifest and digests.
INGRESS_NGINX_VERSION = "v1.15.1"
INGRESS_NGINX_MANIFEST_URL = (
    "https://raw.githubusercontent.com/kubernetes/ingress-nginx/"
    f"controller-{INGRESS_NGINX_VERSION}/deploy/static/provider/baremetal/deploy.yaml"
)
INGRESS_NGINX_MANIFEST_SHA256 = "16b9b62df45b8ed8f1ecaed0341d583b3360e4b63c41fe00413f6a1fa2f95bec"
# The images that manifest names: ingress-nginx publishes them as tag@digest in the manifest
# itself (the digests below are those, read from the file above; the kustomization pins them
# again so that a change upstream cannot slip in through a re-downloaded file).
INGRESS_NGINX_IMAGES = (
    PinnedImage("registry.k8s.io/ingress-nginx/controller", INGRESS_NGINX_VERSION,
                "sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1"),
    PinnedImage("registry.k8s.io/ingress-nginx/kube-webhook-certgen", "v1.6.9",
                "sha256:01038e7de14b78d702d2849c3aad72fd25903c4765af63cf16aa3398f5d5f2dd"),
)

# The certificate manager (provisioner/kube/cert_manager.py): cert-manager's static install
# manifest, a release asset (not in the repository: it is rendered from the Helm chart at release
# time), pinned by its SHA-256. It could not be downloaded here; the figure is a third party's
# record of the file as released (a vendoring note, "cert-manager v1.21.1 - provenance", made on
# 2026-09-04: 13960 lines, 6 CRDs, 3 Deployments, 1 Namespace, no Helm hook or Job). v1.21
# supports Kubernetes 1.33 and newer. Check it, and take new figures on every bump, with
#   curl -fsSL <CERT_MANAGER_MANIFEST_URL> | sha256sum
# A wrong figure fails closed: the node refuses the file (sha256sum --check) and applies nothing.
CERT_MANAGER_VERSION = "v1.21.1"
CERT_MANAGER_MANIFEST_URL = (
    f"https://github.com/cert-manager/cert-manager/releases/download/{CERT_MANAGER_VERSION}/cert-manager.yaml"
)
CERT_MANAGER_MANIFEST_SHA256 = "5f6a499b8c1857d57f560f536e0dcc830914b45c420899fe7ad0692c8624e408"
# Its three images by the digest of their multi-arch index, from the same record (resolved there
# from quay.io's registry API, the docker-content-digest of each tag's manifest list); the
# controller and cainjector digests agree with a second, independent third-party record of
# v1.21.1. Check with: crane digest quay.io/jetstack/cert-manager-controller:v1.21.1
CERT_MANAGER_IMAGES = (
    PinnedImage("quay.io/jetstack/cert-manager-controller", CERT_MANAGER_VERSION,
                "sha256:416a2d76870d996460e62bd7f521bf14fa017be9e3e904aab92163a331fcb61a"),
    PinnedImage("quay.io/jetstack/cert-manager-cainjector", CERT_MANAGER_VERSION,
                "sha256:ccf6b919ec0500745a47a910118f834f9636d0aac1ff221245cd2557ed8c7c98"),
    PinnedImage("quay.io/jetstack/cert-manager-webhook", CERT_MANAGER_VERSION,
                "sha256:d8b3961b51c8c7320633f8208dc46bf88aa13804d0f7cbe48a096b2c523cee42"),
)
