"""The cluster's DigitalOcean load balancer (balancing.LoadBalancing), through pydo (do_client).

One regional load balancer `cast-<cluster>-<shortid>` in the cluster's VPC, forwarding TCP
80 and 443 to the ingress controller's NodePorts, with an HTTP health check. It selects its
droplets by the tag `cast-lb:<uuid>` (load balancers take no tags of their own: that tag
carries the cluster's UUID and is how cast finds its balancer). cast puts the tag on exactly
the workers the plan names and takes it off the others, so the backends follow the worker set
live and a worker leaves the balancer before its droplet goes. The firewall's role tag is not
used for this: taking a worker out of the balancer must not take it out of its firewall.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import CloudError, ExcessResourcesError, NotFoundError
from ..retry import wait_until
from . import do_droplets, do_tags
from .balancing import BalancerEnsured, BalancerPlan, LoadBalancing
from .base import CloudResource, CloudTarget, ClusterRef, Owned, Vm
from .do_client import CLOUD, DoApi

MEMBER_TAG_KEY = "cast-lb"
HEALTH_INTERVAL_S = 10
HEALTH_TIMEOUT_S = 5
HEALTHY_THRESHOLD = 3
UNHEALTHY_THRESHOLD = 3


def member_tag(cluster_uuid: str) -> str:
    """The droplet tag the cluster's load balancer selects its backends by."""
    return f"{MEMBER_TAG_KEY}:{cluster_uuid}"


def balancer_name(cluster: ClusterRef) -> str:
    return f"cast-{cluster.name}-{cluster.short_id}"


def balancer_body(cluster: ClusterRef, region: str, plan: BalancerPlan, vpc_id: str | None) -> dict[str, Any]:
    """The create (and update) body for the cluster's balancer in `region`."""
    body: dict[str, Any] = {
        "name": balancer_name(cluster),
        "region": region,
        "tag": member_tag(cluster.uuid),
        "forwarding_rules": [
            {"entry_protocol": "tcp", "entry_port": f.listen, "target_protocol": "tcp", "target_port": f.node_port}
            for f in plan.forwards
        ],
        "health_check": {
            "protocol": "http", "port": plan.health_port, "path": plan.health_path,
            "check_interval_seconds": HEALTH_INTERVAL_S, "response_timeout_seconds": HEALTH_TIMEOUT_S,
            "healthy_threshold": HEALTHY_THRESHOLD, "unhealthy_threshold": UNHEALTHY_THRESHOLD,
        },
    }
    if vpc_id:
        body["vpc_uuid"] = vpc_id
    return body


