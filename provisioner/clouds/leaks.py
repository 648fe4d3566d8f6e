"""The rule every provider applies to what it finds by the cluster's UUID: one network (or
group, or firewall per role) where one is expected, one VM per node. More is a leak (a crash
between a create and its lookup, a copy made by hand): ExcessResourcesError naming the extras,
and nothing is done until they are gone."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from ..errors import ExcessResourcesError

T = TypeVar("T")

_FIX = "a probable leak: delete the extra ones (or the whole cluster) and run again"


def at_most_one(cloud: str, what: str, found: Sequence[T], label: Callable[[T], str]) -> T | None:
    """The single item of `found`, or None when it is empty. More than one raises
    ExcessResourcesError naming each by `label`."""
    if len(found) > 1:
        names = ", ".join(sorted(label(item) for item in found))
        raise ExcessResourcesError(cloud, f"{what}: {len(found)} carry the cluster's UUID where one is expected "
                                          f"({names}); {_FIX}")
    return found[0] if found else None


def one_per_node(cloud: str, what: str, found: Iterable[T], node: Callable[[T], str | None],
                 label: Callable[[T], str]) -> dict[str, T]:
    """`found` by node name (`node`; items without one are left out). Two for one node raise
    ExcessResourcesError naming the node and each item by `label`."""
    by_node: dict[str, list[T]] = {}
    for item in found:
        name = node(item)
        if name:
            by_node.setdefault(name, []).append(item)
    twins = {name: items for name, items in by_node.items() if len(items) > 1}
    if twins:
        listed = "; ".join(f"{name}: {', '.join(sorted(label(i) for i in items))}"
                           for name, items in sorted(twins.items()))
        raise ExcessResourcesError(cloud, f"more than one {what} per node ({listed}); {_FIX}")
    return {name: items[0] for name, items in by_node.items()}
