"""The cloud interface: one contract for every cloud, written once.

Implementations (aws, gcp, azure, digitalocean) live beside this file and import their SDK
lazily. They do not repeat these docstrings. Rules that hold for every call:

- Every call reaches the cloud only through its official SDK and the endpoint settings
  (AWS_ENDPOINT_URL, CAST_GCP_ENDPOINT, CAST_AZURE_ENDPOINT, CAST_DIGITALOCEAN_ENDPOINT).
- SDK errors are mapped to provisioner.errors: TransientError (throttling, 5xx; already
  retried with backoff inside the module before it is raised), CapacityError (quota or
  capacity, names the region and size), DependencyError, NotFoundError, AuthError,
  ExcessResourcesError. No SDK exception type escapes a module.
- Ownership is by tags (provisioner.tags): every lookup filters by the cluster's UUID.
- Every `ensure_*` call first looks up what exists and creates or repairs only what is
  missing or differs; called twice, the second call changes nothing. With dry_run=True it
  changes nothing and says in `actions` what it would do.
- Every call blocks until the cloud reports the work done, polling with backoff and a
  deadline, never with a fixed sleep.
- Nothing secret (keys, tokens) ever goes into a message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import ipam
from ..errors import CastError, ForeignVmError
from ..plan import FirewallRule
from ..tags import short_id
from ..teardown import delete_inventory
from ..textcheck import is_node_address


@dataclass(frozen=True)
class ClusterRef:
    """Who owns a resource: the cluster's name and UUID."""

    name: str
    uuid: str

    @property
    def short_id(self) -> str:
        return short_id(self.uuid)


@dataclass(frozen=True)
class CloudTarget:
    """What the cluster has on one cloud: where, and how its network looks."""

    cluster: ClusterRef
    region: str
    zone: str | None
    network_cidr: str  # the VPC/VNet block; for DigitalOcean the wanted /20 (see ensure_network)
    subnet_cidr: str  # the cluster's /24 (DigitalOcean: the VPC range itself)
    firewall: Mapping[str, tuple[FirewallRule, ...]]  # role -> inbound rules
    image: Mapping[str, str]  # the region map's image reference for this cloud


class UnsafeReplyError(CastError):
    """A cloud's reply holds a value cast would not render (an address with a scope id or a
    line break): refused, nothing rendered from it."""


@dataclass(frozen=True)
class VmRequest:
    """A VM to run: its node name (unique in the cluster), role, size and cloud-init text."""

    name: str
    role: str
    size: str
    user_data: str


@dataclass(frozen=True)
class Vm:
    """A VM as the cloud reports it."""

    name: str  # the cast-node tag, or the cloud's name for a VM without one
    cloud_id: str
    state: str  # the cloud's own word: running, pending, RUNNING, active, ...
    private_ip: str | None
    public_ip: str | None
    role: str | None = None
    cluster_uuid: str | None = None  # None for a VM without the cluster's tag
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # The edge: an address a cloud returns goes into every other node's wg0.conf, known
        # hosts and kubeconfig, so it must be one cast would render (UnsafeReplyError).
        for name, value in (("private_ip", self.private_ip), ("public_ip", self.public_ip)):
            if value is not None and not is_node_address(value, public=True):
                raise UnsafeReplyError(
                    f"the cloud reported VM {self.name!r} with {name} {value!r}, not an IPv4 or global IPv6 "
                    "address without a scope: refusing to use it"
                )


@dataclass(frozen=True)
class CloudResource:
    """A resource carrying the cluster's UUID (or, where it takes no tags, its name/description)."""

    kind: str  # vpc, subnet, security-group, instance, key-pair, firewall, resource-group, ...
    id: str
    name: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.kind} {self.name or self.id}"


@dataclass(frozen=True)
class Ensured:
    """What an ensure call found or made.

    `resources`: the resources that now make up that step. `actions`: one line per thing
    created or repaired (or, with dry_run, to be), empty when all was already in place.
    `network_cidr`: the block actually used, where the cloud chose it (DigitalOcean); the
    engine's executor uses it in place of the target's for the later steps on that cloud.
    `vms`: the VMs a step made or found running (the creation graph's vms step).
    """

    resources: tuple[CloudResource, ...] = ()
    actions: tuple[str, ...] = ()
    network_cidr: str | None = None
    vms: tuple[Vm, ...] = ()


