"""The Azure cluster's teardown: the safety check (Cloud.find_foreign_vms), its inventory (the
resource groups, what they hold going with them) and deleting a resource group: one DELETE,
then a look at the group itself after the operation's Retry-After (ARM works on the deletion
whether its operation is polled or not), again with backoff while it is still being deleted.
All of it through azure-mgmt-resource (azure_arm): no compute or network SDK.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import tags
from ..errors import DependencyError, NotFoundError
from ..parallel import gather
from ..retry import wait_until
from . import azure_arm as arm
from . import azure_build as build
from . import leaks
from .azure_level import MAX_HINT_S
from .azure_session import CLOUD
from .azure_vms import has_uuid
from .base import CloudTarget, ClusterRef, Owned, Vm, goes_with_its_container

if TYPE_CHECKING:
    from .azure import Provider

KINDS = {
    "microsoft.network/virtualnetworks": "vnet",
    "microsoft.network/networksecuritygroups": "network-security-group",
    "microsoft.network/publicipaddresses": "public-ip",
    "microsoft.network/networkinterfaces": "network-interface",
    "microsoft.compute/virtualmachines": "vm",
    "microsoft.compute/disks": "disk",
    "microsoft.network/loadbalancers": "load-balancer",
}


def find_foreign(p: Provider, target: CloudTarget) -> list[Vm]:
    """Provider.find_foreign_vms: the cluster's groups listed afresh (the check must see what
    is there now) while the group cast names is listed (its VMs and VNet: one round trip, not
    two), then the VMs without the cluster's UUID in it or on its VNet (VmOps.foreign). When
    none is found, what was listed is kept for the inventory that follows (`p.checked`)."""
    cluster = target.cluster
    named = build.group_name(cluster)
    p.checked.pop(cluster.uuid, None)  # an earlier check's listing never outlives this check

    def guessed() -> tuple[list[Any], Any] | None:
        try:
            return p.vms.listing(named, cluster)
        except NotFoundError:
            return None

    groups, listed = gather(lambda: p.groups_of(cluster), guessed)
    group = leaks.at_most_one(CLOUD, "resource group", groups, lambda g: str(g.name))
    if group is None:
        p.checked[cluster.uuid] = (groups, ([], None))
        return []
    p.remember_group(cluster, group.name)
    found, seen = p.vms.foreign(group.name, cluster, listed if group.name.lower() == named.lower() else None)
    if not found:  # the teardown that follows deletes what the check saw (inventory)
        p.checked[cluster.uuid] = (groups, seen)
    return found


def inventory(p: Provider, cluster: ClusterRef) -> list[Owned]:
    """Provider.list_resources. Right after a safety check of this command that found no
    foreign VM (the teardown's case), made of what the check listed and no call: the groups,
    their VMs and VNet with its subnets; the rest of a group goes with it, unnamed. Otherwise
    listed: the groups, each one's resources carrying the cluster's UUID, its VNet's subnets."""
    checked = p.checked.pop(cluster.uuid, None)
    if checked is not None:
        groups, (vms, vnet) = checked
        return [item for group in groups for item in group_inventory(p, cluster, group, vms, vnet)]
    rc = p.session.resources
    out = []
    for group in p.groups_of(cluster):
        name: str = group.name
        found = p.call(f"list resources in {name}", partial(_tagged, rc, name, cluster))
        out.extend(group_inventory(p, cluster, group, found, p.listed_vnet(name, cluster)))
    return out


def _tagged(rc: Any, group: str, cluster: ClusterRef) -> list[Any]:
    return list(rc.resources.list_by_resource_group(group, filter=uuid_filter(cluster)))


def uuid_filter(cluster: ClusterRef) -> str:
    """The ARM `$filter` that selects what carries the cluster's UUID."""
    return f"tagName eq '{tags.CLUSTER_UUID}' and tagValue eq '{cluster.uuid}'"


def group_inventory(p: Provider, cluster: ClusterRef, group: Any, found: Sequence[Any],
                    vnet: Any | None) -> list[Owned]:
    """The inventory of one resource group (an SDK model): the group, with its deleter; then,
    to be deleted with it, what of `found` (generic resources: id, name, type, tags) carries
    the cluster's UUID, the VNet (or None; a GenericResource, azure_arm) and its subnets."""
    inside = frozenset({"resource-group"})
    out = [Owned("resource-group", group.id, group.name, delete=group_deleter(p, cluster, group.name))]
    ours = [r for r in found if has_uuid(r, cluster)]
    if vnet is not None and vnet.id.lower() not in {r.id.lower() for r in ours}:
        ours.append(vnet)
    out.extend(Owned(KINDS.get(r.type.lower(), r.type), r.id, r.name, after=inside,
                     delete=goes_with_its_container) for r in ours)
    out.extend(Owned("subnet", s["id"], s.get("name", ""), after=inside, delete=goes_with_its_container)
               for s in (arm.subnets(vnet) if vnet is not None else []) if s.get("id"))
    return out


def group_deleter(p: Provider, cluster: ClusterRef, name: str) -> Callable[[], None]:
    """The deleter of resource group `name`: blocks until it is gone (NotFoundError from the
    DELETE when it is gone already); DependencyError when its deletion failed."""
    def delete() -> None:
        p.forget_group(cluster)
        rc = p.session.resources
        polling = p.session.hint_polling()
        p.call(f"delete resource group {name}", lambda: rc.resource_groups.begin_delete(name, polling=polling))
        time.sleep(min(polling.retry_after or 0.0, MAX_HINT_S))  # the operation's own estimate
        wait_until(lambda: _gone(p, name), what=f"resource group {name} deleted",
                   timeout_s=p.settings.stall_budget_s, initial=0.5, maximum=p.settings.poll_max_s)

    return delete


def _gone(p: Provider, name: str) -> bool:
    """True once the group is gone; False while it is being deleted. DependencyError when it
    is there and no longer being deleted (its deletion failed: the teardown retries it)."""
    rc = p.session.resources
    try:
        group = p.call(f"read resource group {name}", lambda: rc.resource_groups.get(name))
    except NotFoundError:
        return True
    state = build.text(group.properties.provisioning_state if group.properties else None)
    if state.lower() == "deleting":
        return False
    raise DependencyError(CLOUD, f"resource group {name} is {state or 'there'} again: its deletion failed")
