"""kubeadm's configuration files (API kubeadm.k8s.io/v1beta4), pure: the init file of the first
master, the join file of every other node, and the join material (token, certificate key, CA
pin). Every node's kubelet registers with its mesh address, and every API server advertises
its own, so all cluster traffic (etcd, kubelet, pods) crosses the WireGuard mesh.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import ipam
from ..textcheck import is_node_address
from . import yamltext

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
API_PORT = 6443
ROLES = ("master", "worker")
# Joins follow init within minutes; later joins get a fresh token (bootstrap.refresh_join_material).
TOKEN_TTL = "30m"
TOKEN_GROUPS = ("system:bootstrappers:kubeadm:default-node-token",)
TOKEN_USAGES = ("signing", "authentication")
# The nodes run Ubuntu's containerd (templates/cloud-init/base.yaml.j2).
CRI_SOCKET = "unix:///run/containerd/containerd.sock"

# Each pattern is matched against the whole string (fullmatch: `$` would let a newline through).
TOKEN_RE = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
CERTIFICATE_KEY_RE = re.compile(r"[0-9a-f]{64}")
CA_HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")
VERSION_RE = re.compile(r"v\d+\.\d+\.\d+")
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class KubeNode:
    """One node as Kubernetes sees it: its name, role (master|worker) and two addresses."""

    name: str
    role: str
    mesh_ip: str  # a /32 of the mesh: what the kubelet, etcd and the API server use
    public_ip: str  # what users reach the API on (masters)


def control_plane_host(cluster: str) -> str:
    """The stable name of the cluster's API: every node maps it in /etc/hosts."""
    return f"api.{cluster}.cast.internal"


def control_plane_endpoint(cluster: str) -> str:
    """`host:port` of the cluster's API, as kubeadm's controlPlaneEndpoint."""
    return f"{control_plane_host(cluster)}:{API_PORT}"


def public_api_url(master: KubeNode) -> str:
    """`https://<public IP>:6443`: where users reach a master's API (its public address is
    in the API certificate)."""
    address = ipaddress.ip_address(master.public_ip)
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"https://{host}:{API_PORT}"


def new_bootstrap_token() -> str:
    """A fresh bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}` (its first part is the public id)."""
    pick = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(22))
    return f"{pick[:6]}.{pick[6:]}"


def new_certificate_key() -> str:
    """A fresh certificate key: 32 random bytes, hex (the AES key kubeadm encrypts the shared
    control-plane certificates with when it uploads them)."""
    return secrets.token_hex(32)


def token_id(token: str) -> str:
    """The public half of a bootstrap token (the secret half follows the dot)."""
    return token.split(".", 1)[0]


def ca_cert_hash(ca_pem: bytes) -> str:
    """kubeadm's CA pin, `sha256:<hex>`: SHA-256 of the CA certificate's DER-encoded
    SubjectPublicKeyInfo. Raises ValueError when `ca_pem` is not a PEM certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    certificate = x509.load_pem_x509_certificate(ca_pem)
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def check_join_material(token: str, certificate_key: str, ca_hash: str | None = None) -> None:
    """Raise ValueError when the token, certificate key or CA hash is malformed. The message
    never quotes a value: they are secrets."""
    if not TOKEN_RE.fullmatch(token):
        raise ValueError("the bootstrap token is not of the form [a-z0-9]{6}.[a-z0-9]{16}")
    if not CERTIFICATE_KEY_RE.fullmatch(certificate_key):
        raise ValueError("the certificate key is not 64 lowercase hex digits")
    if ca_hash is not None and not CA_HASH_RE.fullmatch(ca_hash):
        raise ValueError("the CA hash is not sha256:<64 hex digits>")


def check_version(kubernetes_version: str) -> str:
    """`kubernetes_version` as kubeadm wants it, `vX.Y.Z` (a leading v is added if missing).
    Raises ValueError otherwise."""
    version = kubernetes_version if kubernetes_version.startswith("v") else f"v{kubernetes_version}"
    if not VERSION_RE.fullmatch(version):
        raise ValueError(f"{kubernetes_version!r} is not a Kubernetes version vX.Y.Z")
    return version


def cert_sans(cluster: str, masters: Sequence[KubeNode]) -> list[str]:
    """The API server certificate's extra names: the endpoint name, loopback, and every
    master's public and mesh address (masters by name)."""
    sans = [control_plane_host(cluster), "127.0.0.1"]
    for master in sorted(masters, key=lambda m: m.name):
        for address in (master.public_ip, master.mesh_ip):
            if address not in sans:
                sans.append(address)
    return sans


def _registration(node: KubeNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "criSocket": CRI_SOCKET,
        # v1beta4: a list of {name, value}; the kubelet registers and serves on the mesh.
        "kubeletExtraArgs": [{"name": "node-ip", "value": node.mesh_ip}],
    }


