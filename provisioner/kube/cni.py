"""The pod network: flannel, pinned to one release, its manifest checked by SHA-256 and
adjusted by a kustomization cast writes beside it (applied with `kubectl apply -k`).

Three changes to the upstream manifest:
- net-conf.json: the pod range 10.217.0.0/16, the vxlan backend, and the MTU set explicitly.
  flannel's `Backend.MTU` is the size of the encapsulated packets it sends (it defaults to
  the external interface's MTU); the vxlan device, and so every pod, gets 50 bytes less.
  Set to the mesh MTU (1380), pods get 1330: a pod packet plus its VXLAN header fits the
  mesh without fragmentation.
- flanneld's arguments get `--iface=wg0`, so VXLAN runs between mesh addresses, inside the
  WireGuard tunnel, whatever each cloud's default interface is.
- every image (flanneld, and the init containers that write the CNI plugin into /opt/cni/bin
  as root) is pulled by its pinned SHA-256 digest instead of its tag (versions.FLANNEL_IMAGES).

The names the patches target (namespace kube-flannel, ConfigMap kube-flannel-cfg, DaemonSet
kube-flannel-ds whose first container is kube-flannel) are those of the manifest at
FLANNEL_VERSION; the JSON patch tests the container's name first, so an unexpected layout
fails the apply instead of patching the wrong container.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .. import ipam, mesh
from . import paths, yamltext
from .versions import FLANNEL_IMAGES, FLANNEL_MANIFEST_SHA256, FLANNEL_MANIFEST_URL, FLANNEL_VERSION

NAMESPACE = "kube-flannel"
CONFIG_MAP = "kube-flannel-cfg"
DAEMON_SET = "kube-flannel-ds"
CONTAINER = "kube-flannel"

VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
BACKEND_MTU = mesh.MTU
POD_MTU = BACKEND_MTU - VXLAN_OVERHEAD

DIRECTORY = paths.FLANNEL_DIR
MANIFEST = f"{DIRECTORY}/kube-flannel.yml"
CHECKSUM = f"{DIRECTORY}/kube-flannel.yml.sha256"
KUSTOMIZATION = f"{DIRECTORY}/kustomization.yaml"


@dataclass(frozen=True)
class CniFiles:
    """What the first master needs to install the pod network: files (path -> text, all
    public, mode 0644) and commands run after `kubeadm init`, in order."""

    files: tuple[tuple[str, str], ...]
    commands: tuple[str, ...]


def net_conf() -> str:
    """flannel's net-conf.json: the pod range, vxlan, and the backend MTU (see module doc)."""
    conf = {
        "Network": str(ipam.PODS),
        "EnableNFTables": False,
        "Backend": {"Type": "vxlan", "MTU": BACKEND_MTU},
    }
    return json.dumps(conf, indent=2) + "\n"


def kustomization() -> str:
    """kustomization.yaml: the pinned manifest, with the net-conf.json and --iface patches and
    every image pinned by digest."""
    config_map_patch = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
        "data": {"net-conf.json": net_conf()},
    }
    container = "/spec/template/spec/containers/0"
    iface_patch = [
        {"op": "test", "path": f"{container}/name", "value": CONTAINER},
        {"op": "add", "path": f"{container}/args/-", "value": f"--iface={mesh.INTERFACE}"},
    ]
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["kube-flannel.yml"],
        "patches": [
            {"patch": yamltext.dump(config_map_patch)},
            {
                "target": {"group": "apps", "version": "v1", "kind": "DaemonSet",
                           "namespace": NAMESPACE, "name": DAEMON_SET},
                "patch": yamltext.dump(iface_patch),
            },
        ],
        "images": [{"name": image.name, "digest": image.digest} for image in FLANNEL_IMAGES],
    }
    header = (
        f"Managed by cast: flannel {FLANNEL_VERSION} over the WireGuard mesh.\n"
        f"Pods {ipam.PODS}, vxlan through {mesh.INTERFACE}; pod MTU {POD_MTU} = mesh MTU {mesh.MTU} - {VXLAN_OVERHEAD}."
    )
    return yamltext.dump_all([document], header)


def cni_files(kubeconfig: str) -> CniFiles:
    """The files and commands that install flannel with the admin `kubeconfig` (a path on
    the first master): download the pinned manifest, check its SHA-256, apply."""
    files = (
        (CHECKSUM, f"{FLANNEL_MANIFEST_SHA256}  {MANIFEST}\n"),
        (KUSTOMIZATION, kustomization()),
    )
    commands = (
        f"curl -fsSL --retry 5 -o {MANIFEST} {FLANNEL_MANIFEST_URL}",
        f"sha256sum --check --strict --quiet {CHECKSUM}",
        f"kubectl --kubeconfig {kubeconfig} apply -k {DIRECTORY}",
    )
    return CniFiles(files, commands)
