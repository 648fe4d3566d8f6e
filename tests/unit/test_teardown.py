"""The cloud-blind teardown executor (provisioner/teardown.py): order, retries, the stall
budget, the inventory's graph of kinds, and a group deleted by one call."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from provisioner.clouds.base import Owned
from provisioner.errors import AuthError, CastError, CloudError, DependencyError, NotFoundError, TransientError
from provisioner.teardown import Batch, Deletable, delete_in_passes, delete_inventory, graph


@dataclass
class Cloud:
    """A pretend cloud: what exists, what refuses while something else exists, every call."""

    exists: set[str]
    blocked_by: dict[str, set[str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deleter(self, key: str) -> Callable[[], None]:
        def delete() -> None:
            with self.lock:
                self.calls.append(key)
                if key not in self.exists:
                    raise NotFoundError("test", f"{key} is gone")
                if self.blocked_by.get(key, set()) & self.exists:
                    raise DependencyError("test", f"{key} is in use")
                self.exists.discard(key)

        return delete


def test_items_go_after_what_they_name_and_in_parallel_otherwise() -> None:
    cloud = Cloud({"vm a", "vm b", "subnet", "network"})
    items = [
        Deletable("network", cloud.deleter("network"), frozenset({"subnet", "vm a", "vm b"})),
        Deletable("subnet", cloud.deleter("subnet"), frozenset({"vm a", "vm b"})),
        Deletable("vm a", cloud.deleter("vm a")),
        Deletable("vm b", cloud.deleter("vm b")),
    ]

    done = delete_in_passes("test", items, stall_budget_s=5)

    assert sorted(done[:2]) == ["vm a", "vm b"] and done[2:] == ["subnet", "network"]
    assert cloud.exists == set()
    assert sorted(cloud.calls) == sorted(["vm a", "vm b", "subnet", "network"])  # each asked once


def test_an_item_goes_as_soon_as_what_it_names_is_gone_not_after_a_slow_neighbour() -> None:
    went: list[str] = []

    def slow() -> None:
        time.sleep(0.5)  # a load balancer's delete that waits until it is gone
        went.append("slow")

    items = [Deletable("slow", slow), Deletable("vm", lambda: went.append("vm")),
             Deletable("subnet", lambda: went.append("subnet"), frozenset({"vm"}))]

    assert delete_in_passes("test", items, stall_budget_s=5)[-1] == "slow"
    assert went == ["vm", "subnet", "slow"]


def test_already_gone_counts_as_done() -> None:
    cloud = Cloud({"network"})
    items = [Deletable("subnet", cloud.deleter("subnet")),
             Deletable("network", cloud.deleter("network"), frozenset({"subnet"}))]

    assert delete_in_passes("test", items, stall_budget_s=5) == ["subnet", "network"]


def test_in_use_is_retried_until_it_can_go() -> None:
    # A VM the inventory does not know of holds the subnet for a while, then goes.
    cloud = Cloud({"subnet", "stranger"}, blocked_by={"subnet": {"stranger"}})
    timer = threading.Timer(0.3, lambda: cloud.exists.discard("stranger"))
    timer.start()
    try:
        assert delete_in_passes("test", [Deletable("subnet", cloud.deleter("subnet"))], stall_budget_s=5) == ["subnet"]
    finally:
        timer.cancel()
    assert cloud.calls.count("subnet") >= 2


def test_transient_errors_are_retried() -> None:
    failures = [TransientError("test", "throttled"), TransientError("test", "throttled")]

    def flaky() -> None:
        if failures:
            raise failures.pop()

    assert delete_in_passes("test", [Deletable("vpc", flaky)], stall_budget_s=5) == ["vpc"]
    assert failures == []


def test_no_progress_within_the_budget_names_what_is_left() -> None:
    cloud = Cloud({"subnet", "network", "stranger", "key"}, blocked_by={"subnet": {"stranger"}})
    items = [Deletable("subnet", cloud.deleter("subnet")),
             Deletable("network", cloud.deleter("network"), frozenset({"subnet"})),
             Deletable("key", cloud.deleter("key"))]

    with pytest.raises(CloudError) as stalled:
        delete_in_passes("test", items, stall_budget_s=0.3)

    message = str(stalled.value)
    assert "no progress" in message and "network, subnet" in message and "key" not in message
    assert cloud.exists == {"subnet", "network", "stranger"}  # what could go went; nothing else was tried
    assert "network" not in cloud.calls


def test_any_other_error_stops_the_teardown() -> None:
    def refused() -> None:
        raise AuthError("test", "not allowed")

    with pytest.raises(AuthError):
        delete_in_passes("test", [Deletable("vpc", refused)], stall_budget_s=5)


def test_an_inventory_waits_by_kind() -> None:
    items = [Owned("network", "n1", after=frozenset({"subnet", "instance", "load-balancer"})),
             Owned("subnet", "s1", after=frozenset({"instance"})),
             Owned("instance", "i1", "demo-m1"), Owned("instance", "i2", "demo-w1")]

    waits = {d.key: d.after for d in graph(items)}

    assert waits == {
        "network n1": {"subnet s1", "instance demo-m1 (i1)", "instance demo-w1 (i2)"},  # no load balancer: no wait
        "subnet s1": {"instance demo-m1 (i1)", "instance demo-w1 (i2)"},
        "instance demo-m1 (i1)": frozenset(),
        "instance demo-w1 (i2)": frozenset(),
    }


def test_an_inventory_takes_extra_kinds_without_changing_the_others() -> None:
    cloud = Cloud({"network n1", "load-balancer lb1", "instance i1"},
                  blocked_by={"network n1": {"load-balancer lb1", "instance i1"}})
    items = [Owned(k, i, delete=cloud.deleter(f"{k} {i}"), after=frozenset(a))
             for k, i, a in (("network", "n1", {"instance", "load-balancer"}), ("instance", "i1", ()),
                             ("load-balancer", "lb1", {"instance"}))]

    assert delete_inventory("test", items, stall_budget_s=5) == ["instance i1", "load-balancer lb1", "network n1"]
    assert cloud.calls == ["instance i1", "load-balancer lb1", "network n1"]  # nothing refused: order was right


def test_a_batch_makes_one_call_for_its_whole_group() -> None:
    started: list[str] = []
    there = {"1", "2", "3"}
    listings: list[int] = []

    def start() -> None:
        started.append("destroy by tag")

    def left() -> set[str]:
        listings.append(1)
        gone = there.pop() if there else None
        return set(there) if gone else set()

    batch = Batch("droplets tagged x", "test", start, left, fresh_s=0.0)
    items = [Owned("droplet", i, delete=batch.deleter(i)) for i in ("1", "2", "3")]
    items.append(Owned("vpc", "v", after=frozenset({"droplet"}), delete=lambda: None))

    done = delete_inventory("test", items, stall_budget_s=5)

    assert started == ["destroy by tag"]
    assert sorted(done[:3]) == ["droplet 1", "droplet 2", "droplet 3"] and done[3] == "vpc v"


def test_a_batch_whose_call_failed_calls_again() -> None:
    attempts: list[int] = []

    def start() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise TransientError("test", "throttled")

    batch = Batch("instances", "test", start)
    items = [Owned("instance", i, delete=batch.deleter(i)) for i in ("a", "b")]

    assert sorted(delete_inventory("test", items, stall_budget_s=5)) == ["instance a", "instance b"]
    assert len(attempts) == 2


def test_the_members_of_a_batch_share_one_listing_per_pass() -> None:
    listings: list[int] = []

    def left() -> set[str]:
        listings.append(1)
        time.sleep(0.1)  # a listing takes longer than the batch's freshness window
        return set() if len(listings) > 1 else {"1", "2", "3", "4"}

    batch = Batch("droplets tagged x", "test", lambda: None, left)
    items = [Owned("droplet", i, delete=batch.deleter(i)) for i in ("1", "2", "3", "4")]

    assert len(delete_inventory("test", items, stall_budget_s=5)) == 4
    assert len(listings) == 2  # one pass that found them all still there, one that found them gone


def test_an_entry_listed_without_a_deleter_stops_with_a_clear_error() -> None:
    with pytest.raises(CastError, match="without a deleter"):
        delete_inventory("test", [Owned("load-balancer", "lb1")], stall_budget_s=5)
