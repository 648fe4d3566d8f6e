"""Each cloud's inventory (list_resources) and its teardown order, as tables: what a cluster
of one master and one worker holds by kind, what each kind is deleted after, and that the
one executor deletes them in that order and leaves nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from .backend import Backend
from .test_contract import build

# AWS: what holds a subnet, group or gateway (a load balancer and its address, when the cluster has one)
_HELD = frozenset({"instance", "volume", "network-interface", "load-balancer", "elastic-ip"})
_IN_GROUP = frozenset({"resource-group"})  # Azure: deleted with their resource group

# cloud -> kind -> (how many after a build of one master and one worker, deleted after which kinds)
TABLES: dict[str, dict[str, tuple[int, frozenset[str]]]] = {
    "aws": {
        "instance": (2, frozenset()),
        "security-group": (2, _HELD),
        "subnet": (1, _HELD),
        "internet-gateway": (1, _HELD),
        "route-table": (1, frozenset()),
        "key-pair": (1, frozenset()),
        "vpc": (1, frozenset({"security-group", "subnet", "route-table", "internet-gateway"})),
    },
    "gcp": {
        "instance": (2, frozenset()),
        "firewall": (4, frozenset()),  # per role, one per distinct set of sources
        "subnetwork": (1, frozenset({"instance"})),
        # and after the load balancer's parts, when the cluster has one (none in this build)
        "network": (1, frozenset({"instance", "firewall", "subnetwork", "forwarding-rule", "backend-service",
                                  "address", "health-check", "instance-group"})),
    },
    "azure": {
        "resource-group": (1, frozenset()),
        "vnet": (1, _IN_GROUP),
        "subnet": (1, _IN_GROUP),
        "network-security-group": (2, _IN_GROUP),
        "public-ip": (2, _IN_GROUP),
        "network-interface": (2, _IN_GROUP),
        "vm": (2, _IN_GROUP),
    },
    "digitalocean": {
        "droplet": (2, frozenset()),
        "firewall": (2, frozenset()),
        "ssh-key": (1, frozenset()),
        "vpc": (1, frozenset({"droplet", "load-balancer"})),
        "tag": (3, frozenset({"droplet", "firewall", "load-balancer"})),  # the UUID's, and one per role's firewall
    },
}


def test_the_inventory_is_the_table_and_teardown_follows_its_order(backend: Backend) -> None:
    if backend.name not in TABLES:
        pytest.skip(f"no inventory table for {backend.name}: add one to TABLES")
    table = TABLES[backend.name]
    p = backend.provider()
    target, _, _ = build(backend, p, backend.target("inv"), masters=1, workers=1)

    inventory = p.list_resources(target.cluster)

    assert Counter(r.kind for r in inventory) == {kind: count for kind, (count, _) in table.items()}
    assert {r.kind: r.after for r in inventory} == {kind: after for kind, (_, after) in table.items()}
    assert len({r.key for r in inventory}) == len(inventory)

    gone = p.delete_resources(target.cluster)

    assert sorted(gone) == sorted(r.key for r in inventory)
    position = {key: i for i, key in enumerate(gone)}
    for r in inventory:
        for before in (o for o in inventory if o.kind in r.after):
            assert position[before.key] < position[r.key], f"{r.key} went before {before.key}"
    assert p.list_resources(target.cluster) == []
