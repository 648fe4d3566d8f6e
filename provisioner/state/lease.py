"""A cluster's lease on object storage: the lock that cannot go stale and cannot be stolen unsafely.

The lease is one object, `clusters/<name>/lease.json`, naming its holder (user, host, pid,
command, start time), its fencing token and its expiry. Every change of it is a conditional
write, so two runs never both believe they hold it:

  take     no lease object: create it (If-None-Match: *), token = last token + 1;
           a released lease: rewrite it (If-Match its version), token + 1
  renew    every ttl/3, in a background thread: rewrite it (If-Match its version)
  take over only when its version has not changed for a whole ttl on the taker's own clock
           (no trust in another machine's clock), or its holder's expiry is a ttl past:
           rewrite it (If-Match the version seen), token + 1
  release  rewrite it as released (If-Match its version), keeping the token

A renewal refused (someone took it over) marks the lease lost: the store then refuses every
write of this run (LeaseLostError, exit 4). The token also goes into every state write (see
remote.py), so a paused holder that wakes after a take-over is refused even before its
renewal thread notices.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import LockHeldError
from ..processes import process_start
from .objects import Conflict, ObjectStore, StoreUnavailable
from .rows import LockHolder

DEFAULT_TTL_S = 60.0
POLL_S = 0.5  # how often a waiting run looks at a live lease again
# Each lease version this process saw, and when (its own clock): a lease unchanged for a ttl is
# dead, across attempts too (the reconcile service tries again every pass).
_SEEN: dict[tuple[str, str], tuple[str, float]] = {}


class LeaseLostError(LockHeldError):
    """This run's lease was taken over by another run: its writes are refused (exit 4)."""


def lease_ttl() -> float:
    """The lease duration: CAST_LEASE_TTL seconds, else 60."""
    try:
        return max(1.0, float(os.environ.get("CAST_LEASE_TTL", DEFAULT_TTL_S)))
    except ValueError:
        return DEFAULT_TTL_S


def lease_key(cluster: str) -> str:
    return f"clusters/{cluster}/lease.json"


def me(command: str) -> LockHolder:
    """This process as a lease holder."""
    pid = os.getpid()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.geteuid())
    return LockHolder(pid, socket.gethostname(), process_start(pid), command, time.time(), user)


def holder_of(doc: dict[str, Any]) -> LockHolder:
    h = doc.get("holder") or {}
    return LockHolder(int(h.get("pid", 0)), str(h.get("host", "?")), str(h.get("proc_start", "")),
                      str(h.get("command", "?")), float(h.get("started_at", 0)), str(h.get("user", "")))