def _local_endpoint(node: KubeNode) -> dict[str, Any]:
    return {"advertiseAddress": node.mesh_ip, "bindPort": API_PORT}


def init_config(cluster: str, first_master: KubeNode, masters: Sequence[KubeNode], *,
                token: str, certificate_key: str, kubernetes_version: str, used_by: str = "kubeadm init") -> str:
    """The `kubeadm init --config` file of the first master: InitConfiguration (the token,
    TOKEN_TTL; the certificate key; the API advertised on its mesh address; kubelet node-ip),
    ClusterConfiguration (version, endpoint name, pod and service subnets, certSANs of
    `masters`) and KubeletConfiguration (systemd cgroups). `used_by` names the commands in
    the file's header comment. Raises ValueError on malformed material (see
    `check_join_material`, `check_version`)."""
    check_join_material(token, certificate_key)
    init = {
        "apiVersion": KUBEADM_API,
        "kind": "InitConfiguration",
        "bootstrapTokens": [{
            "token": token,
            "description": f"cast {cluster} node joins",
            "ttl": TOKEN_TTL,
            "usages": list(TOKEN_USAGES),
            "groups": list(TOKEN_GROUPS),
        }],
        "certificateKey": certificate_key,
        "localAPIEndpoint": _local_endpoint(first_master),
        "nodeRegistration": _registration(first_master),
    }
    cluster_config = {
        "apiVersion": KUBEADM_API,
        "kind": "ClusterConfiguration",
        "clusterName": cluster,
        "kubernetesVersion": check_version(kubernetes_version),
        # A name rather than the first master's address: it resolves through /etc/hosts on
        # every node today, and can later point at a load balancer without new certificates
        # or kubeconfigs.
        "controlPlaneEndpoint": control_plane_endpoint(cluster),
        "networking": {"podSubnet": str(ipam.PODS), "serviceSubnet": str(ipam.SERVICES)},
        "apiServer": {"certSANs": cert_sans(cluster, masters)},
    }
    kubelet = {"apiVersion": KUBELET_API, "kind": "KubeletConfiguration", "cgroupDriver": "systemd"}
    header = (
        f"Managed by cast: `{used_by}` on {first_master.name}, first master of cluster {cluster}.\n"
        "Holds the bootstrap token and the certificate key: mode 0600, deleted once used."
    )
    return yamltext.dump_all([init, cluster_config, kubelet], header)


def join_config(cluster: str, node: KubeNode, *, token: str, certificate_key: str, ca_hash: str) -> str:
    """The `kubeadm join --config` file of `node`: token discovery through the endpoint name,
    pinned to `ca_hash`; kubelet node-ip = its mesh address; for a master, a control-plane
    instance advertising its mesh address, with the certificate key that decrypts the
    shared certificates (a worker's file holds no certificate key). Raises ValueError on
    malformed material."""
    check_join_material(token, certificate_key, ca_hash)
    join: dict[str, Any] = {
        "apiVersion": KUBEADM_API,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": control_plane_endpoint(cluster),
                "token": token,
                "caCertHashes": [ca_hash],
            },
        },
        "nodeRegistration": _registration(node),
    }
    holds = "the bootstrap token"
    if node.role == "master":
        join["controlPlane"] = {"localAPIEndpoint": _local_endpoint(node), "certificateKey": certificate_key}
        holds += " and the certificate key"
    header = (
        f"Managed by cast: `kubeadm join` of {node.name} ({node.role}) to cluster {cluster}.\n"
        f"Holds {holds}: mode 0600, deleted once used."
    )
    return yamltext.dump_all([join], header)


def check_nodes(nodes: Sequence[KubeNode]) -> None:
    """Raise ValueError unless names are unique, roles known, there is a master, mesh
    addresses lie in the mesh range and public addresses are IP addresses."""
    names = [n.name for n in nodes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"nodes share a name: {', '.join(duplicates)}")
    for node in nodes:
        if node.role not in ROLES:
            raise ValueError(f"{node.name}: unknown role {node.role!r}")
        if not (is_node_address(node.mesh_ip) and is_node_address(node.public_ip, public=True)):
            raise ValueError(f"{node.name}: its mesh or public address is not an IP address "
                             "(IPv4, or global IPv6 without a scope)")
        mesh_ip = ipaddress.ip_address(node.mesh_ip)
        if "\n" in node.name or "\r" in node.name:
            raise ValueError(f"{node.name!r}: a node name holds a line break")
        if mesh_ip not in ipam.MESH:
            raise ValueError(f"{node.name}: mesh address {node.mesh_ip} is outside {ipam.MESH}")
    if not any(n.role == "master" for n in nodes):
        raise ValueError("a cluster needs a master")