def _drifted(found: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def rules(lb: dict[str, Any]) -> set[tuple[Any, ...]]:
        return {(r.get("entry_protocol"), r.get("entry_port"), r.get("target_protocol"), r.get("target_port"))
                for r in lb.get("forwarding_rules") or []}

    def health(lb: dict[str, Any]) -> tuple[Any, ...]:
        h = lb.get("health_check") or {}
        return h.get("protocol"), h.get("port"), h.get("path")

    return rules(found) != rules(wanted) or health(found) != health(wanted) or found.get("name") != wanted["name"]


def _ours(api: DoApi, cluster: ClusterRef) -> list[dict[str, Any]]:
    tag = member_tag(cluster.uuid)
    every = api.pages("list load balancers", lambda c: c.load_balancers.list, "load_balancers")
    return [lb for lb in every if lb.get("tag") == tag]


def inventory(api: DoApi, cluster: ClusterRef) -> list[Owned]:
    """The cluster's load balancers as inventory entries (the provider puts its VPC and its
    tags after the kind "load-balancer": a VPC with a balancer in it cannot be deleted)."""
    return [
        Owned("load-balancer", str(lb["id"]), str(lb.get("name")),
              delete=_deleter(api, str(lb["id"]), str(lb.get("name"))))
        for lb in _ours(api, cluster)
    ]


def _deleter(api: DoApi, lb_id: str, name: str) -> Callable[[], None]:
    return lambda: api.call(f"delete load balancer {name}", lambda c: c.load_balancers.delete, lb_id)


class Balancers(LoadBalancing):
    """The cluster's load balancer in one DigitalOcean region."""

    poll_initial_s = 2.0  # a new balancer takes a minute or two to become active
    poll_max_s = 10.0
    active_timeout_s = 600.0
    delete_timeout_s = 300.0

    def __init__(self, region: str, zone: str | None = None):
        self.region, self.zone = region, zone
        self.api = DoApi()

    # --- lookups -----------------------------------------------------------------------

    def _one(self, cluster: ClusterRef) -> dict[str, Any] | None:
        found = _ours(self.api, cluster)
        if len(found) > 1:
            raise ExcessResourcesError(CLOUD, f"cluster {cluster.name} has {len(found)} load balancers: "
                                       + ", ".join(f"{lb.get('name')} ({lb['id']})" for lb in found))
        return found[0] if found else None

    def _members(self, cluster: ClusterRef) -> list[Vm]:
        tag = member_tag(cluster.uuid)
        found = self.api.pages(f"list droplets tagged {tag}", lambda c: c.droplets.list, "droplets", tag_name=tag)
        return [do_droplets.to_vm(d) for d in found if d.get("status") not in do_droplets.GONE]

    def _vpc_id(self, cluster: ClusterRef) -> str | None:
        mark = do_tags.uuid_tag_string(cluster.uuid)
        vpcs = self.api.pages("list VPCs", lambda c: c.vpcs.list, "vpcs")
        return next((str(v["id"]) for v in vpcs if mark in str(v.get("description") or "")), None)

    @staticmethod
    def _ensured(lb: dict[str, Any] | None, members: Sequence[Vm], actions: Sequence[str] = ()) -> BalancerEnsured:
        resources = () if lb is None else (
            CloudResource("load-balancer", str(lb["id"]), str(lb.get("name")), {"ip": lb.get("ip") or None}),)
        return BalancerEnsured(resources, tuple(actions), address=(lb or {}).get("ip") or None,
                               backends=tuple(sorted(vm.name for vm in members)))

    def find_load_balancer(self, cluster: ClusterRef) -> BalancerEnsured | None:
        lb = self._one(cluster)
        return None if lb is None else self._ensured(lb, self._members(cluster))

    # --- ensure ------------------------------------------------------------------------

    def ensure_load_balancer(self, target: CloudTarget, plan: BalancerPlan, workers: Sequence[Vm], *,
                             dry_run: bool = False) -> BalancerEnsured:
        cluster = target.cluster
        tag = member_tag(cluster.uuid)
        lb, members = self._one(cluster), self._members(cluster)
        wanted = {vm.cloud_id: vm for vm in workers}
        have = {vm.cloud_id: vm for vm in members}
        joining = [vm for i, vm in wanted.items() if i not in have]
        leaving = [vm for i, vm in have.items() if i not in wanted]
        body = balancer_body(cluster, self.region, plan, self._vpc_id(cluster))
        name = body["name"]
        actions = [f"add {vm.name} to load balancer {name}" for vm in joining]
        actions += [f"take {vm.name} out of load balancer {name}" for vm in leaving]
        if lb is None:
            actions.insert(0, f"create load balancer {name} in {self.region} ("
                           + ", ".join(f"tcp {f.listen}->{f.node_port}" for f in plan.forwards)
                           + f"; health check http :{plan.health_port}{plan.health_path})")
        elif _drifted(lb, body):
            actions.insert(0, f"repair load balancer {name} (its forwarding rules or health check)")
        if dry_run:
            return self._ensured(lb, members, actions)
        if not actions and lb is not None:  # all in place; one still being made (a run killed) is waited for
            if lb.get("status") != "active" or not lb.get("ip"):
                lb = self._wait_active(str(lb["id"]), name)
            return self._ensured(lb, members)
        # Droplets can only be tagged with a tag that exists; creating one that does is a no-op.
        self.api.call(f"create tag {tag}", lambda c: c.tags.create, body={"name": tag})
        self._retag(tag, joining, add=True)
        self._retag(tag, leaving, add=False)
        if lb is None:
            lb = self.api.call(f"create load balancer {name}", lambda c: c.load_balancers.create,
                               body=body)["load_balancer"]
        elif _drifted(lb, body):
            lb = self.api.call(f"update load balancer {name}", lambda c: c.load_balancers.update,
                               lb["id"], body=body)["load_balancer"]
        lb = self._wait_active(str(lb["id"]), name)
        return self._ensured(lb, self._members(cluster), actions)

    def _retag(self, tag: str, vms: Sequence[Vm], *, add: bool) -> None:
        if not vms:
            return
        body = {"resources": [{"resource_id": vm.cloud_id, "resource_type": "droplet"} for vm in vms]}
        if add:
            self.api.call(f"tag {len(vms)} droplet(s) with {tag}", lambda c: c.tags.assign_resources, tag, body=body)
        else:
            self.api.call(f"untag {len(vms)} droplet(s) from {tag}", lambda c: c.tags.unassign_resources, tag,
                          body=body)

    def _wait_active(self, lb_id: str, name: str) -> dict[str, Any]:
        def active() -> dict[str, Any] | None:
            lb = self.api.call(f"read load balancer {name}", lambda c: c.load_balancers.get, lb_id)["load_balancer"]
            if lb.get("status") == "errored":
                raise CloudError(CLOUD, f"load balancer {name} ({lb_id}) is in state errored")
            return lb if lb.get("status") == "active" and lb.get("ip") else None

        found: dict[str, Any] = wait_until(active, what=f"load balancer {name} to be active",
                                           timeout_s=self.active_timeout_s, initial=self.poll_initial_s,
                                           maximum=self.poll_max_s)
        return found

    # --- delete ------------------------------------------------------------------------

    def delete_load_balancer(self, target: CloudTarget) -> None:
        cluster = target.cluster
        doomed = _ours(self.api, cluster)
        for lb in doomed:
            with contextlib.suppress(NotFoundError):
                _deleter(self.api, str(lb["id"]), str(lb.get("name")))()
        if doomed:
            wait_until(lambda: not _ours(self.api, cluster), what=f"the load balancer of {cluster.name} to be deleted",
                       timeout_s=self.delete_timeout_s, initial=self.poll_initial_s, maximum=self.poll_max_s)
        tag = member_tag(cluster.uuid)
        with contextlib.suppress(NotFoundError):
            self.api.call(f"delete tag {tag}", lambda c: c.tags.delete, tag)
