"""FakeCloud: an in-memory cloud that keeps every promise of provisioner.clouds.base.Cloud, so
the engine's flows can be tested without root, emulators or SDKs.

Honest, not a stub: the ensures look up what exists and change only what is missing or
differs (called twice, the second changes nothing); a dry run changes nothing and says what it
would do; a subnet or firewall before its network, or a VM before its subnet, firewall and key,
is refused (DependencyError), so a wrong step order fails; two VMs with one node name raise
ExcessResourcesError; VMs without the cluster's UUID in its network are foreign (teardown
refuses); failures can be injected per call. Clouds opened from one `FakeWorld` share it, as
the four real accounts are shared by every command of a test.

    world = FakeWorld()
    engine = Engine(store, regions, cloud_factory=world.open)
"""

from __future__ import annotations

import ipaddress
import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

from provisioner.clouds.base import Cloud, CloudResource, CloudTarget, ClusterRef, Ensured, Owned, Vm, VmRequest
from provisioner.errors import AuthError, CloudError, DependencyError, ExcessResourcesError, NotFoundError

CHOOSE_FROM = ipaddress.ip_network("10.128.0.0/9")  # where a cloud that picks its block picks it


@dataclass
class FakeVm:
    """A VM as the fake keeps it."""

    name: str
    cloud_id: str
    role: str
    size: str
    cluster_uuid: str | None
    network: str  # the cluster UUID whose network it sits in
    public_ip: str
    private_ip: str
    user_data: str


@dataclass
class Account:
    """One cloud's resources, by the owning cluster's UUID."""

    networks: dict[str, str] = field(default_factory=dict)  # uuid -> network block
    subnets: dict[str, str] = field(default_factory=dict)  # uuid -> subnet block
    firewalls: dict[str, dict[str, set[object]]] = field(default_factory=dict)  # uuid -> role -> rules
    keys: dict[str, str] = field(default_factory=dict)  # uuid -> public key
    vms: list[FakeVm] = field(default_factory=list)


@dataclass
class FakeWorld:
    """Every fake cloud's account, the calls they answered, and the faults to inject."""

    accounts: dict[str, Account] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (cloud, method)
    faults: dict[tuple[str, str], list[Exception]] = field(default_factory=dict)
    missing_credentials: set[str] = field(default_factory=set)
    choose_network: set[str] = field(default_factory=set)  # clouds that pick their block (as DigitalOcean)
    removes_user_data: set[str] = field(default_factory=set)
    sizes: set[str] | None = None  # the sizes the clouds offer; None: any
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _blocks: Iterator[ipaddress.IPv4Network] = field(default_factory=lambda: CHOOSE_FROM.subnets(new_prefix=20))

    def open(self, name: str, region: str, zone: str | None = None) -> FakeCloud:
        """The engine's cloud_factory."""
        return FakeCloud(name, region, zone, world=self)

    def account(self, cloud: str) -> Account:
        with self.lock:
            return self.accounts.setdefault(cloud, Account())

    def fail(self, cloud: str, method: str, error: Exception, times: int = 1) -> None:
        """The next `times` calls of `method` on `cloud` raise `error` (before changing anything)."""
        self.faults.setdefault((cloud, method), []).extend([error] * times)

    def new_id(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}-{next(self._ids)}"

    def vm_at(self, public_ip: str) -> FakeVm | None:
        """The VM (on any cloud) that answers at `public_ip`."""
        with self.lock:
            return next((vm for a in self.accounts.values() for vm in a.vms if vm.public_ip == public_ip), None)

    def run_vm(self, cloud: str, *, name: str, cluster_uuid: str | None, network: str, role: str = "worker",
               user_data: str = "") -> FakeVm:
        """A VM made out of band (as through the cloud's console), in the network of cluster
        `network`; `cluster_uuid` None for one without the cluster's tag."""
        with self.lock:
            number = next(self._ids)
            vm = FakeVm(name, f"{cloud}-vm-{number}", role, "small", cluster_uuid, network,
                        f"203.0.{number // 250}.{number % 250 + 1}", f"10.99.{number // 250}.{number % 250 + 1}",
                        user_data)
            self.account(cloud).vms.append(vm)
            return vm


