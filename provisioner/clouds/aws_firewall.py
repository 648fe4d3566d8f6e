"""Security groups on AWS: one per role, holding exactly the plan's inbound rules. Rules are
compared as (protocol, from, to, source) tuples; missing ones are authorized and extra ones
revoked, one call each per group at most; the roles' groups are handled at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import tags
from ..errors import NotFoundError
from ..parallel import gather
from ..plan import FirewallRule
from .aws_api import CLOUD, AwsApi
from .aws_network import find_vpc
from .aws_owned import at_most_one, cluster_tags, owned, tag_specs, tags_of
from .base import CloudResource, CloudTarget, ClusterRef, Ensured

# (protocol, from port, to port, source kind, source) — kind: cidr, cidr6, group, prefix
Rule = tuple[str, int, int, str, str]
_SOURCE_LISTS = (("IpRanges", "CidrIp", "cidr"), ("Ipv6Ranges", "CidrIpv6", "cidr6"),
                 ("UserIdGroupPairs", "GroupId", "group"), ("PrefixListIds", "PrefixListId", "prefix"))


def group_name(cluster: ClusterRef, role: str) -> str:
    """The security group's name (unique within the VPC)."""
    return f"cast-{cluster.name}-{cluster.short_id}-{role}"


def wanted_rules(rules: Iterable[FirewallRule]) -> set[Rule]:
    """The plan's rules as comparable tuples."""
    out: set[Rule] = set()
    for rule in rules:
        low, high = rule.port_range
        out.update((rule.protocol, low, high, "cidr", src) for src in rule.sources)
    return out


def existing_rules(permissions: Iterable[dict[str, Any]]) -> set[Rule]:
    """A security group's IpPermissions as comparable tuples (every source kind, so that a
    rule added by hand, of any kind, shows up as extra)."""
    out: set[Rule] = set()
    for p in permissions:
        proto = str(p.get("IpProtocol"))
        low, high = int(p.get("FromPort", -1)), int(p.get("ToPort", -1))
        for list_key, value_key, kind in _SOURCE_LISTS:
            out.update((proto, low, high, kind, str(s[value_key])) for s in p.get(list_key, []))
    return out


def permissions(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """IpPermissions for authorize/revoke calls, one entry per (protocol, ports)."""
    grouped: dict[tuple[str, int, int], dict[str, Any]] = {}
    for proto, low, high, kind, value in sorted(rules):
        entry = grouped.setdefault((proto, low, high), {"IpProtocol": proto})
        if proto != "-1":
            entry.update(FromPort=low, ToPort=high)
        list_key, value_key = next((lk, vk) for lk, vk, k in _SOURCE_LISTS if k == kind)
        entry.setdefault(list_key, []).append({value_key: value})
    return list(grouped.values())


def find_groups(api: AwsApi, cluster: ClusterRef) -> dict[str, dict[str, Any]]:
    """The cluster's security groups by role; two for one role raise ExcessResourcesError."""
    items = api.describe("describe_security_groups", "SecurityGroups", Filters=owned(cluster))
    by_role: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_role.setdefault(tags_of(item).get(tags.ROLE, ""), []).append(item)
    found = {}
    for role, groups in by_role.items():
        group = at_most_one(f"security group for role {role!r}", groups, "GroupId", cluster)
        if group is not None:
            found[role] = group
    return found


def ensure_firewall(api: AwsApi, target: CloudTarget, dry_run: bool) -> Ensured:
    """A security group per role of `target.firewall` with exactly its inbound rules; the roles'
    groups are made and repaired at once."""
    cluster = target.cluster
    groups, vpc = gather(lambda: find_groups(api, cluster), lambda: find_vpc(api, cluster))

    def one(role: str) -> tuple[CloudResource | None, list[str]]:
        name = group_name(cluster, role)
        group = groups.get(role)
        want = wanted_rules(target.firewall[role])
        actions: list[str] = []
        if group is None:
            actions.append(f"create security group {name} with {len(want)} inbound rules")
            if dry_run:
                return None, actions
            if vpc is None:
                raise NotFoundError(CLOUD, f"no VPC carries cluster {cluster.uuid}: ensure "
                                           "the network before the firewall")
            group_id = api.ec2(
                "create_security_group", what=f"creating security group {name}", GroupName=name,
                Description=f"cast cluster {cluster.name}: {role} nodes", VpcId=vpc["VpcId"],
                TagSpecifications=tag_specs(["security-group"],
                                            cluster_tags(cluster, name, **{tags.ROLE: role})),
            )["GroupId"]
            group = {"GroupId": group_id, "GroupName": name, "IpPermissions": []}
        have = existing_rules(group.get("IpPermissions", []))
        missing, extra = want - have, have - want
        if missing:
            actions.append(f"{name}: add {_describe(missing)}")
            if not dry_run:
                api.ec2("authorize_security_group_ingress", what=f"adding rules to {name}",
                        GroupId=group["GroupId"], IpPermissions=permissions(missing))
        if extra:
            actions.append(f"{name}: remove {_describe(extra)}")
            if not dry_run:
                api.ec2("revoke_security_group_ingress", what=f"removing rules from {name}",
                        GroupId=group["GroupId"], IpPermissions=permissions(extra))
        return CloudResource("security-group", group["GroupId"], name, {"role": role}), actions

    done = gather(*(lambda role=role: one(role) for role in target.firewall))
    resources = tuple(r for r, _ in done if r is not None)
    return Ensured(resources=resources, actions=tuple(a for _, acts in done for a in acts))


def _describe(rules: set[Rule]) -> str:
    def one(r: Rule) -> str:
        ports = str(r[1]) if r[1] == r[2] else f"{r[1]}-{r[2]}"
        return f"{r[0]}/{ports} from {r[4]}"

    return ", ".join(one(r) for r in sorted(rules))
