"""Reconcile's clean-up of what carries the cluster's UUID but is not in its spec: the VMs
of nodes the cluster does not have (a crash between a VM's create and the state write, a node
removed from the state by hand). Only what the cloud lists under the cluster's UUID is ever
considered (Cloud.list_vms); a VM without it is never touched. Firewall rules not in the plan
are removed, and reported, by the firewall step (Cloud.ensure_firewall); peers of nodes that
are gone, by the mesh (mesh_steps.drift finds them, mesh_steps.wireguard drops them)."""

from __future__ import annotations

from collections.abc import Collection

from .clouds.base import Cloud, CloudTarget, Ensured


def stray_vms(cloud: Cloud, target: CloudTarget, wanted: Collection[str], running: set[str], *,
              dry_run: bool) -> Ensured:
    """The reconcile step `strays` of one cloud: every VM the cloud lists with the cluster's
    UUID whose node is not in `wanted` (the nodes planned on this cloud) is deleted (with
    dry_run, only named). Fills `running` with the names of the wanted nodes that have a VM."""
    vms = [vm for vm in cloud.list_vms(target.cluster) if vm.cluster_uuid == target.cluster.uuid]
    running.update(vm.name for vm in vms if vm.name in wanted)
    strays = sorted({vm.name for vm in vms if vm.name not in wanted})
    if not strays:
        return Ensured()
    named = ", ".join(f"{vm.name} ({vm.cloud_id})" for vm in sorted(vms, key=lambda v: v.name) if vm.name in strays)
    if dry_run:
        return Ensured(actions=(f"would delete VMs of nodes not in the spec: {named}",))
    cloud.delete_vms(target, strays)
    return Ensured(actions=(f"deleted VMs of nodes not in the spec: {named}",))
