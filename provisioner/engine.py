"""The lifecycle engine: the create flow of DESIGN.md, add-node, remove-node, delete-cluster
and reconcile. It knows no cloud by name: it drives `clouds.base.Cloud` objects from the
registry. Every step is an ensure, journaled before and after in the state store, so running
the same command again after a crash or a cloud error continues where it stopped.
"""

from __future__ import annotations

import contextlib
import threading
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .cloudinit import render_user_data
from .clouds import open_cloud
from .clouds.base import Cloud, CloudTarget, ClusterRef, Ensured, Vm, VmRequest
from .errors import CastError, ForeignVmError, HostKeyMismatchFound, InputError
from .keys import new_ed25519, public_of
from .parallel import gather
from .plan import CloudPlan, ClusterPlan, NodePlan, enforceable, make_plan, refuse_far_clouds
from .progress import Progress
from .regions import RegionMap
from .spec import ClusterSpec, spec_from_dict, with_counts
from .state import ClusterRow, NodeRow, StateStore

if TYPE_CHECKING:
    from .ingress import IngressSteps
    from .nodes.boot import BootMarker
    from .nodes.latency import LatencyReport
    from .nodes.ssh import NodeAccess, SshPool
    from .nodes.wireguard import MeshNodeAccess

CLUSTER_KEY = "ssh_key"  # the secret name of the cluster's SSH client key
KUBECONFIG_SECRET = "kubeconfig"  # the secret name of the cluster's admin kubeconfig
SSH_TIMEOUT_S = 300.0  # a cloud VM may take minutes to boot and run cloud-init


class StepError(CastError):
    """A step failed on a cloud; the message says which, why, and how to go on."""

    def __init__(self, cluster: str, cloud: str, step: str, cause: Exception, *, nothing_changed: bool = False):
        self.cloud = cloud
        self.step = step
        self.cause = cause
        if nothing_changed:
            hint = "Fix that, then run the same command again: nothing has been changed on any cloud yet."
        else:
            hint = (
                f"Run the same command again to continue from here, or `cast delete-cluster {cluster}` to remove "
                f"everything made so far."
            )
        super().__init__(f"{cloud}: step {step} failed: {cause}\n{hint}")
        if isinstance(cause, CastError):
            self.exit_code = cause.exit_code


class MeshError(CastError):
    """The mesh came up incomplete: the message names the pairs with no handshake."""


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


@dataclass(frozen=True)
class Cluster:
    """What the engine knows of one cluster while it works on it."""

    row: ClusterRow
    spec: ClusterSpec

    @property
    def ref(self) -> ClusterRef:
        return ClusterRef(self.row.name, self.row.uuid)


def host_key_secret(node: str) -> str:
    return f"host-key-{node}"


