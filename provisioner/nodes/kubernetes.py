"""Kubernetes on the nodes, over SSH: runs the pure bootstrap plan (provisioner/kube/bootstrap.py)
— kubeadm init on the first master, joins for the others — and brings back the admin
kubeconfig. Fresh join material (token, certificate key) is made for every run and lives only
in 0600 files on the nodes while a step runs.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import CastError
from ..kube import kubeadm, paths
from ..kube.bootstrap import (
    IngressSettings,
    KubeNode,
    NodeBootstrap,
    bootstrap_plan,
    first_master,
    init_bootstrap,
)
from ..kube.kubeconfig import client_kubeconfig
from ..progress import report

if TYPE_CHECKING:
    from ..state import NodeRow
    from .ssh import NodeAccess, SshPool

KUBEADM_TIMEOUT_S = 900.0  # kubeadm init pulls images and waits for the control plane


@dataclass(frozen=True)
class KubernetesResult:
    """What a bootstrap run gives back. `kubeconfig` is a secret (cluster-admin credentials)."""

    kubeconfig: str
    actions: tuple[str, ...]

    def __repr__(self) -> str:
        return f"KubernetesResult(actions={self.actions!r})"


def run_node_bootstrap(pool: SshPool, node: NodeAccess, step: NodeBootstrap) -> None:
    """Run one node's part as the plan says: its `prepare` commands, its files written
    atomically with their modes, its commands in order (the first failure raises NodeError
    naming the node), and always its `cleanup`, which removes the files holding secrets."""
    for command in step.prepare:
        pool.check(node, command, purpose="kubernetes: prepare")
    try:
        for file in step.files:
            pool.upload(node, file.path, file.content.encode(), file.mode)
        for command in step.commands:
            pool.check(node, command, timeout_s=KUBEADM_TIMEOUT_S, purpose=f"kubernetes: {command.split(None, 1)[0]}")
    finally:
        for command in step.cleanup:
            # The file is root-only (0600); the first failure is the one to report.
            with contextlib.suppress(CastError):
                pool.check(node, command, purpose="kubernetes: remove secret files")


def bootstrap_kubernetes(
    pool: SshPool, cluster: str, members: Sequence[tuple[NodeAccess, NodeRow]], kubernetes_version: str,
    *, ingress: IngressSettings | None = None
) -> KubernetesResult:
    """Make `members` one Kubernetes cluster: init on the first master (skipped when done
    before), then a join for every node that has not joined yet (masters one at a time, then
    workers in parallel). Returns the admin kubeconfig, built afresh from admin.conf's CA (the
    one whose hash pinned the joins) and client credentials, reaching the first master's
    public address. With `ingress`, the first master also applies ingress-nginx and
    cert-manager after the pod network (kube.addons). Raises NodeError or NodesError naming the nodes that failed, and
    UnsafeKubeconfigError when admin.conf holds anything else."""
    nodes = [KubeNode(row.name, row.role, row.mesh_ip, row.public_ip or "") for _, row in members]
    access = {row.name: a for a, row in members}
    token, certificate_key = kubeadm.new_bootstrap_token(), kubeadm.new_certificate_key()
    first = first_master(nodes)
    on_first = access[first.name]
    report(f"kubeadm init on {first.name}")
    run_node_bootstrap(
        pool, on_first, init_bootstrap(cluster, nodes, token=token, certificate_key=certificate_key,
                                       kubernetes_version=kubernetes_version, ingress=ingress)
    )
    ca_hash = kubeadm.ca_cert_hash(pool.check(on_first, f"cat {paths.CA_CERT}", purpose="read CA certificate").encode())
    others = [access[n.name] for n in nodes if n.name != first.name]
    done = pool.map(others, lambda a: pool.run(a, f"test -f {paths.JOIN_DONE}",
                                               purpose="kubernetes: joined?").status == 0)
    plan = bootstrap_plan(cluster, nodes, token=token, certificate_key=certificate_key, ca_cert_hash=ca_hash,
                          kubernetes_version=kubernetes_version, joined={name for name, ok in done.items() if ok})
    if plan.joins:
        run_node_bootstrap(pool, on_first, plan.refresh)
        for join in (j for j in plan.joins if j.role == "master"):  # etcd grows one member at a time
            report(f"joining master {join.node}")
            run_node_bootstrap(pool, access[join.node], join)
        workers = {j.node: j for j in plan.joins if j.role != "master"}
        if workers:
            report(f"joining the workers ({len(workers)})")
        pool.map([access[name] for name in workers], lambda a: run_node_bootstrap(pool, a, workers[a.name]))
    admin = pool.check(on_first, f"cat {paths.ADMIN_KUBECONFIG}", purpose="fetch kubeconfig")
    kubeconfig = client_kubeconfig(admin, cluster=cluster, server=kubeadm.public_api_url(first), ca_hash=ca_hash)
    return KubernetesResult(
        kubeconfig,
        (f"{kubernetes_version} on {len(nodes)} nodes, control plane on {first.name}, "
         f"{len(plan.joins)} joined now; kubeconfig saved",),
    )


def forget_kubernetes_node(pool: SshPool, first_master_access: NodeAccess, node: str) -> None:
    """Delete the Node object of a removed node from the cluster (its VM is already gone:
    nodes are not drained, by design). Harmless when it is not there."""
    pool.check(
        first_master_access,
        f"kubectl --kubeconfig {paths.ADMIN_KUBECONFIG} delete node {shlex.quote(node)} --ignore-not-found "
        "--wait=false",
        purpose=f"kubernetes: delete node {node}",
    )