class FakeCloud(Cloud):
    """One fake cloud account in one region (see the module docstring)."""

    def __init__(self, name: str, region: str, zone: str | None = None, *, world: FakeWorld):
        super().__init__(region, zone)
        self.name = name
        self.world = world
        self.removes_user_data = name in world.removes_user_data

    @property
    def _account(self) -> Account:
        return self.world.account(self.name)

    def _call(self, method: str) -> None:
        with self.world.lock:
            self.world.calls.append((self.name, method))
            queued = self.world.faults.get((self.name, method))
            if queued:
                raise queued.pop(0)

    def check_credentials(self) -> None:
        self._call("check_credentials")
        if self.name in self.world.missing_credentials:
            raise AuthError(self.name, f"no credentials for {self.name}: set FAKE_{self.name.upper()}_TOKEN")

    def ensure_network(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        self._call("ensure_network")
        uuid = target.cluster.uuid
        with self.world.lock:
            have = self._account.networks.get(uuid)
            chooses = self.name in self.world.choose_network
            if have is not None:
                return Ensured((CloudResource("network", f"net-{uuid}", have),), (), have if chooses else None)
            block = str(next(self.world._blocks)) if chooses else target.network_cidr
            if dry_run:
                return Ensured((), (f"create network {block}",), block if chooses else None)
            self._account.networks[uuid] = block
            return Ensured((CloudResource("network", f"net-{uuid}", block),), (f"created network {block}",),
                           block if chooses else None)

    def _need_network(self, target: CloudTarget, what: str) -> None:
        if target.cluster.uuid not in self._account.networks:
            raise DependencyError(self.name, f"{what}: the cluster's network does not exist")

    def ensure_subnet(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        self._call("ensure_subnet")
        uuid = target.cluster.uuid
        with self.world.lock:
            if dry_run and uuid not in self._account.networks:
                return Ensured((), (f"create subnet {target.subnet_cidr}",))
            self._need_network(target, "subnet")
            have = self._account.subnets.get(uuid)
            if have == target.subnet_cidr:
                return Ensured((CloudResource("subnet", f"subnet-{uuid}", have),))
            verb = "create" if have is None else f"set (was {have})"
            if dry_run:
                return Ensured((), (f"{verb} subnet {target.subnet_cidr}",))
            self._account.subnets[uuid] = target.subnet_cidr
            return Ensured((CloudResource("subnet", f"subnet-{uuid}", target.subnet_cidr),),
                           (f"{verb.replace('create', 'created')} subnet {target.subnet_cidr}",))

    def ensure_firewall(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        self._call("ensure_firewall")
        uuid = target.cluster.uuid
        with self.world.lock:
            if not (dry_run and uuid not in self._account.networks):
                self._need_network(target, "firewall")
            have = self._account.firewalls.get(uuid, {})
            actions = []
            for role, rules in sorted(target.firewall.items()):
                want, got = set(rules), have.get(role, set())
                if want - got:
                    actions.append(f"firewall {role}: add {len(want - got)} rule(s)")
                if got - want:
                    actions.append(f"firewall {role}: remove {', '.join(sorted(map(str, got - want)))}")
            for role in sorted(set(have) - set(target.firewall)):
                actions.append(f"firewall {role}: remove the firewall")
            if not dry_run:
                self._account.firewalls[uuid] = {role: set(rules) for role, rules in target.firewall.items()}
            return Ensured(() if dry_run else tuple(CloudResource("firewall", f"fw-{uuid}-{r}", r)
                                                    for r in sorted(target.firewall)), tuple(actions))

    def ensure_ssh_key(self, target: CloudTarget, public_key: str, *, dry_run: bool = False) -> Ensured:
        self._call("ensure_ssh_key")
        uuid = target.cluster.uuid
        with self.world.lock:
            have = self._account.keys.get(uuid)
            if have == public_key:
                return Ensured((CloudResource("key", f"key-{uuid}"),))
            if dry_run:
                return Ensured((), ("import the SSH key",))
            self._account.keys[uuid] = public_key
            return Ensured((CloudResource("key", f"key-{uuid}"),), ("imported the SSH key",))

    def ensure_vms(self, target: CloudTarget, vms: Sequence[VmRequest], public_key: str) -> list[Vm]:
        self._call("ensure_vms")
        uuid = target.cluster.uuid
        with self.world.lock:
            account = self._account
            if uuid not in account.subnets or uuid not in account.firewalls or account.keys.get(uuid) != public_key:
                raise DependencyError(self.name, "VMs need the cluster's subnet, firewall and SSH key first")
            unknown = sorted({r.size for r in vms} - self.world.sizes) if self.world.sizes is not None else []
            if unknown:
                raise CloudError(self.name, f"size {unknown[0]!r} is not offered in {self.region}")
            out = []
            for request in vms:
                ours = [vm for vm in account.vms if vm.cluster_uuid == uuid and vm.name == request.name]
                if len(ours) > 1:
                    raise ExcessResourcesError(self.name, f"{len(ours)} VMs carry node name {request.name}")
                if not ours:
                    ours = [self.world.run_vm(self.name, name=request.name, cluster_uuid=uuid, network=uuid,
                                              role=request.role, user_data=request.user_data)]
                    ours[0].size = request.size
                out.append(self._vm(ours[0]))
            return out

    def forget_user_data(self, target: CloudTarget, names: Sequence[str]) -> Ensured:
        self._call("forget_user_data")
        if not self.removes_user_data:
            return Ensured()
        with self.world.lock:
            held = [vm for vm in self._account.vms
                    if vm.cluster_uuid == target.cluster.uuid and vm.name in names and vm.user_data]
            for vm in held:
                vm.user_data = ""
        return Ensured(actions=(f"user-data removed from {len(held)} VMs",) if held else ())

    def _vm(self, vm: FakeVm) -> Vm:
        return Vm(vm.name, vm.cloud_id, "running", vm.private_ip, vm.public_ip, vm.role, vm.cluster_uuid)

    def list_vms(self, cluster: ClusterRef) -> list[Vm]:
        self._call("list_vms")
        with self.world.lock:
            return [self._vm(vm) for vm in self._account.vms if vm.cluster_uuid == cluster.uuid]

    def delete_vms(self, target: CloudTarget, names: Sequence[str]) -> None:
        self._call("delete_vms")
        with self.world.lock:
            self._account.vms = [vm for vm in self._account.vms
                                 if not (vm.cluster_uuid == target.cluster.uuid and vm.name in names)]

    def find_foreign_vms(self, target: CloudTarget) -> list[Vm]:
        self._call("find_foreign_vms")
        with self.world.lock:
            return [self._vm(vm) for vm in self._account.vms
                    if vm.network == target.cluster.uuid and vm.cluster_uuid != target.cluster.uuid]

    def list_resources(self, cluster: ClusterRef) -> list[Owned]:
        """The inventory, each entry with a deleter that refuses (DependencyError) while what
        must go first is still there, as a cloud does."""
        self._call("list_resources")
        uuid = cluster.uuid
        with self.world.lock:
            a = self._account
            found = [Owned("network", f"net-{uuid}", a.networks[uuid], after=frozenset({"subnet", "firewall", "vm"}),
                           delete=partial(self._delete, "network", uuid))] if uuid in a.networks else []
            found += [Owned("subnet", f"subnet-{uuid}", a.subnets[uuid], after=frozenset({"vm"}),
                            delete=partial(self._delete, "subnet", uuid))] if uuid in a.subnets else []
            found += [Owned("firewall", f"fw-{uuid}-{r}", r, after=frozenset({"vm"}),
                            delete=partial(self._delete, "firewall", uuid, r))
                      for r in sorted(a.firewalls.get(uuid, {}))]
            found += [Owned("key", f"key-{uuid}", delete=partial(self._delete, "key", uuid))] if uuid in a.keys else []
            found += [Owned("vm", vm.cloud_id, vm.name, delete=partial(self._delete, "vm", uuid, vm.cloud_id))
                      for vm in a.vms if vm.cluster_uuid == uuid]
            return found

    def _delete(self, kind: str, uuid: str, ident: str = "") -> None:
        self._call(f"delete {kind}")
        with self.world.lock:
            a = self._account
            vms = [vm for vm in a.vms if vm.cluster_uuid == uuid]
            if kind == "vm":
                if not any(vm.cloud_id == ident for vm in vms):
                    raise NotFoundError(self.name, f"vm {ident}")
                a.vms = [vm for vm in a.vms if vm.cloud_id != ident]
            elif kind in ("subnet", "firewall") and vms:
                raise DependencyError(self.name, f"{kind} in use by {len(vms)} VMs")
            elif kind == "network" and (vms or uuid in a.subnets or a.firewalls.get(uuid)):
                raise DependencyError(self.name, "network in use")
            elif kind == "firewall":
                a.firewalls.get(uuid, {}).pop(ident, None)
                if not a.firewalls.get(uuid):
                    a.firewalls.pop(uuid, None)
            else:
                table = {"network": a.networks, "subnet": a.subnets, "key": a.keys}[kind]
                if table.pop(uuid, None) is None:
                    raise NotFoundError(self.name, f"{kind} of {uuid}")
