"""Azure behind the cloud interface (base.Cloud): one resource group per cluster holding a
VNet with one /24 subnet, a network security group per role (attached to each VM's NIC, since
masters and workers share the subnet), and per VM a Standard static public IP, a NIC and the
VM. Teardown deletes the resource group. VM work lives in azure_vms; the safety check and the
teardown in azure_teardown (through azure-mgmt-resource alone: azure_arm); the creation steps
in azure_steps, made in levels (azure_level); clients, credentials and error mapping in
azure_session; the SDK models in azure_build.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .. import tags
from ..errors import NotFoundError
from ..parallel import gather
from . import azure_arm as arm
from . import azure_build as build
from . import azure_steps, azure_teardown, leaks
from .api_log import TRANSPORT_MODULES
from .azure_level import Level
from .azure_session import CLOUD, AzureSession, mapped_errors, serialize_first_model_use, uses_loopback, wait_for
from .azure_teardown import uuid_filter
from .azure_vms import VmOps, has_uuid
from .base import (
    Cloud,
    CloudResource,
    CloudTarget,
    ClusterRef,
    CreationStep,
    Ensured,
    Owned,
    Settings,
    Vm,
    VmRequest,
)

# The SDK modules this cloud imports lazily; the registry imports them in the caller's thread
# (concurrent first imports of one package from several threads can deadlock: azure-core is
# shared with pydo). azure-identity is imported by the Provider, in the same thread, only
# where it is used: not for the emulator on loopback. The credential check needs only the
# resources client; the compute and network clients (about 0.4 s) are imported after it has
# started, in the same caller's thread (Cloud.finish_opening): they share only azure-core and
# azure-mgmt-core with it, imported before.
SDK_MODULES = (
    "azure.core.credentials",
    "azure.core.exceptions",
    "azure.core.pipeline.policies",
    "azure.mgmt.core.policies",
    "azure.mgmt.resource.resources",
    "azure.mgmt.resource.resources.models",
    *TRANSPORT_MODULES,
)
SDK_AFTER_CHECK = (
    "azure.mgmt.compute",
    "azure.mgmt.compute.models",
    "azure.mgmt.network",
    "azure.mgmt.network.models",
)
# delete-cluster's safety check and teardown read through the resources client alone
# (azure_arm): nothing more (a load balancer's deletion imports azure-mgmt-network then).
SDK_FOR_TEARDOWN: tuple[str, ...] = ()


T = TypeVar("T")
GROUPS_FRESH_S = 5.0  # how long the credential check's listing of the groups stands for a new one


def only_one(found: Sequence[Any], what: str) -> Any | None:
    """The single item of `found` (None when empty); more is a probable leak (clouds.leaks)."""
    return leaks.at_most_one(CLOUD, what, found, lambda f: str(getattr(f, "name", "?")))


class Provider(Cloud):
    name = "azure"
    settings = Settings(vm_timeout_s=900.0, poll_initial_s=0.2)
    # ARM Compute spec, OSProfile.customData: "The base-64 encoded string is decoded to a binary
    # array ... The maximum length of the binary array is 65535 bytes." Sent base64-encoded.
    user_data_limit = 65535
    user_data_base64 = True

    @staticmethod
    def image_label(image: Mapping[str, str]) -> str:
        return ":".join(image[k] for k in ("publisher", "offer", "sku"))

    def __init__(self, region: str, zone: str | None = None):
        super().__init__(region, zone)
        if not uses_loopback():
            import azure.identity  # noqa: F401  (here, in the registry's thread: see SDK_MODULES)
        self._session: AzureSession | None = None
        # cluster uuid -> its resource group, once found or made: every step needs it, and a
        # group keeps its name, so only ensure_network lists the groups again.
        self._groups: dict[str, str] = {}
        # cluster uuid -> its VNet's id and its security groups' ids by role, as this command's
        # network and firewall steps left them: the VM step needs them, without reading again.
        self.vnet_ids: dict[str, str] = {}
        self.nsg_ids: dict[str, dict[str, str]] = {}
        # cluster uuid -> the resource groups the safety check just listed and what it listed in
        # them (VMs, VNet): the teardown's inventory, without listing again (ensure_network
        # and list_resources forget it).
        self.checked: dict[str, tuple[list[Any], tuple[list[Any], Any]]] = {}
        self._cast_groups: tuple[float, list[Any]] | None = None  # check_credentials' listing, and when
        # What this command made in a resource group it created itself (empty before): the
        # later steps know it without reading it back. cluster uuid -> the subnet made with the
        # VNet (its id and prefix), the security groups made (role -> id, name and rules), and
        # whether the group has had no VM step yet (nothing but the network in it).
        self._made_subnet: dict[str, tuple[str, str]] = {}
        self._made_nsgs: dict[str, dict[str, tuple[str, str, Any]]] = {}
        self.fresh_groups: set[str] = set()
        # cluster uuid -> the nodes whose public IP the network step made (a group made now).
        self.made_addresses: dict[str, set[str]] = {}

    @property
    def session(self) -> AzureSession:
        """The session from the environment, made on first use (AuthError when incomplete)."""
        if self._session is None:
            self._session = AzureSession.from_env()
        return self._session

    def call(self, what: str, fn: Callable[[], T], *, size: str | None = None) -> T:
        """Run one SDK call (or a paged listing, or an LRO wait) with errors mapped."""
        with mapped_errors(what, region=self.region, size=size):
            return fn()

    def lro(self, what: str, start: Callable[[], Any], *, size: str | None = None) -> Any:
        """Start a long-running operation and block until the cloud says it is done."""
        return self.call(what, lambda: wait_for(start(), what), size=size)

    def put(self, what: str, start: Callable[[Any], Any], group: str, kind: str, name: str, *,
            size: str | None = None) -> str:
        """Create or update resource `name` of `kind` with `start(polling)` (a begin_* call given
        that polling), block until the cloud says it succeeded, and return its ARM id."""
        self.call(what, lambda: wait_for(start(self.session.put_polling()), what), size=size)
        return build.resource_id(self.session.subscription_id, group, kind, name)

    def put_now(self, what: str, start: Callable[[Any], Any], *, size: str | None = None) -> float | None:
        """Send a create or update (`start(polling)`, a begin_* call given that polling) and
        return at once with its operation's Retry-After (seconds; None without one); the
        caller watches the resource's provisioningState instead of polling the operation."""
        polling = self.session.hint_polling()
        self.call(what, lambda: start(polling), size=size)
        return polling.retry_after

    @property
    def vms(self) -> VmOps:
        """The VM operations, on this provider's session."""
        return VmOps(self)

    # --- lookups ---------------------------------------------------------------------

    def groups_of(self, cluster: ClusterRef) -> list[Any]:
        """Every resource group carrying the cluster's UUID (one ARM call; none when the
        credential check listed the groups cast made less than GROUPS_FRESH_S ago: that
        listing serves once)."""
        listed, self._cast_groups = self._cast_groups, None
        if listed is not None and time.monotonic() - listed[0] < GROUPS_FRESH_S:
            return [g for g in listed[1] if has_uuid(g, cluster)]
        rc = self.session.resources
        return self.call("list resource groups", lambda: list(rc.resource_groups.list(filter=uuid_filter(cluster))))

    def group_of(self, cluster: ClusterRef, *, fresh: bool = False) -> str | None:
        """The name of the cluster's resource group, found by its UUID tag (None: none yet);
        listed once, then remembered (fresh=True lists again)."""
        known = self._groups.get(cluster.uuid)
        if known and not fresh:
            return known
        group = only_one(self.groups_of(cluster), "resource group")
        if group is not None:
            self._groups[cluster.uuid] = group.name
        return group.name if group else None

    def require_group(self, cluster: ClusterRef) -> str:
        """The cluster's resource group; NotFoundError when the network was never ensured."""
        group = self.group_of(cluster)
        if group is None:
            raise NotFoundError(CLOUD, f"no resource group carries cluster {cluster.name}'s UUID; "
                                       "ensure the network first")
        return group

    def vnet_of(self, group: str, cluster: ClusterRef) -> Any | None:
        """The cluster's VNet in `group` (with its subnets), None when there is none."""
        net = self.session.network
        found = self.call(f"list virtual networks in {group}", lambda: list(net.virtual_networks.list(group)))
        return only_one([v for v in found if has_uuid(v, cluster)], "virtual network")

    def listed_vnet(self, group: str, cluster: ClusterRef) -> Any | None:
        """vnet_of through azure-mgmt-resource alone (azure_arm): a GenericResource with its
        properties (its subnets and their IP configurations), None when there is none."""
        found = arm.list_in_group(self, group, arm.VNET_TYPE)
        return only_one([v for v in found if has_uuid(v, cluster)], "virtual network")

    def subnet_id(self, group: str, cluster: ClusterRef) -> str:
        """The ARM id of the cluster's subnet; NotFoundError without a VNet."""
        vnet = self.vnet_of(group, cluster)
        if vnet is None:
            raise NotFoundError(CLOUD, f"no virtual network of cluster {cluster.name} in {group}")
        return f"{vnet.id}/subnets/{build.subnet_name(cluster)}"

    def nsgs_of(self, group: str, cluster: ClusterRef) -> dict[str, Any]:
        """The cluster's network security groups by role."""
        net = self.session.network
        found = self.call(f"list network security groups in {group}",
                          lambda: list(net.network_security_groups.list(group)))
        by_role: dict[str, list[Any]] = {}
        for nsg in found:
            if has_uuid(nsg, cluster):
                by_role.setdefault((nsg.tags or {}).get(tags.ROLE, ""), []).append(nsg)
        return {role: only_one(items, f"network security group for role {role}") for role, items in by_role.items()}

    # --- ensure ----------------------------------------------------------------------

    def check_credentials(self) -> None:
        # The cheap authenticated call is also the next step's lookup: the groups cast made
        # (by tag name: one per cluster), kept a moment for groups_of.
        rc = self.session.resources
        cast_made = f"tagName eq '{tags.CLUSTER_UUID}'"
        found = self.call("list resource groups", lambda: list(rc.resource_groups.list(filter=cast_made)))
        self._cast_groups = (time.monotonic(), found)

    def finish_opening(self, *, teardown: bool = False) -> None:
        super().finish_opening(teardown=teardown)
        serialize_first_model_use()  # the compute and network models, before any thread makes one

    def creation_steps(self) -> tuple[CreationStep, ...]:
        return azure_steps.creation_steps(self)

    def ensure_network(self, target: CloudTarget, *, dry_run: bool = False,
                       addresses: Callable[[], Sequence[VmRequest]] | None = None) -> Ensured:
        """Cloud.ensure_network: the resource group, then its VNet (with the subnet) and, where
        missing, the security groups (ensure_firewall) as one level (azure_level); with
        `addresses` (the VM requests, when ready: the creation graph's network step), in a
        group made now, the VMs' public IPs too, which need only the group."""
        cluster, actions = target.cluster, []
        labels = tags.cluster_tags(cluster.name, cluster.uuid)
        self.checked.pop(cluster.uuid, None)  # a group made now is not in the safety check's list
        for made in (self._made_subnet, self._made_nsgs, self.made_addresses):
            made.pop(cluster.uuid, None)  # known again only of a group made now
        self.fresh_groups.discard(cluster.uuid)
        group = self.group_of(cluster, fresh=True)  # the step that owns the group: a leak shows here
        vnet = None
        if group is None:
            group = build.group_name(cluster)
            actions.append(f"create resource group {group} in {self.region}")
            if dry_run:
                return Ensured(actions=(*actions, f"create virtual network {build.vnet_name(cluster)} "
                                                  f"{target.network_cidr}"))
            rc = self.session.resources
            self.call(f"create resource group {group}", lambda: rc.resource_groups.create_or_update(
                group, build.resource_group(self.region, labels)))
            self._groups[cluster.uuid] = group  # new and empty: no VNet to look for
            self.fresh_groups.add(cluster.uuid)
            self._made_nsgs[cluster.uuid] = {}
        else:
            vnet = self.vnet_of(group, cluster)
        group_id = f"/subscriptions/{self.session.subscription_id}/resourceGroups/{group}"
        found = [CloudResource("resource-group", group_id, group)]
        if vnet is not None:
            found.append(CloudResource("vnet", vnet.id, vnet.name))
            self.vnet_ids[cluster.uuid] = vnet.id
        else:
            name = build.vnet_name(cluster)
            actions.append(f"create virtual network {name} {target.network_cidr}")
            if not dry_run:
                # The subnet goes in with the VNet: one long-running operation instead of two
                # (ensure_subnet then finds it in place).
                net = self.session.network
                model = build.virtual_network(self.region, labels, target.network_cidr,
                                              (build.subnet_name(cluster), target.subnet_cidr))
                in_group = group
                level = Level(self, group, "network resources", progress=False)

                def vnet() -> str:
                    return level.put(f"create virtual network {name}", lambda polling: net.virtual_networks
                                     .begin_create_or_update(in_group, name, model, polling=polling),
                                     "Microsoft.Network/virtualNetworks", name)

                def public_ips() -> set[str]:
                    if addresses is None or cluster.uuid not in self.fresh_groups:
                        return set()
                    return self.vms.put_addresses(target, level, addresses())

                # The security groups and the public IPs need only the resource group: they
                # are made alongside the VNet, and watched with it; the firewall step finds
                # them in place (or repairs them), the VM step the public IPs.
                try:
                    vnet_id, firewall, sent = gather(vnet, lambda: self.ensure_firewall(target, level=level),
                                                     public_ips)
                    level.wait()
                except BaseException:
                    self._made_nsgs.pop(cluster.uuid, None)  # half made: read them next time
                    raise
                if sent:
                    self.made_addresses[cluster.uuid] = sent
                found.append(CloudResource("vnet", vnet_id, name))
                self.vnet_ids[cluster.uuid] = vnet_id
                self._made_subnet[cluster.uuid] = (f"{vnet_id}/subnets/{build.subnet_name(cluster)}",
                                                   target.subnet_cidr)
                found.extend(firewall.resources)
                actions.extend(firewall.actions)
        return Ensured(resources=tuple(found), actions=tuple(actions))

    def ensure_subnet(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        cluster = target.cluster
        name = build.subnet_name(cluster)
        action = f"create subnet {name} {target.subnet_cidr}"
        made = self._made_subnet.pop(cluster.uuid, None)
        if made is not None and made[1] == target.subnet_cidr:  # made with the VNet by this command
            self._made_subnet[cluster.uuid] = made
            return Ensured(resources=(CloudResource("subnet", made[0], name),))
        group = self.group_of(cluster)
        vnet = self.vnet_of(group, cluster) if group else None
        if vnet is None:
            if dry_run:
                return Ensured(actions=(action,))
            raise NotFoundError(CLOUD, f"no virtual network of cluster {cluster.name}; ensure the network first")
        assert group is not None
        self.vnet_ids[cluster.uuid] = vnet.id
        existing = next((s for s in vnet.subnets or [] if s.name.lower() == name.lower()), None)
        if existing is not None and existing.address_prefix == target.subnet_cidr:
            return Ensured(resources=(CloudResource("subnet", existing.id, existing.name),))
        if existing is not None:
            action = f"set subnet {name} to {target.subnet_cidr} (was {existing.address_prefix})"
        if dry_run:
            return Ensured(actions=(action,))
        net = self.session.network
        self.put(f"create subnet {name}", lambda polling: net.subnets.begin_create_or_update(
            group, vnet.name, name, build.subnet(target.subnet_cidr), polling=polling),
            group, "Microsoft.Network/virtualNetworks", f"{vnet.name}/subnets/{name}")
        return Ensured(resources=(CloudResource("subnet", f"{vnet.id}/subnets/{name}", name),), actions=(action,))

    def ensure_firewall(self, target: CloudTarget, *, dry_run: bool = False, level: Level | None = None) -> Ensured:
        """Cloud.ensure_firewall; with `level`, the creates are sent in it and not waited
        for (the caller waits for the level)."""
        cluster = target.cluster
        group = self.group_of(cluster)
        # role -> (id, name, rule keys) as they are: as this command made them in its own
        # group (nothing to read), else as listed.
        known = self._made_nsgs.get(cluster.uuid)
        if known is not None and not dry_run:
            existing = {role: (i, n, build.wanted_rule_keys(rules)) for role, (i, n, rules) in known.items()}
        else:
            found = self.nsgs_of(group, cluster) if group else {}
            existing = {role: (n.id, n.name, build.existing_rule_keys(n)) for role, n in found.items()}
        work: list[tuple[str, str, str]] = []  # role, name, action
        for role, rules in sorted(target.firewall.items()):
            nsg = existing.get(role)
            name = nsg[1] if nsg is not None else build.nsg_name(cluster, role)
            if nsg is None:
                work.append((role, name, f"create network security group {name} ({len(rules)} rules)"))
                continue
            have, want = nsg[2], build.wanted_rule_keys(rules)
            if have != want:
                work.append((role, name, f"repair network security group {name}: {len(want - have)} rules to add, "
                                         f"{len(have - want)} to remove"))
        if dry_run or not work:
            kept = tuple(CloudResource("network-security-group", i, n) for i, n, _ in existing.values())
            if not dry_run:
                self.nsg_ids[cluster.uuid] = {role: i for role, (i, _, _) in existing.items()}
            return Ensured(resources=kept, actions=tuple(a for _, _, a in work))
        if group is None:
            raise NotFoundError(CLOUD, f"no resource group of cluster {cluster.name}; ensure the network first")
        net = self.session.network

        def put(role: str, name: str) -> CloudResource:
            labels = {**tags.cluster_tags(cluster.name, cluster.uuid), tags.ROLE: role}
            model = build.security_group(self.region, labels, target.firewall[role])
            what, kind = f"create network security group {name}", "Microsoft.Network/networkSecurityGroups"

            def start(polling: Any) -> Any:
                return net.network_security_groups.begin_create_or_update(group, name, model, polling=polling)

            nsg_id = level.put(what, start, kind, name) if level is not None else self.put(what, start, group, kind,
                                                                                           name)
            if known is not None:
                known[role] = (nsg_id, name, target.firewall[role])
            return CloudResource("network-security-group", nsg_id, name)

        try:
            made = gather(*(lambda w=w: put(w[0], w[1]) for w in work))
        except BaseException:
            self._made_nsgs.pop(cluster.uuid, None)  # a put that failed half-way: read them next time
            raise
        result = {role: CloudResource("network-security-group", i, n) for role, (i, n, _) in existing.items()}
        result.update({w[0]: m for w, m in zip(work, made, strict=True)})
        self.nsg_ids[cluster.uuid] = {role: r.id for role, r in result.items()}
        return Ensured(resources=tuple(result.values()), actions=tuple(a for _, _, a in work))

    def ensure_ssh_key(self, target: CloudTarget, public_key: str, *, dry_run: bool = False) -> Ensured:
        return Ensured()  # Azure keeps the key with each VM

    # --- VMs -------------------------------------------------------------------------

    def ensure_vms(self, target: CloudTarget, vms: Sequence[VmRequest], public_key: str) -> list[Vm]:
        return self.vms.ensure(target, vms, public_key)

    def list_vms(self, cluster: ClusterRef) -> list[Vm]:
        group = self.group_of(cluster)
        found = self.vms.view(group) if group else []
        return sorted((v for v in found if v.cluster_uuid == cluster.uuid), key=lambda v: v.name)

    def delete_vms(self, target: CloudTarget, names: Sequence[str]) -> None:
        group = self.group_of(target.cluster)
        if group is not None:
            self.vms.delete(group, target.cluster, names)

    def find_foreign_vms(self, target: CloudTarget) -> list[Vm]:
        return azure_teardown.find_foreign(self, target)

    # --- inventory (teardown: base.Cloud.teardown) ------------------------------

    def forget_group(self, cluster: ClusterRef) -> None:
        """Forget the cluster's group (it is being deleted): the next ensure_network finds it again."""
        self._groups.pop(cluster.uuid, None)

    def remember_group(self, cluster: ClusterRef, name: str) -> None:
        """The cluster's group is `name` (the safety check found it)."""
        self._groups[cluster.uuid] = name

    def list_resources(self, cluster: ClusterRef) -> list[Owned]:
        return azure_teardown.inventory(self, cluster)
