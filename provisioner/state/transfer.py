"""Moving a cluster's state between two stores (`cast state push` / `pull`): the local one
and a bucket. Both stores' locks are held for the whole move; the copy is checked against
the source before the source forgets the cluster, and a move cut short (kill -9, a dropped
connection) is continued by running it again: what was copied is kept, nothing is doubled.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from ..errors import SafetyError
from .backend import StateBackend
from .rows import StateError


@dataclass(frozen=True)
class Moved:
    name: str
    uuid: str
    nodes: int
    secrets: int
    journal: int
    source: str
    target: str


def move(source: StateBackend, target: StateBackend, name: str, command: str, *, remote_first: bool) -> Moved:
    """Copy the cluster `name` from `source` to `target`, check it, then forget it in `source`.
    InputError when `source` has no such cluster; SafetyError (exit 4) when `target` holds
    another cluster of that name. `remote_first` takes the bucket's lease before the local
    lock (the team's lock decides who moves)."""
    order = (target, source) if remote_first else (source, target)
    with contextlib.ExitStack() as locks:
        for store in order:
            locks.enter_context(store.lock(name, command))
        row = source.require_cluster(name)
        there = target.cluster(name)
        if there is not None and there.uuid != row.uuid:
            raise SafetyError(f"{target.location} already holds another cluster named {name} ({there.uuid}); "
                              "nothing was moved")
        if there is None:
            target.create_cluster(row.uuid, row.name, row.region, row.spec)
        target.update_cluster(row.uuid, status=row.status, spec=row.spec)
        known = {n.name: n for n in target.nodes(row.uuid)}
        target.upsert_nodes([node for node in source.nodes(row.uuid) if known.get(node.name) != node])
        for kind, values in source.all_allocations(row.uuid).items():
            target.allocate(row.uuid, kind, values)
        by_cloud: dict[str, list[tuple[str, str, str]]] = {}
        for cloud, kind, rid, rname in source.resources(row.uuid):
            by_cloud.setdefault(cloud, []).append((kind, rid, rname))
        for cloud, resources in by_cloud.items():
            target.record_resources(row.uuid, cloud, resources)
        journal = source.journal_entries(row.uuid)
        copied = set(target.journal_entries(row.uuid))  # a move cut short copied these already
        target.append_journal(row.uuid, [e for e in journal if e not in copied])
        secrets = source.secret_names(row.uuid)
        for secret in secrets:
            data = source.read_secret(row.uuid, secret)
            if data is not None and target.read_secret(row.uuid, secret) != data:
                target.write_secret(row.uuid, secret, data)
        sweep = getattr(target, "sweep", None)
        if sweep is not None:
            sweep(name)
        _check_same(source, target, row.uuid)
        nodes = len(source.nodes(row.uuid))
        source.forget_cluster(row.uuid)
    return Moved(name, row.uuid, nodes, len(secrets), len(journal), source.location, target.location)


def _check_same(source: StateBackend, target: StateBackend, uuid: str) -> None:
    """StateError unless the target holds what the source does (before the source forgets it)."""
    problems = []
    if source.nodes(uuid) != target.nodes(uuid):
        problems.append("nodes")
    if source.all_allocations(uuid) != target.all_allocations(uuid):
        problems.append("allocations")
    if sorted(source.resources(uuid)) != sorted(target.resources(uuid)):
        problems.append("resources")
    if source.secret_names(uuid) != target.secret_names(uuid):
        problems.append("secrets")
    if not set(source.journal_entries(uuid)) <= set(target.journal_entries(uuid)):  # it may add its lease's
        problems.append("journal")
    if problems:
        raise StateError(f"the copy in {target.location} differs in {', '.join(problems)}: "
                         f"{source.location} keeps the cluster; run the move again")
