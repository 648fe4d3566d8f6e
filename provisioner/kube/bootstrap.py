"""The Kubernetes bootstrap plan, pure: for each node, the files it receives and the commands
it runs, in order. kubeadm init on the first master; then every other node joins (masters
one at a time, then workers) with a short-lived token.

How the engine runs one NodeBootstrap, as root over SSH: each `prepare` command; then every
file written (atomically, with its mode); then each command in order, stopping at the first
failure; then, whatever happened, each `cleanup` command (they remove the files that hold
secrets). Every step can be re-run: a node that has finished its kubeadm step skips it (by
its marker, or, the marker lost, by a healthy control plane or kubelet), and a half-done one
is reset and started afresh.

No secret (the token, the certificate key) is ever on a command line, where process lists
would show it: only in 0600 files, and kubeadm's standard output, which repeats them, is
discarded.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..textcheck import is_node_address
from . import addons, cni, kubeadm, paths
from .addons import IngressSettings
from .kubeadm import KubeNode

__all__ = ["BootstrapPlan", "File", "IngressSettings", "KubeNode", "NodeBootstrap", "bootstrap_plan",
           "first_master", "hosts_command", "init_bootstrap", "join_bootstrap", "refresh_join_material"]

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
HOSTS_MARK = "# cast: kubernetes api"
# cloud-init rewrites /etc/hosts from this template at boot where the image says
# manage_etc_hosts (DigitalOcean's does): the entry goes into both, so it survives a reboot.
HOSTS_FILES = ("/etc/hosts", "/etc/cloud/templates/hosts.debian.tmpl")


@dataclass(frozen=True)
class File:
    """A file to write on a node. `secret` files hold the token or the certificate key."""

    path: str
    mode: int
    content: str
    secret: bool = False


@dataclass(frozen=True)
class NodeBootstrap:
    """What one node receives (see the module doc for how the engine runs it)."""

    node: str
    role: str
    prepare: tuple[str, ...]
    files: tuple[File, ...]
    commands: tuple[str, ...]
    cleanup: tuple[str, ...]


@dataclass(frozen=True)
class BootstrapPlan:
    """The whole cluster's bootstrap.

    Engine order: `init` on `first_master`; fetch paths.CA_CERT (its `kubeadm.ca_cert_hash`
    pins the joins) and paths.ADMIN_KUBECONFIG (the user's kubeconfig) from it; `refresh`
    on the first master (a fresh token, and the certificates re-uploaded when masters join);
    then `joins`: the masters one at a time, in order, then the workers in parallel.
    """

    cluster: str
    endpoint: str
    first_master: KubeNode
    init: NodeBootstrap
    refresh: NodeBootstrap
    joins: tuple[NodeBootstrap, ...]


def first_master(nodes: Sequence[KubeNode]) -> KubeNode:
    """The master whose name sorts first: it runs kubeadm init and its mesh address carries
    the endpoint name. Raises ValueError when there is no master."""
    masters = sorted((n for n in nodes if n.role == "master"), key=lambda n: n.name)
    if not masters:
        raise ValueError("a cluster needs a master")
    return masters[0]


def hosts_command(cluster: str, first: KubeNode) -> str:
    """The command that maps the endpoint name to the first master's mesh address in
    /etc/hosts, replacing cast's earlier line if any (in place: /etc/hosts may be a bind
    mount). ValueError when the address is not IPv4 or the name holds a line break: the
    line must stay one /etc/hosts line."""
    if not is_node_address(first.mesh_ip) or "\n" in cluster or "\r" in cluster:
        raise ValueError("the /etc/hosts line would not be one line of address and name")
    line = shlex.quote(f"{first.mesh_ip} {kubeadm.control_plane_host(cluster)} {HOSTS_MARK}")
    mark = shlex.quote(f" {HOSTS_MARK}$")
    return (
        f"for f in {' '.join(HOSTS_FILES)}; do [ -f \"$f\" ] || continue; "
        f"{{ grep -v {mark} \"$f\"; echo {line}; }} > \"$f.cast\" && "
        "cat \"$f.cast\" > \"$f\" && rm -f \"$f.cast\"; done"
    )


def _prepare(*directories: str) -> tuple[str, ...]:
    return (f"install -d -m 0700 {' '.join(directories)}",)


# What a node that finished its kubeadm step answers, its marker lost or not: the first
# master's API server ready (through admin.conf), a joined node's kubelet healthy.
CONTROL_PLANE_HEALTHY = (f"test -f {paths.ADMIN_KUBECONFIG} && kubectl --kubeconfig {paths.ADMIN_KUBECONFIG} "
                         "get --raw /readyz --request-timeout=10s >/dev/null 2>&1")
KUBELET_HEALTHY = (f"test -f {paths.KUBELET_KUBECONFIG} && "
                   "curl -fsS --max-time 5 http://127.0.0.1:10248/healthz >/dev/null 2>&1")


def _once(done: str, command: str, healthy: str) -> str:
    """`command` unless `done` exists. A node without it whose `healthy` check passes has
    finished the step before (its marker was lost): the marker is written again and nothing
    is reset, since `kubeadm reset` would wipe a live control plane or kubelet. Any other
    node is reset first (a half-done kubeadm run leaves files and static pods a second run
    would trip on)."""
    return (f"test -f {done} || {{ {healthy} && {{ touch {done} || true; }}; }} || "
            f"{{ kubeadm reset --force >/dev/null 2>&1; {command} && touch {done}; }}")


def _masters(nodes: Sequence[KubeNode]) -> list[KubeNode]:
    return [n for n in nodes if n.role == "master"]


def init_bootstrap(cluster: str, nodes: Sequence[KubeNode], *, token: str, certificate_key: str,
                   kubernetes_version: str, ingress: IngressSettings | None = None) -> NodeBootstrap:
    """The first master's bootstrap: the endpoint name in /etc/hosts, `kubeadm init` from
    paths.INIT_CONFIG with the certificates uploaded for the other masters, then flannel, then,
    when the cluster has `ingress`, ingress-nginx and cert-manager (kube/addons.py).
    Raises ValueError on malformed nodes or material."""
    kubeadm.check_nodes(nodes)
    first = first_master(nodes)
    config = kubeadm.init_config(cluster, first, _masters(nodes), token=token, certificate_key=certificate_key,
                                 kubernetes_version=kubernetes_version)
    network = cni.cni_files(paths.ADMIN_KUBECONFIG)
    extra = addons.addon_files(paths.ADMIN_KUBECONFIG, ingress) if ingress else addons.AddonFiles((), (), ())
    init = _once(paths.INIT_DONE, f"kubeadm init --config {paths.INIT_CONFIG} --upload-certs >/dev/null",
                 CONTROL_PLANE_HEALTHY)
    return NodeBootstrap(
        node=first.name,
        role=first.role,
        prepare=_prepare(paths.CAST_DIR, paths.FLANNEL_DIR, *extra.directories),
        files=(
            File(paths.INIT_CONFIG, SECRET_MODE, config, secret=True),
            *(File(path, PUBLIC_MODE, text) for path, text in network.files + extra.files),
        ),
        commands=(hosts_command(cluster, first), init, *network.commands, *extra.commands),
        cleanup=(f"rm -f {paths.INIT_CONFIG}",),
    )


def refresh_join_material(cluster: str, nodes: Sequence[KubeNode], *, token: str, certificate_key: str,
                          kubernetes_version: str, upload_certs: bool) -> NodeBootstrap:
    """What the first master runs before nodes join: (re)create `token` with a fresh
    TOKEN_TTL and, when `upload_certs` (a master will join), upload the control-plane
    certificates again, encrypted with `certificate_key` (kubeadm deletes them after 2 h).
    Both read paths.REFRESH_CONFIG. Raises ValueError on malformed nodes or material."""
    kubeadm.check_nodes(nodes)
    first = first_master(nodes)
    used_by = "kubeadm token create" + (", kubeadm init phase upload-certs" if upload_certs else "")
    config = kubeadm.init_config(cluster, first, _masters(nodes), token=token, certificate_key=certificate_key,
                                 kubernetes_version=kubernetes_version, used_by=used_by)
    admin = f"--kubeconfig {paths.ADMIN_KUBECONFIG}"
    commands = [
        # The token's id is public (its secret half follows the dot). Deleting it first makes
        # a re-run with the same token succeed: create refuses an existing one.
        f"kubeadm token delete {kubeadm.token_id(token)} {admin} >/dev/null 2>&1 || true",
        f"kubeadm token create --config {paths.REFRESH_CONFIG} {admin} >/dev/null",
    ]
    if upload_certs:
        commands.append(f"kubeadm init phase upload-certs --upload-certs --config {paths.REFRESH_CONFIG} >/dev/null")
    return NodeBootstrap(
        node=first.name,
        role=first.role,
        prepare=_prepare(paths.CAST_DIR),
        files=(File(paths.REFRESH_CONFIG, SECRET_MODE, config, secret=True),),
        commands=tuple(commands),
        cleanup=(f"rm -f {paths.REFRESH_CONFIG}",),
    )


def join_bootstrap(cluster: str, node: KubeNode, first: KubeNode, *, token: str, certificate_key: str,
                   ca_cert_hash: str) -> NodeBootstrap:
    """One node's join: the endpoint name in /etc/hosts (to `first`'s mesh address), then
    `kubeadm join` from paths.JOIN_CONFIG. Raises ValueError on malformed material."""
    config = kubeadm.join_config(cluster, node, token=token, certificate_key=certificate_key, ca_hash=ca_cert_hash)
    return NodeBootstrap(
        node=node.name,
        role=node.role,
        prepare=_prepare(paths.CAST_DIR),
        files=(File(paths.JOIN_CONFIG, SECRET_MODE, config, secret=True),),
        commands=(hosts_command(cluster, first),
                  _once(paths.JOIN_DONE, f"kubeadm join --config {paths.JOIN_CONFIG}", KUBELET_HEALTHY)),
        cleanup=(f"rm -f {paths.JOIN_CONFIG}",),
    )


def bootstrap_plan(cluster: str, nodes: Sequence[KubeNode], *, token: str, certificate_key: str,
                   ca_cert_hash: str, kubernetes_version: str, joined: Collection[str] = (),
                   ingress: IngressSettings | None = None) -> BootstrapPlan:
    """The plan for `nodes`: the first master's init and refresh, and a join for every other
    node not in `joined` (masters by name, then workers by name); the refresh uploads the
    certificates only when a master is among them; `ingress` adds the ingress add-ons to the
    init (see init_bootstrap). `kubernetes_version` is the version the nodes installed (their
    boot marker's, e.g. v1.36.2). `ca_cert_hash` is known only after init: call
    `init_bootstrap` alone before it. Raises ValueError on malformed nodes or
    material; no message quotes a secret."""
    kubeadm.check_nodes(nodes)
    kubeadm.check_join_material(token, certificate_key, ca_cert_hash)
    first = first_master(nodes)
    init = init_bootstrap(cluster, nodes, token=token, certificate_key=certificate_key,
                          kubernetes_version=kubernetes_version, ingress=ingress)
    others = sorted((n for n in nodes if n.name != first.name and n.name not in joined),
                    key=lambda n: (n.role != "master", n.name))
    joins = tuple(
        join_bootstrap(cluster, n, first, token=token, certificate_key=certificate_key, ca_cert_hash=ca_cert_hash)
        for n in others
    )
    refresh = refresh_join_material(cluster, nodes, token=token, certificate_key=certificate_key,
                                    kubernetes_version=kubernetes_version,
                                    upload_certs=any(n.role == "master" for n in others))
    return BootstrapPlan(cluster, kubeadm.control_plane_endpoint(cluster), first, init, refresh, joins)