# --- creation as data -------------------------------------------------------------------
# A cloud's creation is a small graph of named ensure steps (CreationStep), declared by the
# provider (Cloud.creation_steps; the default below suits every cloud so far). The engine's one
# executor (provisioner/graph.py) runs them, on every cloud at once, each step as soon as the
# steps it needs are done, journaling each; create-cluster, add-node and reconcile alike.


@dataclass(frozen=True)
class StepInputs:
    """What the engine hands every creation step of one cloud.

    `public_key`: the cluster's SSH public key. `nodes`: the planned nodes of this cloud.
    `requests(names)`: the VM requests of those of `nodes` (user-data made then: it pins host
    keys in the state, so never called in a dry run). `dry_run`: change nothing, say what would
    be done. `repair` (reconcile): name what was missing rather than only how much runs.
    `running`: the nodes of `nodes` that have a VM, when an earlier step of the command has
    listed them (reconcile's strays step fills it before the vms step runs); else listed here.
    """

    public_key: str
    nodes: tuple[str, ...]
    requests: Callable[[Sequence[str]], Sequence[VmRequest]]
    dry_run: bool = False
    repair: bool = False
    running: Collection[str] | None = None


@dataclass(frozen=True)
class CreationStep:
    """One named ensure of a cloud's creation: it runs once every step in `needs` (names of
    the same cloud's steps) is done, with the cloud's target as the steps before left it."""

    name: str
    needs: tuple[str, ...]
    ensure: Callable[[CloudTarget, StepInputs], Ensured]


# --- settings and the inventory ---------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How long a provider waits and how much it does at once: one shape for every cloud
    (tests shorten them with dataclasses.replace)."""

    vm_timeout_s: float = 600.0  # ensure_vms: every VM running with its addresses
    delete_timeout_s: float = 300.0  # delete_vms: every VM gone
    stall_budget_s: float = 300.0  # teardown: no progress for this long is an error
    workers: int = 8  # parallel creates and deletes
    poll_initial_s: float = 0.5  # the first wait between two looks at the cloud; then backoff
    poll_max_s: float = 5.0

    def polling(self) -> dict[str, float]:
        """The polling keywords of retry.wait_until."""
        return {"initial": self.poll_initial_s, "maximum": self.poll_max_s}


def goes_with_its_container() -> None:
    """The deleter of a resource its container's deletion removes (Azure: a resource group's
    contents, listed `after` the container's kind): nothing left to do once that is gone."""


def _no_deleter() -> None:
    raise CastError("an inventory entry was listed without a deleter (a provider bug)")


@dataclass(frozen=True)
class Owned(CloudResource):
    """One entry of a cluster's inventory: a resource, the kinds that must be gone before it
    can go (`after`), and `delete`, which raises NotFoundError when it is already gone and
    DependencyError (or TransientError) while it cannot go yet."""

    after: frozenset[str] = frozenset()
    delete: Callable[[], None] = field(default=_no_deleter, compare=False, repr=False)

    @property
    def key(self) -> str:
        """Unique in an inventory and readable: `subnet cast-demo (subnet-0abc)`."""
        named = self.name and self.name != self.id
        return f"{self.kind} {self.name} ({self.id})" if named else f"{self.kind} {self.id}"