@dataclass
class Lease:
    """A lease this process holds (until released or lost)."""

    store: ObjectStore
    cluster: str
    token: int
    version: str
    doc: dict[str, Any]
    taken_from: LockHolder | None = None  # whose expired lease this one took over
    lost: str | None = None  # why it is no longer ours, once it is not
    _stop: threading.Event = field(default_factory=threading.Event)
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    @property
    def ttl(self) -> float:
        return float(self.doc["ttl"])

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.cluster}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except Conflict:
                current = read(self.store, self.cluster)
                by = holder_of(current[0]).describe() if current else "nobody (deleted)"
                self.lost = f"the lease was taken over by {by}"
                return
            except StoreUnavailable:
                if time.time() > float(self.doc["expires_at"]):
                    self.lost = "the lease could not be renewed before it expired"
                    return

    def renew(self) -> None:
        """Extend the lease by one ttl (If-Match its version). Conflict when it is not ours."""
        with self._mutex:
            now = time.time()
            doc = {**self.doc, "renewed_at": now, "expires_at": now + self.ttl, "renewals": self.doc["renewals"] + 1}
            self.version = _put_confirmed(self.store, self.cluster, doc, replaces=self.version)
            self.doc = doc

    def release(self) -> bool:
        """Stop renewing and mark the lease released (the token stays, for the next holder
        to count from). False when it was no longer ours or the store did not answer (then it
        simply expires)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost:
            return False
        with self._mutex:
            doc = {**self.doc, "released": True, "released_at": time.time(), "renewals": self.doc["renewals"] + 1}
            try:
                self.version = _put_confirmed(self.store, self.cluster, doc, replaces=self.version)
            except (Conflict, StoreUnavailable):
                return False
        return True


def read(store: ObjectStore, cluster: str) -> tuple[dict[str, Any], str] | None:
    """The lease document of `cluster` and its version, or None."""
    blob = store.get(lease_key(cluster))
    return (json.loads(blob.data), blob.version) if blob else None


def _put_confirmed(store: ObjectStore, cluster: str, doc: dict[str, Any], *, replaces: str | None) -> str:
    """Write the lease conditionally. A Conflict may be the answer to botocore's retry of a
    write that landed but whose reply was lost: then the object holds exactly `doc`."""
    data = json.dumps(doc, sort_keys=True).encode()
    try:
        return store.put(lease_key(cluster), data, replaces=replaces, create=replaces is None)
    except (Conflict, StoreUnavailable):
        current = store.get(lease_key(cluster))
        if current is not None and current.data == data:
            return current.version
        raise


def state_of(doc: dict[str, Any], now: float) -> str:
    """'released', 'expired' (by its holder's clock) or 'live'."""
    if doc.get("released"):
        return "released"
    return "expired" if now > float(doc.get("expires_at", 0)) else "live"


def describe(doc: dict[str, Any], now: float) -> str:
    """Who holds a lease and until when, for messages."""
    holder = holder_of(doc).describe()
    left = float(doc.get("expires_at", 0)) - now
    when = f"expires in {left:.0f} s" if left >= 0 else f"expired {-left:.0f} s ago"
    return f"{holder}, token {doc.get('token')}, lease {when}"


def acquire(store: ObjectStore, cluster: str, command: str, *, wait_s: float = 0.0,
            last_token: Callable[[], int] = lambda: 0, ttl: float | None = None) -> Lease:
    """Take the lease of `cluster`, waiting up to `wait_s` for a live one to be released or
    to expire; LockHeldError (exit 4) naming the holder when it is still live after that.
    `last_token` says the highest token the cluster's state has seen (a lease object may
    have been deleted by hand: the token must grow all the same)."""
    ttl = ttl or lease_ttl()
    holder = me(command)
    nonce = uuid.uuid4().hex
    deadline = time.monotonic() + wait_s
    while True:
        current = read(store, cluster)
        now = time.time()
        taken_from = None
        if current is not None:
            doc, version = current
            seen = _SEEN.get((store.url, cluster))
            if seen is None or seen[0] != version:
                seen = _SEEN[(store.url, cluster)] = (version, time.monotonic())
            status = state_of(doc, now)
            unchanged_for = time.monotonic() - seen[1]
            dead = status == "expired" and (unchanged_for >= float(doc.get("ttl", ttl))
                                            or now > float(doc["expires_at"]) + float(doc.get("ttl", ttl)))
            if status != "released" and not dead:
                if time.monotonic() >= deadline:
                    hint = "wait for it to finish" if status == "live" else (
                        f"its holder looks dead: cast takes it over once unrenewed for {doc.get('ttl', ttl):g} s"
                        " (--lock-wait), or see `cast state unlock`")
                    raise LockHeldError(f"cluster {cluster!r} is locked by {describe(doc, now)}; {hint}")
                time.sleep(min(POLL_S, ttl / 4))
                continue
            if status != "released":
                taken_from = holder_of(doc)
            token = max(int(doc.get("token", 0)), last_token()) + 1
        else:
            version, token = "", last_token() + 1
        mine = {"holder": holder.__dict__, "token": token, "ttl": ttl, "nonce": nonce, "renewals": 0,
                "renewed_at": now, "expires_at": now + ttl, "released": False}
        try:
            new_version = _put_confirmed(store, cluster, mine, replaces=version or None)
        except Conflict:
            continue  # someone else was quicker: look again
        lease = Lease(store, cluster, token, new_version, mine, taken_from)
        lease.start_renewing()
        return lease


def break_lease(store: ObjectStore, cluster: str, *, force: bool) -> tuple[dict[str, Any] | None, str]:
    """For `cast state unlock`: mark the lease released with a new token, so that its holder,
    should it still run, is refused its next write. Refuses (LockHeldError) a live lease
    unless `force`. Returns (the lease as it was, or None, and its state before)."""
    current = read(store, cluster)
    if current is None:
        return None, "none"
    doc, version = current
    status = state_of(doc, time.time())
    if status == "released":
        return doc, status
    if status == "live" and not force:
        raise LockHeldError(f"cluster {cluster!r} is locked by {describe(doc, time.time())}: "
                            "refusing to unlock a live lease (--force breaks it; its holder's writes are then refused)")
    broken = {**doc, "released": True, "released_at": time.time(), "token": int(doc.get("token", 0)) + 1,
              "broken_by": me("state unlock").__dict__}
    _put_confirmed(store, cluster, broken, replaces=version)
    return doc, status
