"""The cluster's DNS records, on any provider (clouds.balancing.DnsZone), owned the way
external-dns owns them: records take no tags, so beside the A record set at the domain cast
keeps a TXT value naming the cluster's UUID. cast never changes or deletes a record set at a
name without its own owner value there; a name another owner holds, or that holds an A record
with no owner, is refused (exit 4) before anything is changed. Other TXT values at the name
(an SPF record, say) are kept as they are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .clouds.balancing import DnsZone, RecordSet
from .errors import SafetyError

OWNER_PREFIX = "heritage="  # what marks an owner record, cast's or another tool's (external-dns)
TTL = 60
CLAIMS = ("A", "AAAA", "CNAME")  # record types that make a name someone's


class RecordOwnedError(SafetyError):
    """The domain's records belong to something else: nothing was changed. Exit code 4."""


def owner_value(cluster_uuid: str) -> str:
    """The TXT value that says the cluster owns the name."""
    return f"heritage=cast,cast/owner={cluster_uuid}"


def wanted_records(domain: str, cluster_uuid: str, addresses: Iterable[str]) -> tuple[RecordSet, ...]:
    """The A record set of the load balancers' addresses (none while there is none) and the
    TXT owner record, at `domain`."""
    values = tuple(sorted(set(addresses)))
    a = (RecordSet(domain, "A", values, TTL),) if values else ()
    return (*a, RecordSet(domain, "TXT", (owner_value(cluster_uuid),), TTL))


def refuse_foreign(sets: Sequence[RecordSet], domain: str, cluster_uuid: str | None) -> bool:
    """True when the cluster owns `domain` already, False when the name is free for it. Raises
    RecordOwnedError when another owner record is there, or an address record with no owner
    record of this cluster's. `cluster_uuid` None: a cluster not made yet, which owns nothing."""
    txt = [v for s in sets if s.type == "TXT" for v in s.values]
    ours = cluster_uuid is not None and owner_value(cluster_uuid) in txt
    if ours:
        return True
    others = [v for v in txt if v.startswith(OWNER_PREFIX)]
    if others:
        raise RecordOwnedError(f"DNS name {domain} is owned by another owner ({others[0]!r}): cast changes only "
                               "records it owns; nothing was changed. Pick another --ingress-domain or remove "
                               "that owner's records.")
    claimed = [s.type for s in sets if s.type in CLAIMS]
    if claimed:
        raise RecordOwnedError(f"DNS name {domain} holds a {claimed[0]} record set with no owner record of this "
                               "cluster: cast changes only records it owns; nothing was changed. Pick another "
                               "--ingress-domain or delete that record set.")
    return False


def check_records(zone: DnsZone, domain: str, cluster_uuid: str | None) -> None:
    """Read-only: raise RecordOwnedError when the cluster may not own `domain` (see refuse_foreign)."""
    refuse_foreign(zone.record_sets(domain), domain, cluster_uuid)


def ensure_records(zone: DnsZone, domain: str, cluster_uuid: str, addresses: Iterable[str], *,
                   dry_run: bool = False) -> list[str]:
    """Make the records at `domain` the cluster's A set of `addresses` and its owner record,
    after the ownership check (RecordOwnedError: nothing changed). The owner record is written
    first, so a run stopped between the two leaves a name cast still owns. Returns what was
    (or, with dry_run, would be) done."""
    sets = zone.record_sets(domain)
    refuse_foreign(sets, domain, cluster_uuid)
    a_wanted, txt_owner = _split(wanted_records(domain, cluster_uuid, addresses))
    actions: list[str] = []
    txt = next((s for s in sets if s.type == "TXT"), None)
    if txt is None or txt_owner.values[0] not in txt.values:
        kept = tuple(v for v in (txt.values if txt else ()) if v != txt_owner.values[0])
        record = RecordSet(domain, "TXT", (*kept, *txt_owner.values), txt.ttl if txt else TTL)
        actions.append(f"TXT {domain} {txt_owner.values[0]}")
        if not dry_run:
            zone.upsert(record)
    a = next((s for s in sets if s.type == "A"), None)
    if a_wanted is not None and (a is None or sorted(a.values) != list(a_wanted.values) or a.ttl != a_wanted.ttl):
        actions.append(f"A {domain} {' '.join(a_wanted.values)}")
        if not dry_run:
            zone.upsert(a_wanted)
    elif a_wanted is None and a is not None:
        actions.append(f"delete A {domain}: no load balancer left")
        if not dry_run:
            zone.delete(a)
    return actions


def delete_records(zone: DnsZone, domain: str, cluster_uuid: str) -> list[str]:
    """Delete the cluster's records at `domain`: the A set, then its owner value (other TXT
    values stay). Nothing when the cluster owns no record there (another owner's stay).
    Returns what was done."""
    sets = zone.record_sets(domain)
    owner = owner_value(cluster_uuid)
    txt = next((s for s in sets if s.type == "TXT" and owner in s.values), None)
    if txt is None:
        return []
    actions = []
    a = next((s for s in sets if s.type == "A"), None)
    if a is not None:
        zone.delete(a)
        actions.append(f"deleted A {domain}")
    kept = tuple(v for v in txt.values if v != owner)
    if kept:
        zone.upsert(RecordSet(domain, "TXT", kept, txt.ttl))
    else:
        zone.delete(txt)
    actions.append(f"deleted TXT {domain} {owner}")
    return actions


def describe(records: Iterable[RecordSet]) -> list[str]:
    """Record sets as zone-file lines, for the user to create where cast has no DNS provider."""
    lines = []
    for r in records:
        for v in r.values:
            lines.append(f"{r.name}. {r.ttl} IN {r.type} " + (f'"{v}"' if r.type == "TXT" else v))
    return lines


def _split(records: Sequence[RecordSet]) -> tuple[RecordSet | None, RecordSet]:
    a = next((r for r in records if r.type == "A"), None)
    txt = next(r for r in records if r.type == "TXT")
    return a, txt
