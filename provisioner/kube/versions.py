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