class Cloud(ABC):
    """One cloud account in one region."""

    name: str = ""
    settings: Settings = Settings()  # a provider's own defaults; an instance may replace them

    def __init__(self, region: str, zone: str | None = None):
        self.region = region
        self.zone = zone

    def creation_steps(self) -> tuple[CreationStep, ...]:
        """This cloud's creation as data: the network; the subnet and the firewall side by
        side once it exists; the SSH key alongside; then the VMs. Listed in the order a report
        names them. A provider whose creation differs overrides this."""
        return (
            CreationStep("network", (), lambda t, i: self.ensure_network(t, dry_run=i.dry_run)),
            CreationStep("subnet", ("network",), lambda t, i: self.ensure_subnet(t, dry_run=i.dry_run)),
            CreationStep("firewall", ("network",), lambda t, i: self.ensure_firewall(t, dry_run=i.dry_run)),
            CreationStep("ssh-key", (), lambda t, i: self.ensure_ssh_key(t, i.public_key, dry_run=i.dry_run)),
            CreationStep("vms", ("subnet", "firewall", "ssh-key"), self.ensure_vms_step),
        )

    def ensure_vms_step(self, target: CloudTarget, inputs: StepInputs) -> Ensured:
        """The creation graph's vms step: every planned node's VM running (ensure_vms). With
        `repair` or `dry_run`, first lists what runs, names the nodes whose VM is missing and
        (unless dry_run) runs only those."""
        if not inputs.nodes:
            return Ensured()
        if not (inputs.repair or inputs.dry_run):
            vms = self.ensure_vms(target, inputs.requests(inputs.nodes), inputs.public_key)
            return Ensured(actions=(f"{len(vms)} running",), vms=tuple(vms))
        running = inputs.running if inputs.running is not None else {vm.name for vm in self.list_vms(target.cluster)}
        missing = [n for n in inputs.nodes if n not in running]
        if not missing:
            return Ensured()
        names = ", ".join(missing)
        if inputs.dry_run:
            return Ensured(actions=(f"would recreate missing VMs: {names}",))
        vms = self.ensure_vms(target, inputs.requests(missing), inputs.public_key)
        return Ensured(actions=(f"recreated missing VMs: {names}",), vms=tuple(vms))

    # --- what cast knows of the cloud before opening it (no SDK, no account) -----------------

    # The most user-data the cloud accepts, in bytes of the cloud-config text itself.
    user_data_limit: int = 16 * 1024
    # Whether the API field takes the user-data base64-encoded; else the text as it is.
    user_data_base64: bool = False

    @classmethod
    def plan_network(cls, account_ranges: Iterable[str] = ()) -> tuple[str, str]:
        """The network block and the cluster's subnet the plan wants on this cloud: by default
        the address plan's /16 for it and its first /24 (provisioner.ipam). `account_ranges`
        are the ranges the account's networks already use, where known, for a cloud that
        picks its network from free blocks."""
        return str(ipam.CLOUD_BLOCKS[cls.name]), str(ipam.cluster_subnet(cls.name))

    @staticmethod
    def image_label(image: Mapping[str, str]) -> str:
        """A short label for people of the region map's image reference for this cloud."""
        return ", ".join(f"{k}={v}" for k, v in sorted(image.items())) or "?"

    @abstractmethod
    def check_credentials(self) -> None:
        """Make one cheap authenticated call. Blocks briefly. Raises AuthError naming the
        credential source tried and how to fix it."""

    def finish_opening(self, *, teardown: bool = False) -> None:
        """Import what the provider needs beyond check_credentials: its module's
        SDK_AFTER_CHECK (module names), in the calling thread, while the check runs in
        another (the engine calls this once every cloud's check has started). `teardown`:
        the command only checks and deletes the cluster (delete-cluster): the module's
        SDK_FOR_TEARDOWN instead, where it names one. Idempotent."""
        import importlib
        import sys

        module = sys.modules.get(type(self).__module__)
        names = getattr(module, "SDK_AFTER_CHECK", ())
        for name in getattr(module, "SDK_FOR_TEARDOWN", names) if teardown else names:
            importlib.import_module(name)

    @abstractmethod
    def ensure_network(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        """The cluster's network: AWS VPC with internet gateway and default route; GCP
        custom-mode network; Azure resource group and VNet; DigitalOcean VPC (the first free
        /20 given the account's VPCs, returned in `network_cidr`)."""

    @abstractmethod
    def ensure_subnet(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        """The cluster's /24 subnet in the network (a no-op on DigitalOcean, whose VPC is flat).
        Called once the network exists, at the same time as ensure_firewall: it must not
        depend on the firewall."""

    @abstractmethod
    def ensure_firewall(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        """A firewall per role with exactly `target.firewall`'s inbound rules: missing rules
        are added, rules that are not in the plan are removed. Called once the network
        exists, at the same time as ensure_subnet: it must not depend on the subnet."""

    @abstractmethod
    def ensure_ssh_key(self, target: CloudTarget, public_key: str, *, dry_run: bool = False) -> Ensured:
        """The cluster's SSH public key, where the cloud keeps keys as resources (AWS, DO);
        elsewhere the key travels with each VM and this is a no-op. Called at the same time
        as ensure_network: it must not depend on the network."""

    @abstractmethod
    def ensure_vms(self, target: CloudTarget, vms: Sequence[VmRequest], public_key: str) -> list[Vm]:
        """Run every VM in `vms` that is not already running (by its cast-node tag), in as
        few calls as the cloud allows, and block until all of them are running with a public
        and a private IP. Returns them in the order of `vms`. Raises CapacityError on quota or
        capacity, ExcessResourcesError when two VMs carry one node name."""

    # Whether forget_user_data removes anything. AWS (user-data is an instance attribute that
    # can change only while the instance is stopped), DigitalOcean and Azure (customData) cannot
    # take user-data back from a running VM: there the host key rotation after first contact
    # (provisioner/nodes/hostkey.py) is what makes the key in the user-data worthless.
    removes_user_data: bool = False

    def forget_user_data(self, target: CloudTarget, names: Sequence[str]) -> Ensured:
        """Remove the user-data of the cluster's running VMs with these node names from what
        the cloud serves them (once their host key was rotated: it holds the first one).
        Harmless when already removed. Only where `removes_user_data`; elsewhere a no-op."""
        return Ensured()

    @abstractmethod
    def list_vms(self, cluster: ClusterRef) -> list[Vm]:
        """Every VM carrying the cluster's UUID that is not terminated or being deleted."""

    @abstractmethod
    def delete_vms(self, target: CloudTarget, names: Sequence[str]) -> None:
        """Delete the cluster's VMs with these node names and block until they are gone.
        A name with no VM counts as done."""

    @abstractmethod
    def find_foreign_vms(self, target: CloudTarget) -> list[Vm]:
        """VMs inside the cluster's networks that do not carry the cluster's UUID."""

    # --- teardown as data (the inventory and its one executor) ---------------------------

    @abstractmethod
    def list_resources(self, cluster: ClusterRef) -> list[Owned]:
        """The cluster's inventory: everything on this cloud carrying its UUID, VMs included,
        each with the kinds it must be deleted after and its deleter. Lists; deletes nothing."""

    def delete_resources(self, cluster: ClusterRef, listed: Sequence[Owned] | None = None) -> list[str]:
        """Delete the cluster's inventory through provisioner.teardown (dependency order, in
        parallel passes: not found is done, in use is retried, no progress within
        `settings.stall_budget_s` raises CloudError naming what is left). No safety check:
        the caller has made it (teardown, or the engine once per cloud). Blocks until nothing
        of the cluster is left; harmless when nothing exists. `listed`: the inventory as
        list_resources gave it moments ago (else it is listed now). Returns the keys in the
        order they went."""
        items = self.list_resources(cluster) if listed is None else listed
        return delete_inventory(self.name, items, stall_budget_s=self.settings.stall_budget_s,
                                workers=self.settings.workers)

    def teardown(self, target: CloudTarget) -> None:
        """Delete everything of the cluster: first the safety check (ForeignVmError when
        `find_foreign_vms` finds any, and nothing deleted), then delete_resources."""
        refuse_foreign(self.name, self.find_foreign_vms(target))
        self.delete_resources(target.cluster)


def refuse_foreign(cloud: str, found: Sequence[Vm]) -> None:
    """Raise ForeignVmError naming `found` (node name and cloud id) unless it is empty."""
    if found:
        raise ForeignVmError(cloud, [f"{vm.name} ({vm.cloud_id})" for vm in found])
