"""Kubernetes on the mesh, as steps of the engine's graphs: kubeadm init on the first master
and joins for the rest (kubernetes/bootstrap), a removed node's Node object deleted
(kubernetes/remove-node); and where the cluster's Kubernetes stands, read from the journal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .clouds.base import Ensured
from .cluster_keys import KUBECONFIG_SECRET
from .context import Context, first_master_of
from .errors import CastError
from .mesh_steps import node_access
from .node_access import NodeSide
from .state import StateStore

if TYPE_CHECKING:
    from .nodes.boot import BootMarker


class KubernetesError(CastError):
    """Kubernetes cannot be set up on the cluster's nodes; the message names them and says why."""


def kubernetes_phase(store: StateStore, cluster_uuid: str) -> tuple[str, str] | None:
    """The journal's last word on the cluster's Kubernetes step: (phase, detail), or None."""
    return store.last_journal(cluster_uuid, "kubernetes", "bootstrap")


def describe_kubernetes(last: tuple[str, str] | None) -> str:
    """A kubernetes_phase in words: not set up yet, skipped (and why), ready, or failed (and why)."""
    if last is None:
        return "not set up yet"
    phase, detail = last
    words = {"skip": "skipped", "end": "ready", "fail": "failed", "begin": "interrupted while being set up"}
    return f"{words.get(phase, phase)}: {detail}" if detail else words.get(phase, phase)


def kubernetes_state(store: StateStore, cluster_uuid: str) -> str:
    """Where the cluster's Kubernetes stands, in words (see describe_kubernetes)."""
    return describe_kubernetes(kubernetes_phase(store, cluster_uuid))


def kubeconfig_path(store: StateStore, cluster_uuid: str) -> Path | None:
    """The cluster's saved admin kubeconfig, or None when there is none yet."""
    path = store.secrets_dir(cluster_uuid, create=False) / KUBECONFIG_SECRET
    return path if path.exists() else None


def skip_reason(markers: dict[str, BootMarker]) -> str | None:
    """Why Kubernetes is skipped, visibly: every node says it cannot run a kubelet (the
    sandbox's hosts), in their own words; None when it is not skipped."""
    if markers and all(m.unsupported for m in markers.values()):
        return reasons(markers)
    return None


def reasons(markers: dict[str, BootMarker]) -> str:
    return "; ".join(sorted({m.reason or "no reason given" for m in markers.values()
                             if not m.can_run_kubernetes}))


def bootstrap(ctx: Context, nodes: NodeSide, markers: dict[str, BootMarker],
              external_ips: Callable[[], tuple[str, ...]] = tuple) -> Ensured:
    """The kubernetes/bootstrap step: kubeadm init on the first master over its mesh address,
    joins for every node not yet in, then the admin kubeconfig saved as a secret (0600).
    With ingress, the first master applies the add-ons too, the controller's Service taking
    `external_ips()` (ingress.IngressSteps.external_ips). Raises KubernetesError naming the
    nodes that cannot run it (their install failed)."""
    unable = sorted(name for name, m in markers.items() if not m.can_run_kubernetes)
    if unable:
        raise KubernetesError(f"{', '.join(unable)} cannot run Kubernetes: {reasons(markers)}")
    rows = ctx.addressed()
    first = first_master_of(rows)
    if first is None:
        raise KubernetesError("the cluster has no master with an address")
    from .kube.addons import IngressSettings

    wanted = ctx.cluster.spec.ingress
    ingress = IngressSettings(email=wanted.email, external_ips=external_ips()) if wanted is not None else None
    result = nodes.bootstrap_kubernetes(ctx.name, [(node_access(n), n) for n in rows], markers[first].kubernetes,
                                        ingress=ingress)
    ctx.store.write_secret(ctx.uuid, KUBECONFIG_SECRET, result.kubeconfig.encode())
    return Ensured(actions=result.actions)


def first_master(ctx: Context) -> str | None:
    """The first master with an address, by name, or None."""
    return first_master_of(ctx.addressed())


def forget_node(ctx: Context, nodes: NodeSide, node: str) -> Ensured:
    """The kubernetes/remove-node step: delete a removed node's Node object through the first
    master (there is one: see first_master)."""
    rows = ctx.addressed()
    master = next(n for n in rows if n.name == first_master_of(rows))
    nodes.forget_kubernetes_node(node_access(master), node)
    return Ensured(actions=(f"node {node} deleted from Kubernetes",))