class Engine:
    """Runs cluster operations against the clouds, recording everything in `store`."""

    def __init__(
        self,
        store: StateStore,
        regions: RegionMap,
        *,
        progress: Progress | None = None,
        cloud_factory: Callable[[str, str, str | None], Cloud] = open_cloud,
    ):
        self.store = store
        self.regions = regions
        self.progress = progress or Progress(None)
        self.cloud_factory = cloud_factory

    # --- shared plumbing -----------------------------------------------------------------

    def _cloud(self, plan: CloudPlan) -> Cloud:
        return self.cloud_factory(plan.cloud, plan.region, plan.zone)

    def _target(self, cluster: Cluster, cp: CloudPlan) -> CloudTarget:
        return CloudTarget(
            cluster=cluster.ref,
            region=cp.region,
            zone=cp.zone,
            network_cidr=cp.network_cidr,
            subnet_cidr=cp.subnet_cidr,
            firewall=enforceable(cp.firewall),
            image=cp.image,
        )

    def _load(self, name: str) -> Cluster:
        row = self.store.require_cluster(name)
        return Cluster(row, spec_from_dict(row.spec))

    def _key_pair(self, cluster: Cluster, secret: str, comment: str) -> tuple[bytes, str]:
        """An ed25519 key pair kept as the cluster's secret `secret`, made on first use."""
        private = self.store.read_secret(cluster.row.uuid, secret)
        if private is None:
            private = new_ed25519(comment).private
            self.store.write_secret(cluster.row.uuid, secret, private)
        return private, public_of(private, comment)

    def _client_key(self, cluster: Cluster) -> tuple[bytes, str]:
        """The cluster's SSH client key pair (root on every node)."""
        return self._key_pair(cluster, CLUSTER_KEY, f"cast-{cluster.row.name}")

    def _host_key(self, cluster: Cluster, node: str) -> tuple[bytes, str]:
        """A node's SSH host key pair, made by cast before the VM exists."""
        return self._key_pair(cluster, host_key_secret(node), node)

    def _plan(self, cluster: Cluster, spec: ClusterSpec) -> ClusterPlan:
        """The plan for `spec`, keeping existing nodes' names and addresses, never reusing
        a retired one."""
        uuid = cluster.row.uuid
        existing = {n.name: n.mesh_ip for n in self.store.nodes(uuid)}
        indexes: dict[tuple[str, str], list[int]] = {}
        for value in self.store.allocations(uuid, "node-index"):
            cloud, role, index = value.split("/")
            indexes.setdefault((cloud, role), []).append(int(index))
        return make_plan(
            spec,
            self.regions,
            existing_nodes=existing,
            ever_allocated_mesh=self.store.allocations(uuid, "mesh"),
            taken_indexes=indexes,
            node_public_ips=[n.public_ip for n in self.store.nodes(uuid) if n.public_ip],
        )

    def _record_plan(self, cluster: Cluster, plan: ClusterPlan) -> None:
        """Journal the planned nodes and their allocations before any cloud call."""
        uuid = cluster.row.uuid
        known = {n.name for n in self.store.nodes(uuid)}
        for n in plan.nodes:
            if n.name in known:
                continue
            _, host_public = self._host_key(cluster, n.name)
            self.store.upsert_node(
                NodeRow(
                    uuid, n.name, n.cloud, n.role, n.mesh_ip, n.size, "planned", None, None, None, host_public, None
                )
            )
        self.store.allocate(uuid, "mesh", {n.mesh_ip: n.name for n in plan.nodes})
        self.store.allocate(uuid, "node-index", {f"{n.cloud}/{n.role}/{n.index}": n.name for n in plan.nodes})

    def _step(self, cluster: Cluster, cloud: str, step: str, work: Callable[[], Ensured]) -> Ensured:
        """Run one journaled step; failures become StepError naming the cloud and the step."""
        uuid = cluster.row.uuid
        self.store.journal(uuid, cloud, step, "begin")
        self.progress.line(cloud, step, "start")
        try:
            with self.progress.reporting(cloud, step):
                result = work()
        except Exception as exc:
            detail = str(exc) if isinstance(exc, CastError) else f"{type(exc).__name__}: {exc}"
            self.store.journal(uuid, cloud, step, "fail", detail)
            self.progress.line(cloud, step, "fail", detail)
            raise StepError(cluster.row.name, cloud, step, exc) from exc
        self.store.record_resources(uuid, cloud, [(r.kind, r.id, r.name) for r in result.resources])
        self.store.journal(uuid, cloud, step, "end", "; ".join(result.actions))
        self.progress.line(cloud, step, "done", "; ".join(result.actions) or "in place")
        return result

    def _pin(self, cluster: Cluster, node: str, host_key: str) -> None:
        """Record `host_key` (an OpenSSH public key line) as the key node `node` presents."""
        for row in self.store.nodes(cluster.row.uuid):
            if row.name == node and row.host_key != host_key:
                self.store.upsert_node(replace(row, host_key=host_key))

    def _user_data(self, cluster: Cluster, n: NodePlan, authorized: str) -> str:
        """The user-data of a VM about to be made: its host key is the cluster's secret for the
        node (a new one when the last was rotated away), pinned in the node's row."""
        private, public = self._host_key(cluster, n.name)
        self._pin(cluster, n.name, public)
        return render_user_data(
            cluster=cluster.row.name,
            node=n.name,
            role=n.role,
            cloud=n.cloud,
            host_key_private=private,
            host_key_public=public,
            authorized_key=authorized,
            master_mesh_ips=[r.mesh_ip for r in self.store.nodes(cluster.row.uuid) if r.role == "master"],
        )

    def _open(self, name: str, plans: Sequence[CloudPlan]) -> dict[str, Cloud]:
        """The providers of `plans`, with their credentials checked (in parallel) so that a
        missing credential stops the command before anything is made on any cloud. Opened
        here in the calling thread: opening one imports its SDK, and first imports of a
        shared package from several threads can deadlock."""
        providers = {cp.cloud: self._cloud(cp) for cp in plans}

        def check(cp: CloudPlan) -> None:
            try:
                providers[cp.cloud].check_credentials()
            except CastError as exc:
                raise StepError(name, cp.cloud, "credentials", exc, nothing_changed=True) from exc

        self._on_clouds(plans, check)
        return providers

    def _build_cloud(self, cluster: Cluster, cp: CloudPlan, cloud: Cloud, authorized: str) -> list[Vm]:
        """Every step on one cloud: the SSH key alongside the network; the subnet and the
        firewall side by side once the network exists; then the VMs."""
        target = self._target(cluster, cp)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"{cp.cloud}-step") as steps:
            key = steps.submit(self._step, cluster, cp.cloud, "ssh-key",
                               partial(cloud.ensure_ssh_key, target, authorized))
            network = self._step(cluster, cp.cloud, "network", partial(cloud.ensure_network, target))
            if network.network_cidr and network.network_cidr != target.network_cidr:
                target = replace(target, network_cidr=network.network_cidr, subnet_cidr=network.network_cidr)
            subnet = steps.submit(self._step, cluster, cp.cloud, "subnet", partial(cloud.ensure_subnet, target))
            self._step(cluster, cp.cloud, "firewall", partial(cloud.ensure_firewall, target))
            subnet.result()
            key.result()
        requests = self._vm_requests(cluster, cp, cloud, authorized)
        vms: list[Vm] = []

        def run_vms() -> Ensured:
            vms.extend(cloud.ensure_vms(target, requests, authorized))
            return Ensured(actions=(f"{len(vms)} running",))

        if requests:
            self._step(cluster, cp.cloud, "vms", run_vms)
        self._record_vms(cluster, vms)
        return vms

    def _vm_requests(self, cluster: Cluster, cp: CloudPlan, cloud: Cloud, authorized: str) -> list[VmRequest]:
        """A request per planned node of `cp`. A node whose injected host key was rotated away
        (no secret left) gets new user-data only if its VM is gone; a running one keeps its
        key and needs none."""
        uuid = cluster.row.uuid
        rotated = {n.name for n in cp.nodes if self.store.read_secret(uuid, host_key_secret(n.name)) is None}
        running = {vm.name for vm in cloud.list_vms(cluster.ref)} if rotated else set()
        return [
            VmRequest(n.name, n.role, n.size,
                      "" if n.name in rotated & running else self._user_data(cluster, n, authorized))
            for n in cp.nodes
        ]

    def _allow_peers(self, cluster: Cluster, providers: dict[str, Cloud]) -> None:
        """Open WireGuard on every cloud to exactly the nodes' current public IPs (the rules
        updated in place), before the mesh comes up: every node must accept every peer."""
        plan = self._plan(cluster, cluster.spec)

        def work(cp: CloudPlan) -> None:
            cloud, target = providers[cp.cloud], self._target(cluster, cp)
            self._step(cluster, cp.cloud, "firewall-peers", partial(cloud.ensure_firewall, target))

        self._on_clouds([cp for cp in plan.clouds if cp.cloud in providers], work)

    def _record_vms(self, cluster: Cluster, vms: Iterable[Vm]) -> None:
        by_name = {n.name: n for n in self.store.nodes(cluster.row.uuid)}
        for vm in vms:
            row = by_name.get(vm.name)
            if row:
                self.store.upsert_node(
                    replace(
                        row, status="running", cloud_id=vm.cloud_id, public_ip=vm.public_ip, private_ip=vm.private_ip
                    )
                )

    def _on_clouds(self, clouds: Sequence[CloudPlan], work: Callable[[CloudPlan], object]) -> None:
        """Run `work` on every cloud in parallel; raise the first failure after all finished."""
        gather(*(partial(work, cp) for cp in clouds))

    # --- the node phase: SSH with pinned host keys, then the WireGuard mesh ---------------

    @contextlib.contextmanager
    def _ssh(self, cluster: Cluster) -> Iterator[SshPool]:
        """SSH connections to the cluster's nodes as root with the cluster's key, host keys
        pinned; one pool serves a whole command, so each node is connected to once."""
        from .nodes.ssh import SshPool, load_private_key

        self._client_key(cluster)
        with SshPool(load_private_key(str(self.store.secrets_dir(cluster.row.uuid) / CLUSTER_KEY))) as pool:
            yield pool

    def _join_mesh(self, cluster: Cluster, pool: SshPool) -> dict[str, BootMarker]:
        """Make every node of the cluster that has a public IP reachable over SSH (host key
        pinned), booted (its cloud-init done) and one WireGuard full mesh, applied live.
        Returns each node's boot marker. Raises StepError (step "mesh") naming the nodes or
        the pairs that failed."""
        from .nodes.boot import wait_booted
        from .nodes.wireguard import Prepared, apply_mesh, prepare_node

        rows = [n for n in self.store.nodes(cluster.row.uuid) if n.public_ip]
        members = self._mesh_members(cluster)
        markers: dict[str, BootMarker] = {}
        by_name = {m.name: m for m in members}

        counted = threading.Lock()
        up: list[str] = []

        def booted(access: NodeAccess) -> tuple[BootMarker, Prepared]:
            # Each node gets ready for the mesh as soon as it is up, while others still boot.
            access = self._reach(cluster, pool, access)
            marker = wait_booted(pool, access)
            access = self._rotate_host_key(cluster, pool, access)
            result = marker, prepare_node(pool, replace(by_name[access.name], access=access))
            with counted:
                up.append(access.name)
                self.progress.update("mesh", "wireguard", f"{len(up)}/{len(members)} nodes booted")
            return result

        def work() -> Ensured:
            self.progress.update("mesh", "wireguard", f"0/{len(members)} nodes booted")
            ready = pool.map([m.access for m in members], booted)
            self.progress.update("mesh", "wireguard", f"bringing up the mesh of {len(members)} nodes")
            markers.update({name: marker for name, (marker, _) in ready.items()})
            pinned = self._mesh_members(cluster)  # with the host keys the nodes now present
            report = apply_mesh(pinned, pool, prepared={name: prep for name, (_, prep) in ready.items()})
            for n in (r for r in self.store.nodes(cluster.row.uuid) if r.public_ip):
                self.store.upsert_node(replace(n, status="meshed", wg_public_key=report.public_keys.get(n.name)))
            if report.missing_handshakes:
                pairs = ", ".join(f"{a}-{b}" for a, b in report.missing_handshakes)
                raise MeshError(f"no WireGuard handshake between {pairs}")
            started = f"{len(report.started)} brought up" if report.started else ""
            updated = f"{len(report.updated)} updated live" if report.updated else ""
            return Ensured(actions=(", ".join(x for x in (started, updated) if x) + f"; {len(rows)} nodes in mesh",))

        self._step(cluster, "mesh", "wireguard", work)
        return markers

    def _forget_user_data(self, cluster: Cluster, plans: Sequence[CloudPlan], providers: dict[str, Cloud]) -> None:
        """Once every node rotated its host key: take the user-data (with the first key) back
        from the clouds that allow it."""
        def work(cp: CloudPlan) -> None:
            cloud = providers[cp.cloud]
            names = [n.name for n in self.store.nodes(cluster.row.uuid) if n.cloud == cp.cloud]
            self._step(cluster, cp.cloud, "user-data", lambda: cloud.forget_user_data(self._target(cluster, cp), names))

        self._on_clouds([cp for cp in plans if providers[cp.cloud].removes_user_data], work)

    def _reach(self, cluster: Cluster, pool: SshPool, access: NodeAccess) -> NodeAccess:
        """Wait until `access` accepts SSH with its pinned key. A node that presents the key
        a rotation recorded as pending (cast stopped between the node's switch and the pin)
        is pinned to it; any other key is refused (HostKeyMismatchError)."""
        from .nodes.hostkey import same_key
        from .nodes.ssh import HostKeyMismatchError

        try:
            pool.wait_reachable(access, timeout_s=SSH_TIMEOUT_S)
            return access
        except HostKeyMismatchError:
            last = self.store.last_journal(cluster.row.uuid, access.name, "host-key")
            if not last or last[0] != "begin" or not last[1] or same_key(last[1], access.host_key):
                raise
        pending = replace(access, host_key=last[1])
        pool.wait_reachable(pending, timeout_s=SSH_TIMEOUT_S)
        self._pin(cluster, access.name, pending.host_key)
        return pending

    def _rotate_host_key(self, cluster: Cluster, pool: SshPool, access: NodeAccess) -> NodeAccess:
        """Replace the host key cast injected into `access` (readable through the cloud's
        metadata service) by one the node makes, pin it, and forget the injected private key:
        the cluster keeps only the public half. Once per VM (nodes.hostkey). Returns the
        node's access with its live key."""
        from .nodes.hostkey import rotate_host_key

        uuid = cluster.row.uuid

        def pending(public: str) -> None:
            self.store.journal(uuid, access.name, "host-key", "begin", public)

        rotated = rotate_host_key(pool, access, pending)
        # The secret goes before the pin: while it exists, a re-run would pin its (old) key
        # again for new user-data; without it, a re-run finds the pending key in the journal.
        (self.store.secrets_dir(uuid, create=False) / host_key_secret(access.name)).unlink(missing_ok=True)
        if rotated.host_key != access.host_key:
            self._pin(cluster, access.name, rotated.host_key)
            self.store.journal(uuid, access.name, "host-key", "end", rotated.host_key)
        return rotated

    def _mesh_drift(self, cluster: Cluster, pool: SshPool, skip: set[str]) -> tuple[list[str], list[str]]:
        """What differs between each node's WireGuard peers and the full mesh the state
        describes: nodes whose wg0 is down or unreachable, missing peers, stale peers; and the
        nodes that showed another host key (a finding of its own: "host key mismatch").
        Nodes in `skip` (whose VM is gone) are not probed."""
        from .nodes.ssh import HostKeyMismatchError
        from .nodes.wireguard import current_peers

        rows = [n for n in self.store.nodes(cluster.row.uuid) if n.public_ip and n.name not in skip]
        keys = {n.name: n.wg_public_key for n in rows}
        names = {key: name for name, key in keys.items() if key}

        def probe(access: NodeAccess) -> list[str]:
            try:
                peers = current_peers(pool, access)
            except HostKeyMismatchError:
                return [f"{access.name}: host key mismatch"]
            except CastError as exc:
                return [f"{access.name}: unreachable over SSH ({exc})"]
            if peers is None:
                return [f"{access.name}: not in the mesh (wg0 is down)"]
            wanted = {k for name, k in keys.items() if k and name != access.name}
            found = []
            if wanted - peers:
                found.append(f"{access.name}: lacks peers {', '.join(sorted(names[k] for k in wanted - peers))}")
            if peers - wanted:
                found.append(f"{access.name}: has {len(peers - wanted)} stale peer(s)")
            return found

        results = pool.map([self._access(n) for n in rows], probe)
        mismatched = sorted(name for name, lines in results.items() if f"{name}: host key mismatch" in lines)
        return [f"mesh: {line}" for name in sorted(results) for line in results[name]], mismatched

    def _mesh_members(self, cluster: Cluster) -> list[MeshNodeAccess]:
        from .nodes.wireguard import MeshNodeAccess

        rows = [n for n in self.store.nodes(cluster.row.uuid) if n.public_ip]
        return [MeshNodeAccess(self._access(n), n.cloud, n.mesh_ip, n.public_ip) for n in rows]

    def check_latency(
        self, name: str, *, count: int = 5, interval_s: float = 0.2, threshold_ms: float | None = None
    ) -> LatencyReport:
        """Ping every node's mesh address from every other node, over WireGuard. Returns the
        report; the caller decides what a violation means (the CLI exits 3)."""
        cluster = self._load(name)
        with self._ssh(cluster) as pool:
            return self._measure(cluster, pool, count, interval_s, threshold_ms)

    def _measure(
        self, cluster: Cluster, pool: SshPool, count: int, interval_s: float, threshold_ms: float | None = None
    ) -> LatencyReport:
        from .nodes.latency import measure_latency

        threshold = threshold_ms if threshold_ms is not None else cluster.spec.latency_threshold_ms
        return measure_latency(
            pool, self._mesh_members(cluster), count=count, interval_s=interval_s, threshold_ms=threshold
        )

    @staticmethod
    def _access(node: NodeRow) -> NodeAccess:
        from .nodes.ssh import NodeAccess

        assert node.public_ip is not None
        return NodeAccess(node.name, node.public_ip, node.host_key)

    # --- Kubernetes on the mesh -------------------------------------------------------------

    def _kubernetes(self, cluster: Cluster, pool: SshPool, markers: dict[str, BootMarker]) -> None:
        """kubeadm init on the first master over its mesh address, joins for every node not
        yet in, then the admin kubeconfig saved as a secret (0600). Skipped, visibly and with
        the nodes' own reason, when every node says it cannot run a kubelet (the sandbox's
        hosts); an error naming the nodes when some cannot or their install failed."""
        uuid = cluster.row.uuid
        unable = {name: m for name, m in markers.items() if not m.can_run_kubernetes}
        reasons = "; ".join(sorted({m.reason or "no reason given" for m in unable.values()}))
        if markers and all(m.unsupported for m in markers.values()):
            self.store.journal(uuid, "kubernetes", "bootstrap", "skip", reasons)
            self.progress.line("kubernetes", "bootstrap", "skip", reasons)
            return

        def work() -> Ensured:
            from .nodes.kubernetes import bootstrap_kubernetes

            if unable:
                raise KubernetesError(f"{', '.join(sorted(unable))} cannot run Kubernetes: {reasons}")
            rows = [n for n in self.store.nodes(uuid) if n.public_ip]
            first = min((n.name for n in rows if n.role == "master"), default=None)
            if first is None:
                raise KubernetesError("the cluster has no master with an address")
            result = bootstrap_kubernetes(
                pool, cluster.row.name, [(self._access(n), n) for n in rows], markers[first].kubernetes
            )
            self.store.write_secret(uuid, KUBECONFIG_SECRET, result.kubeconfig.encode())
            return Ensured(actions=result.actions)

        self._step(cluster, "kubernetes", "bootstrap", work)

    def _forget_kubernetes_node(self, cluster: Cluster, pool: SshPool, node: str) -> None:
        """Delete a removed node's Node object through the first master."""
        from .nodes.kubernetes import forget_kubernetes_node

        masters = sorted((n for n in self.store.nodes(cluster.row.uuid) if n.role == "master" and n.public_ip),
                         key=lambda n: n.name)

        def work() -> Ensured:
            forget_kubernetes_node(pool, self._access(masters[0]), node)
            return Ensured(actions=(f"node {node} deleted from Kubernetes",))

        if masters:
            self._step(cluster, "kubernetes", "remove-node", work)

    # --- ingress (provisioner/ingress.py): load balancers and DNS records -----------------

    def _ingress(self, cluster: Cluster, plan: ClusterPlan, providers: dict[str, Cloud], *,
                 journal: bool = True) -> IngressSteps | None:
        """The cluster's ingress steps, or None when its spec asks for no ingress."""
        from .ingress import IngressSteps

        if plan.ingress is None:
            return None
        targets = {cp.cloud: self._target(cluster, cp) for cp in plan.clouds}
        if journal:
            return IngressSteps(cluster.ref, plan, targets, providers, partial(self._step, cluster))
        return IngressSteps(cluster.ref, plan, targets, providers)

    def _ingress_ensure(self, cluster: Cluster, plan: ClusterPlan, providers: dict[str, Cloud], *,
                        exclude: Iterable[str] = (), dry_run: bool = False, journal: bool = True) -> list[str]:
        """Every load balancer and the DNS records as planned (see IngressSteps.ensure)."""
        ingress = self._ingress(cluster, plan, providers, journal=journal)
        return ingress.ensure(exclude=set(exclude), dry_run=dry_run) if ingress is not None else []

    def _check_dns(self, spec: ClusterSpec, row: ClusterRow | None) -> None:
        """Read-only: refuse a domain another owner holds (exit 4) or no zone of the DNS
        provider holds (exit 2), before anything is written."""
        from .ingress import check_dns

        if spec.ingress is not None and spec.ingress.dns_provider is not None:
            check_dns(make_plan(spec, self.regions), row.uuid if row else None)

    # --- create-cluster ------------------------------------------------------------------

    def create_cluster(self, spec: ClusterSpec) -> ClusterRow:
        """Create (or continue creating) the cluster of `spec`. Blocks until every VM runs.
        Raises StepError naming the cloud and step on failure; the state lets a re-run go on."""
        self._same_region(spec)  # read-only, before the lock writes: bad input writes nothing
        with self.store.lock(spec.name, "create-cluster"):
            providers = self._open(spec.name, make_plan(spec, self.regions).clouds)
            row = self._same_region(spec)
            self._check_dns(spec, row)  # read-only: a name owned by another refuses before anything is made
            if row is None:
                row = self.store.create_cluster(str(uuidlib.uuid4()), spec.name, spec.region, spec.to_dict())
                self.progress.line("cluster", "state", "done", f"{spec.name} uuid {row.uuid}")
            else:
                self.store.update_cluster(row.uuid, spec=spec.to_dict())
                self.progress.line("cluster", "state", "info", f"continuing {spec.name} uuid {row.uuid}")
            cluster = Cluster(row, spec)
            plan = self._plan(cluster, spec)
            self._record_plan(cluster, plan)
            _, authorized = self._client_key(cluster)
            self._on_clouds(plan.clouds, lambda cp: self._build_cloud(cluster, cp, providers[cp.cloud], authorized))
            self._allow_peers(cluster, providers)
            self._ingress_ensure(cluster, plan, providers)
            with self._ssh(cluster) as pool:
                markers = self._join_mesh(cluster, pool)
                self._forget_user_data(cluster, plan.clouds, providers)
                latency = self._latency_step(cluster, pool)
                self._kubernetes(cluster, pool, markers)
            self.store.update_cluster(row.uuid, status="ready")
            self.progress.line("cluster", "done", "done", f"{len(plan.nodes)} nodes on {len(plan.clouds)} clouds")
        latency.raise_on_violations()  # exit 3 naming the pairs; the cluster itself is complete
        result = self.store.cluster(spec.name)
        assert result is not None
        return result

    def _same_region(self, spec: ClusterSpec) -> ClusterRow | None:
        """The cluster of the spec's name, if there is one; InputError when it lives in
        another region. Reads only."""
        row = self.store.cluster(spec.name)
        if row is not None and row.region != spec.region:
            raise InputError("--region", f"cluster {spec.name} already lives in {row.region}", row.region)
        return row

    def _latency_step(self, cluster: Cluster, pool: SshPool) -> LatencyReport:
        """The create flow's latency check over the mesh (a short one: 3 pings per pair).
        A fresh mesh can hiccup once, so pairs over the threshold are measured a second time
        and only what is over in both counts."""
        reports: list[LatencyReport] = []

        def work() -> Ensured:
            self.progress.update("mesh", "latency", "measuring every pair, 3 pings each")
            report = self._measure(cluster, pool, count=3, interval_s=0.2)
            if report.violations():
                again = f"{len(report.violations())} pairs over the threshold: measuring again"
                self.progress.update("mesh", "latency", again)
                report = self._measure(cluster, pool, count=5, interval_s=0.2)
            reports.append(report)
            cross = [p.avg_ms for p in report.pairs if p.cross_group and p.avg_ms is not None]
            worst = f"worst cross-cloud {max(cross):.1f} ms" if cross else "no cross-cloud pair"
            return Ensured(actions=(f"{len(report.pairs)} pairs, {worst}, {len(report.violations())} over",))

        self._step(cluster, "mesh", "latency", work)
        return reports[0]

    # --- add-node / remove-node ----------------------------------------------------------

    def add_node(self, name: str, cloud: str, role: str, count: int) -> list[str]:
        """Add `count` workers on `cloud` (a cloud of the cluster's region). Masters are fixed
        at creation. Returns the new node names."""
        if role != "worker":
            raise InputError("--role", "masters are fixed at creation: only workers can be added", "worker")
        if count < 1:
            raise InputError("--count", f"{count} is not a positive number", "1 or more")
        self._grown(name, cloud, count)  # read-only, before the lock writes: bad input writes nothing
        with self.store.lock(name, "add-node"):
            cluster, spec, plan = self._grown(name, cloud, count)
            before = {n.name for n in self.store.nodes(cluster.row.uuid)}
            self._record_plan(cluster, plan)
            self.store.update_cluster(cluster.row.uuid, spec=spec.to_dict())
            cluster = Cluster(cluster.row, spec)
            _, authorized = self._client_key(cluster)
            cp = plan.cloud(cloud)
            providers = self._open(name, plan.clouds)  # every cloud's firewall lets the new nodes in
            self._build_cloud(cluster, cp, providers[cloud], authorized)
            self._allow_peers(cluster, providers)
            self._ingress_ensure(cluster, plan, providers)
            with self._ssh(cluster) as pool:
                markers = self._join_mesh(cluster, pool)
                self._forget_user_data(cluster, [cp], providers)
                self._kubernetes(cluster, pool, markers)
            return [n.name for n in plan.nodes if n.name not in before]

    def _grown(self, name: str, cloud: str, count: int) -> tuple[Cluster, ClusterSpec, ClusterPlan]:
        """The cluster, its spec with `count` more workers on `cloud`, and that spec's plan.
        Reads only; InputError when there is no such cluster, the cloud is not offered in its
        region or is too far from the others."""
        cluster = self._load(name)
        region = self.regions.region(cluster.spec.region)
        if cloud not in region.clouds:
            raise InputError("--cloud", f"{cloud} is not offered in {cluster.spec.region}", ", ".join(region.clouds))
        current = cluster.spec.cloud(cloud)
        masters = current.masters if current else 0
        workers = (current.workers if current else 0) + count
        sizes = current.sizes if current else region.clouds[cloud].sizes
        spec = with_counts(cluster.spec, cloud, masters, workers, sizes)
        plan = self._plan(cluster, spec)
        refuse_far_clouds(plan)  # a new cloud must be as close as the others
        return cluster, spec, plan

    def _removable(self, name: str, node: str) -> tuple[Cluster, NodeRow]:
        """The cluster and its worker `node`. Reads only; InputError when there is no such
        cluster or node, or the node is a master."""
        cluster = self._load(name)
        rows = {n.name: n for n in self.store.nodes(cluster.row.uuid)}
        if node not in rows:
            workers = ", ".join(sorted(n for n, r in rows.items() if r.role != "master")) or "none"
            raise InputError("NODE", f"cluster {name} has no node {node!r}", workers)
        if rows[node].role == "master":
            raise InputError("NODE", f"{node} is a master: masters are fixed at creation", "a worker")
        return cluster, rows[node]

    def remove_node(self, name: str, node: str) -> None:
        """Delete one worker's VM and forget it; its name and mesh address stay retired."""
        self._removable(name, node)  # read-only, before the lock writes: bad input writes nothing
        with self.store.lock(name, "remove-node"):
            cluster, row = self._removable(name, node)
            plan = self._plan(cluster, cluster.spec)
            cp = plan.cloud(row.cloud)
            providers = self._open(name, plan.clouds)  # every cloud's firewall forgets the node
            cloud = providers[row.cloud]
            target = self._target(cluster, cp)
            self._ingress_ensure(cluster, plan, providers, exclude={node})  # out of its load balancer first
            self._step(cluster, row.cloud, "remove-vm", lambda: _delete(cloud, target, node))
            current = cluster.spec.cloud(row.cloud)
            assert current is not None
            spec = with_counts(cluster.spec, row.cloud, current.masters, current.workers - 1, current.sizes)
            self.store.delete_node(cluster.row.uuid, node)
            self.store.update_cluster(cluster.row.uuid, spec=spec.to_dict())
            cluster = Cluster(cluster.row, spec)
            self._allow_peers(cluster, providers)
            with self._ssh(cluster) as pool:
                self._join_mesh(cluster, pool)  # drops the removed node's peer everywhere
                last = kubernetes_phase(self.store, cluster.row.uuid)
                if last and last[0] == "end":
                    self._forget_kubernetes_node(cluster, pool, node)

    # --- delete-cluster ------------------------------------------------------------------

    def delete_cluster(self, name: str) -> bool:
        """Delete everything of the cluster on every cloud, in parallel, after the safety
        check on all of them (ForeignVmError: nothing deleted anywhere). The state is kept
        until every cloud confirms. Returns False when there was no such cluster."""
        if self.store.cluster(name) is None:
            return False  # before the lock, which writes: nothing to delete writes nothing
        with self.store.lock(name, "delete-cluster"):
            row = self.store.cluster(name)
            if row is None:
                return False
            cluster = Cluster(row, spec_from_dict(row.spec))
            plan = make_plan(cluster.spec, self.regions)  # only the clouds and their places matter here
            self.store.update_cluster(row.uuid, status="deleting")
            providers = self._open(name, plan.clouds)
            clouds = {cp.cloud: (providers[cp.cloud], self._target(cluster, cp)) for cp in plan.clouds}
            foreign: list[ForeignVmError] = []

            def check(cp: CloudPlan) -> None:
                cloud, target = clouds[cp.cloud]
                found = cloud.find_foreign_vms(target)
                self.progress.line(
                    cp.cloud,
                    "safety-check",
                    "fail" if found else "done",
                    ", ".join(vm.name for vm in found) or "no foreign VM",
                )
                if found:
                    foreign.append(ForeignVmError(cp.cloud, [f"{vm.name} ({vm.cloud_id})" for vm in found]))

            self._on_clouds(plan.clouds, check)
            if foreign:
                raise (
                    foreign[0]
                    if len(foreign) == 1
                    else ForeignVmError(", ".join(f.cloud for f in foreign), [vm for f in foreign for vm in f.vms])
                )

            ingress = self._ingress(cluster, plan, providers)
            if ingress is not None:
                ingress.delete()  # records and load balancers before the networks

            def teardown(cp: CloudPlan) -> None:
                cloud, target = clouds[cp.cloud]
                self._step(cluster, cp.cloud, "teardown", lambda: _teardown(cloud, target))
                self.store.forget_resources(row.uuid, cp.cloud)

            self._on_clouds(plan.clouds, teardown)
            self.store.forget_cluster(row.uuid)
            return True

    # --- reconcile -----------------------------------------------------------------------

    def reconcile(self, name: str, *, dry_run: bool = False) -> list[str]:
        """Compare every cloud to the spec and repair what differs (with dry_run, only report).
        Returns one line per finding and what was (or would be) done."""
        self._load(name)  # read-only, before the lock writes: no such cluster writes nothing
        with self.store.lock(name, "reconcile"):
            cluster = self._load(name)
            plan = self._plan(cluster, cluster.spec)
            _, authorized = self._client_key(cluster)
            report: list[str] = []
            gone: set[str] = set()  # nodes whose VM was missing
            providers = self._open(name, plan.clouds)

            def check(cp: CloudPlan) -> None:
                cloud = providers[cp.cloud]
                target = self._target(cluster, cp)
                network = cloud.ensure_network(target, dry_run=dry_run)
                if network.network_cidr and network.network_cidr != target.network_cidr:
                    target = replace(target, network_cidr=network.network_cidr, subnet_cidr=network.network_cidr)
                found = [*network.actions]
                found += cloud.ensure_subnet(target, dry_run=dry_run).actions
                found += cloud.ensure_firewall(target, dry_run=dry_run).actions
                found += cloud.ensure_ssh_key(target, authorized, dry_run=dry_run).actions
                running = {vm.name for vm in cloud.list_vms(cluster.ref)}
                missing = [n for n in cp.nodes if n.name not in running]
                gone.update(n.name for n in missing)
                if missing:
                    names = ", ".join(n.name for n in missing)
                    found.append(f"{'would recreate' if dry_run else 'recreated'} missing VMs: {names}")
                    if not dry_run:
                        requests = [
                            VmRequest(n.name, n.role, n.size, self._user_data(cluster, n, authorized)) for n in missing
                        ]
                        self._record_vms(cluster, cloud.ensure_vms(target, requests, authorized))
                report.extend(f"{cp.cloud}: {line}" for line in found)

            self._on_clouds(plan.clouds, check)
            if gone and not dry_run:
                self._allow_peers(cluster, providers)  # the recreated VMs' new addresses
            report.extend(self._ingress_ensure(cluster, plan, providers, dry_run=dry_run, journal=not dry_run))
            with self._ssh(cluster) as pool:
                drift, mismatched = self._mesh_drift(cluster, pool, skip=gone)  # recreated nodes join below anyway
                if mismatched:  # refused (exit 4), dry run or not: nothing is done on any node
                    raise HostKeyMismatchFound(mismatched, [*report, *drift])
                report.extend(drift if dry_run else [f"{line}: repaired" for line in drift])
                kube = kubernetes_phase(self.store, cluster.row.uuid)
                phase = kube[0] if kube else None
                kube_due = bool(gone) or phase not in ("end", "skip")
                if kube_due and phase != "skip":
                    done = "would be set up" if dry_run else "set up"
                    report.append(f"kubernetes: {describe_kubernetes(kube)}: {done}")
                if not dry_run and (drift or gone or kube_due):
                    markers = self._join_mesh(cluster, pool)  # joins recreated nodes and drops stale peers, live
                    self._forget_user_data(cluster, plan.clouds, providers)
                    if kube_due:
                        self._kubernetes(cluster, pool, markers)
            return report


def _delete(cloud: Cloud, target: CloudTarget, node: str) -> Ensured:
    cloud.delete_vms(target, [node])
    return Ensured(actions=(f"deleted {node}",))


def _teardown(cloud: Cloud, target: CloudTarget) -> Ensured:
    cloud.teardown(target)
    return Ensured(actions=("nothing of the cluster left",))
