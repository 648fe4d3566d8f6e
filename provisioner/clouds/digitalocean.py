"""DigitalOcean behind the cloud interface (base.Cloud), through pydo (see do_client).

What a cluster has here: one VPC (no tags on VPCs: its name `cast-<cluster>-<shortid>`
carries the short id and its description the full UUID), a cloud firewall per role that
targets droplets by the tag `cast-role:<role>:<uuid>`, the SSH key `cast-<cluster>-<shortid>`,
and droplets tagged with the cluster's plain-string tags. Teardown also deletes the tags
that carry the UUID.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import ipam
from ..errors import (
    AuthError,
    CapacityError,
    CloudError,
    DependencyError,
    NotFoundError,
)
from ..parallel import gather
from ..progress import report
from ..retry import wait_until
from ..teardown import Batch
from . import do_droplets, do_firewall, do_lb, do_tags, leaks
from .api_log import TRANSPORT_MODULES
from .base import Cloud, CloudResource, CloudTarget, ClusterRef, Ensured, Owned, Settings, Vm, VmRequest
from .do_client import CLOUD, ApiError, DoApi

# The SDK modules this cloud imports lazily; the registry imports them in the caller's thread
# (concurrent first imports of one package from several threads can deadlock: azure-core is
# shared with the Azure SDK).
# pydo.Client's constructor imports its agent, gateway and inference surfaces.
SDK_MODULES = ("azure.core.exceptions", "azure.core.pipeline.policies", "pydo", "pydo.agents", "pydo.gateway",
               "pydo.resources.agent_inference", "pydo.resources.inference", *TRANSPORT_MODULES)


VPC_CREATE_ATTEMPTS = 5


class Provider(Cloud):
    """DigitalOcean in one region."""

    name = CLOUD
    # Droplets take tens of seconds to boot on the real API: polled less often than elsewhere.
    settings = Settings(poll_initial_s=1.0, poll_max_s=10.0)
    # DigitalOcean API v2, droplet create, user_data: "may not exceed 64 KiB in size".
    user_data_limit = 64 * 1024

    @classmethod
    def plan_network(cls, account_ranges: Iterable[str] = ()) -> tuple[str, str]:
        # A VPC is one flat range: the first free /20 given the account's VPCs (ensure_network
        # picks again against what the account holds then, and says which it took).
        block = str(ipam.digitalocean_vpc_range(account_ranges))
        return block, block

    @staticmethod
    def image_label(image: Mapping[str, str]) -> str:
        return image.get("slug", "?")

    def __init__(self, region: str, zone: str | None = None):
        super().__init__(region, zone)
        self.api = DoApi()
        self._vpc_ids: dict[str, str] = {}  # cluster uuid -> VPC id, found or made
        self._lock = threading.Lock()

    # --- names -------------------------------------------------------------------------

    @staticmethod
    def _base_name(cluster: ClusterRef) -> str:
        return f"cast-{cluster.name}-{cluster.short_id}"

    @staticmethod
    def _firewall_name(cluster: ClusterRef, role: str) -> str:
        return f"cast-{cluster.name}-{cluster.short_id}-{role}"

    @staticmethod
    def _is_ours(vpc: dict[str, Any], cluster: ClusterRef) -> bool:
        return do_tags.uuid_tag_string(cluster.uuid) in str(vpc.get("description") or "")

    # --- lookups -----------------------------------------------------------------------

    def _vpcs(self) -> list[dict[str, Any]]:
        return list(self.api.pages("list VPCs", lambda c: c.vpcs.list, "vpcs"))

    def _our_vpcs(self, cluster: ClusterRef, vpcs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        return [v for v in (self._vpcs() if vpcs is None else vpcs) if self._is_ours(v, cluster)]

    def _vpc_id(self, cluster: ClusterRef) -> str:
        with self._lock:
            known = self._vpc_ids.get(cluster.uuid)
        if known:
            return known
        ours = self._our_vpcs(cluster)
        if not ours:
            raise NotFoundError(CLOUD, f"the VPC of cluster {cluster.name} does not exist (run ensure_network first)")
        with self._lock:
            self._vpc_ids[cluster.uuid] = ours[0]["id"]
        return str(ours[0]["id"])

    def _droplets(self, tag: str | None) -> list[dict[str, Any]]:
        params = {"tag_name": tag} if tag else {}
        what = f"list droplets tagged {tag}" if tag else "list droplets"
        found = self.api.pages(what, lambda c: c.droplets.list, "droplets", **params)
        return [d for d in found if d.get("status") not in do_droplets.GONE]

    def _firewalls(self, cluster: ClusterRef) -> dict[str, list[dict[str, Any]]]:
        """The cluster's firewalls by role (a firewall is ours when it targets our role tag)."""
        wanted = {do_tags.role_target_tag(cluster.uuid, role): role for role in ("master", "worker")}
        by_role: dict[str, list[dict[str, Any]]] = {}
        for fw in self.api.pages("list firewalls", lambda c: c.firewalls.list, "firewalls"):
            for tag in fw.get("tags") or []:
                if tag in wanted:
                    by_role.setdefault(wanted[tag], []).append(fw)
                    break
        return by_role

    def _keys(self, cluster: ClusterRef) -> list[dict[str, Any]]:
        name = self._base_name(cluster)
        every = self.api.pages("list SSH keys", lambda c: c.ssh_keys.list, "ssh_keys")
        return [k for k in every if k.get("name") == name]

    def _uuid_tags(self, cluster: ClusterRef) -> list[str]:
        every = self.api.pages("list tags", lambda c: c.tags.list, "tags")
        return [t["name"] for t in every if cluster.uuid in str(t.get("name", ""))]

    # --- credentials -------------------------------------------------------------------

    def check_credentials(self) -> None:
        self.api.call("read the account", lambda c: c.account.get)

    # --- network -----------------------------------------------------------------------

    def ensure_network(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        cluster = target.cluster
        name = self._base_name(cluster)
        vpcs = self._vpcs()
        ours = leaks.at_most_one(CLOUD, "VPC", self._our_vpcs(cluster, vpcs), _label)
        if ours:
            with self._lock:
                self._vpc_ids[cluster.uuid] = ours["id"]
            return Ensured((self._vpc_resource(ours),), (), ours["ip_range"])
        made_default: tuple[str, ...] = ()
        if not any(v.get("region") == self.region for v in vpcs):
            # The API makes the first VPC of a region its default, and never deletes a default:
            # cast's own VPC must not be that one, or delete-cluster could not remove it.
            default = f"default-{self.region}"
            if dry_run:
                made_default = (f"create the region's default VPC {default} (the account has no VPC in {self.region})",)
            else:
                made = self.api.call(f"create the default VPC {default}", lambda c: c.vpcs.create, body={
                    "name": default, "region": self.region,
                    "description": "the region's default VPC, made by cast before its first VPC here (DigitalOcean "
                                   "makes the first VPC of a region the default, which cannot be deleted)",
                })["vpc"]
                vpcs = [*vpcs, made]
                made_default = (f"created the region's default VPC {default} ({made.get('ip_range')})",)
        used = [str(v["ip_range"]) for v in vpcs if v.get("ip_range")]
        for _ in range(VPC_CREATE_ATTEMPTS):
            block = str(ipam.digitalocean_vpc_range(used))
            if dry_run:
                return Ensured((), (*made_default, f"create VPC {name} with {block} in {self.region}"), block)
            body = {
                "name": name,
                "region": self.region,
                "ip_range": block,
                "description": f"cast cluster {cluster.name}; {do_tags.uuid_tag_string(cluster.uuid)}",
            }
            try:
                vpc = self.api.call(f"create VPC {name}", lambda c: c.vpcs.create, body=body)["vpc"]
            except ApiError as exc:
                if exc.status != 422 or "overlap" not in exc.detail.lower():
                    raise
                # Another VPC took the block since we listed: list again and pick again.
                used = [*used, block, *(str(v["ip_range"]) for v in self._vpcs() if v.get("ip_range"))]
                continue
            with self._lock:
                self._vpc_ids[cluster.uuid] = vpc["id"]
            return Ensured((self._vpc_resource(vpc),), (*made_default, f"created VPC {name} with {block}"), block)
        raise CloudError(CLOUD, f"could not create VPC {name}: its range overlapped {VPC_CREATE_ATTEMPTS} times")

    @staticmethod
    def _vpc_resource(vpc: dict[str, Any]) -> CloudResource:
        return CloudResource("vpc", str(vpc["id"]), str(vpc["name"]), {"ip_range": vpc.get("ip_range")})

    def ensure_subnet(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        return Ensured()

    # --- firewalls ---------------------------------------------------------------------

    def ensure_firewall(self, target: CloudTarget, *, dry_run: bool = False) -> Ensured:
        cluster = target.cluster
        existing = self._firewalls(cluster)

        def one(role: str) -> tuple[CloudResource | None, str | None]:
            found = existing.get(role, [])
            leaks.at_most_one(CLOUD, f"firewall of the {role}s", found, _label)
            tag = do_tags.role_target_tag(cluster.uuid, role)
            name = self._firewall_name(cluster, role)
            inbound = do_firewall.inbound_rules(target.firewall[role])
            body = {
                "name": name,
                "tags": [tag],
                "inbound_rules": inbound,
                "outbound_rules": do_firewall.outbound_rules(),
            }
            if found and not do_firewall.drifted(found[0], inbound, tag):
                return CloudResource("firewall", found[0]["id"], found[0]["name"]), None
            action = f"{'repair' if found else 'create'} firewall {name}"
            if dry_run:
                return None, action
            # Firewalls may only target tags that exist; droplets create theirs on the fly.
            self.api.call(f"create tag {tag}", lambda c: c.tags.create, body={"name": tag})
            if found:
                fw = self.api.call(f"update firewall {name}", lambda c: c.firewalls.update,
                                   found[0]["id"], body=body)["firewall"]
            else:
                fw = self.api.call(f"create firewall {name}", lambda c: c.firewalls.create, body=body)["firewall"]
            return CloudResource("firewall", fw["id"], fw["name"]), action

        done = gather(*(lambda role=role: one(role) for role in sorted(target.firewall)))  # the roles at once
        return Ensured(tuple(r for r, _ in done if r is not None), tuple(a for _, a in done if a is not None))

    # --- SSH key -----------------------------------------------------------------------

    def ensure_ssh_key(self, target: CloudTarget, public_key: str, *, dry_run: bool = False) -> Ensured:
        cluster = target.cluster
        name = self._base_name(cluster)
        fingerprint = do_droplets.fingerprint(public_key)
        found = self._keys(cluster)
        current = [k for k in found if k.get("fingerprint") == fingerprint]
        stale = [k for k in found if k.get("fingerprint") != fingerprint]
        actions = [f"delete stale SSH key {name} ({k['fingerprint']})" for k in stale]
        if not current:
            actions.append(f"import SSH key {name}")
        if dry_run:
            return Ensured((), tuple(actions))
        for k in stale:
            with contextlib.suppress(NotFoundError):
                self.api.call(f"delete SSH key {name}", lambda c: c.ssh_keys.delete, k["id"])
        key = current[0] if current else self._import_key(name, public_key, fingerprint)
        resource = CloudResource("ssh-key", str(key["id"]), str(key["name"]), {"fingerprint": key["fingerprint"]})
        return Ensured((resource,), tuple(actions))

    def _import_key(self, name: str, public_key: str, fingerprint: str) -> dict[str, Any]:
        body = {"name": name, "public_key": public_key}
        try:
            return dict(self.api.call(f"import SSH key {name}", lambda c: c.ssh_keys.create, body=body)["ssh_key"])
        except ApiError as exc:
            if exc.status != 422:
                raise
            # The account already holds this key under another name: droplets can use it as it
            # is, and teardown leaves it alone (it is not named after the cluster).
            every = self.api.pages("list SSH keys", lambda c: c.ssh_keys.list, "ssh_keys")
            same = next((k for k in every if k.get("fingerprint") == fingerprint), None)
            if same is None:
                raise
            return dict(same)

    # --- droplets ----------------------------------------------------------------------

    def ensure_vms(self, target: CloudTarget, vms: Sequence[VmRequest], public_key: str) -> list[Vm]:
        cluster = target.cluster
        uuid_tag = do_tags.uuid_tag_string(cluster.uuid)
        have = self._by_name([do_droplets.to_vm(d) for d in self._droplets(uuid_tag)])
        missing = [r for r in vms if r.name not in have]
        if missing:
            vpc_id = self._vpc_id(cluster)
            key = do_droplets.fingerprint(public_key)
            batches = do_droplets.batches(missing)
            with ThreadPoolExecutor(max_workers=min(self.settings.workers, len(batches))) as pool:
                outcomes = list(pool.map(lambda b: self._create(target, b, vpc_id, key), batches))
            errors = [e for e in outcomes if e is not None]
            if errors:
                raise next((e for e in errors if isinstance(e, CapacityError)), errors[0])
        names = [r.name for r in vms]

        def all_ready() -> dict[str, Vm] | None:
            now = self._by_name([do_droplets.to_vm(d) for d in self._droplets(uuid_tag)])
            ready = sum(1 for n in names if n in now and do_droplets.is_ready(now[n]))
            report(f"{ready}/{len(names)} running")
            return now if ready == len(names) else None

        ready = wait_until(all_ready, what=f"{len(names)} droplet(s) of cluster {cluster.name} to be active",
                           timeout_s=self.settings.vm_timeout_s, **self.settings.polling())
        return [ready[n] for n in names]

    def _create(self, target: CloudTarget, batch: list[VmRequest], vpc_id: str, key: str) -> CloudError | None:
        first = batch[0]
        body = {
            "names": [r.name for r in batch],
            "region": self.region,
            "size": first.size,
            "image": target.image.get("slug", "ubuntu-24-04-x64"),
            "ssh_keys": [key],
            "tags": do_droplets.droplet_tags(target.cluster.name, target.cluster.uuid, batch),
            "vpc_uuid": vpc_id,
            "user_data": first.user_data,
            "monitoring": False,
        }
        what = f"create {len(batch)} droplet(s) of size {first.size} in {self.region}"
        try:
            self.api.call(what, lambda c: c.droplets.create, body=body)
        except ApiError as exc:
            if exc.status == 422 and "limit" in exc.detail.lower():
                return CapacityError(CLOUD, f"{what}: over the account's droplet limit (region {self.region}, "
                                     f"size {first.size}): {exc.detail}")
            return exc
        except CloudError as exc:
            return exc
        return None

    @staticmethod
    def _by_name(vms: list[Vm]) -> dict[str, Vm]:
        return leaks.one_per_node(CLOUD, "droplet", vms, lambda vm: vm.name, lambda vm: vm.cloud_id)

    def list_vms(self, cluster: ClusterRef) -> list[Vm]:
        return [do_droplets.to_vm(d) for d in self._droplets(do_tags.uuid_tag_string(cluster.uuid))]

    def delete_vms(self, target: CloudTarget, names: Sequence[str]) -> None:
        uuid_tag = do_tags.uuid_tag_string(target.cluster.uuid)
        doomed = [vm for vm in self.list_vms(target.cluster) if vm.name in set(names)]
        if not doomed:
            return
        with ThreadPoolExecutor(max_workers=min(self.settings.workers, len(doomed))) as pool:
            list(pool.map(lambda vm: self._ignore_missing(
                lambda: self.api.call(f"delete droplet {vm.name}", lambda c: c.droplets.destroy, int(vm.cloud_id))
            ), doomed))
        ids = {vm.cloud_id for vm in doomed}

        def gone() -> bool:
            return not any(str(d["id"]) in ids for d in self._droplets(uuid_tag))

        wait_until(gone, what=f"droplet(s) {', '.join(vm.name for vm in doomed)} to be deleted",
                   timeout_s=self.settings.delete_timeout_s, **self.settings.polling())

    # --- ownership and teardown --------------------------------------------------------

    def find_foreign_vms(self, target: CloudTarget) -> list[Vm]:
        vpcs, droplets = gather(lambda: self._our_vpcs(target.cluster), lambda: self._droplets(None))
        return self._foreign(target.cluster, vpcs, droplets)

    @staticmethod
    def _foreign(cluster: ClusterRef, vpcs: list[dict[str, Any]], droplets: list[dict[str, Any]]) -> list[Vm]:
        ids = {v["id"] for v in vpcs}
        uuid_tag = do_tags.uuid_tag_string(cluster.uuid)
        return [
            do_droplets.to_vm(d)
            for d in droplets
            if d.get("vpc_uuid") in ids and uuid_tag not in (d.get("tags") or [])
        ]

    def list_resources(self, cluster: ClusterRef) -> list[Owned]:
        uuid_tag = do_tags.uuid_tag_string(cluster.uuid)
        vpcs, droplets, firewalls, keys, uuid_tags, balancers = gather(
            lambda: self._our_vpcs(cluster), lambda: self._droplets(uuid_tag), lambda: self._firewalls(cluster),
            lambda: self._keys(cluster), lambda: self._uuid_tags(cluster),
            lambda: do_lb.inventory(self.api, cluster))  # every lookup at once
        # One destroy-by-tag for every droplet; each is gone when the tag lists it no more.
        batch = Batch(f"droplets tagged {uuid_tag}", CLOUD, lambda: self.api.call(
            f"delete droplets tagged {uuid_tag}", lambda c: c.droplets.destroy_by_tag, tag_name=uuid_tag),
            lambda: {str(d["id"]) for d in self._droplets(uuid_tag)})
        found = [Owned("droplet", str(d["id"]), str(d["name"]), delete=batch.deleter(str(d["id"])))
                 for d in droplets if uuid_tag in (d.get("tags") or [])]
        found += [Owned("firewall", f["id"], f["name"], delete=self._deleter(f"firewall {f['name']}",
                                                                            lambda c: c.firewalls.delete, f["id"]))
                  for fs in firewalls.values() for f in fs]
        found += [Owned("ssh-key", str(k["id"]), k["name"], delete=self._deleter(
            f"ssh-key {k['name']}", lambda c: c.ssh_keys.delete, int(k["id"]))) for k in keys]
        found += balancers
        found += [Owned("vpc", str(v["id"]), str(v["name"]), {"ip_range": v.get("ip_range")},
                        after=frozenset({"droplet", "load-balancer"}), delete=self._vpc_deleter(cluster, v))
                  for v in vpcs]
        found += [Owned("tag", t, t, after=frozenset({"droplet", "firewall", "load-balancer"}),
                        delete=self._deleter(f"tag {t}", lambda c: c.tags.delete, t)) for t in uuid_tags]
        return found

    def _deleter(self, what: str, op: Callable[[Any], Callable[..., Any]], ident: Any) -> Callable[[], None]:
        return lambda: self.api.call(f"delete {what}", op, ident)

    def _vpc_deleter(self, cluster: ClusterRef, vpc: dict[str, Any]) -> Callable[[], None]:
        r = f"vpc {vpc['name']}"

        def attempt() -> None:
            self.api.call(f"delete {r}", lambda c: c.vpcs.delete, vpc["id"])

        def delete() -> None:
            with self._lock:
                self._vpc_ids.pop(cluster.uuid, None)  # found again by the next ensure_network
            try:
                attempt()
            except AuthError as exc:
                # DigitalOcean answers 403 while a VPC still has members (deleted droplets
                # linger there for a while): that is "in use", not a credentials problem.
                members = self.api.call(f"list members of {r}", lambda c: c.vpcs.list_members, vpc["id"]) or {}
                if members.get("members"):
                    raise DependencyError(CLOUD, f"{r} still has {len(members['members'])} member(s)") from exc
                attempt()  # the last member left since; a second 403 is a real refusal

        return delete

    @staticmethod
    def _ignore_missing(fn: Callable[[], Any]) -> None:
        with contextlib.suppress(NotFoundError):
            fn()


def _label(item: dict[str, Any]) -> str:
    return f"{item['name']} ({item['id']})"
