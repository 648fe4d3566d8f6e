"""The little that cast needs of an object store, and nothing else: whole-object reads and
conditional writes. One module per service implements it (s3.py; GCS with generation
preconditions and Azure Blob with ETag conditions would each be one more), and everything
above it (the lease, the cluster documents, sealed secrets) is written once against it.

A version is the store's token for one write of an object (S3 and Azure: the ETag; GCS: the
generation). Every write names the version it replaces, or that there must be none, so that
two writers never both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..errors import CastError


class Conflict(CastError):
    """A conditional write or delete was refused: the object is not at the version named
    (someone else wrote it), or it exists when it must not."""


class StoreUnavailable(CastError):
    """The object store could not be reached or kept failing after the SDK's retries; the
    message names the bucket and what to check. Nothing was half written: every write is of a
    whole object."""


@dataclass(frozen=True)
class Blob:
    """An object's bytes and its version."""

    data: bytes
    version: str


class ObjectStore(Protocol):
    """Objects under one bucket and prefix. Keys are relative to the prefix."""

    @property
    def url(self) -> str:
        """`s3://bucket/prefix` (or gs://, azblob://): where this store is."""
        ...

    def get(self, key: str, *, unless: str | None = None) -> Blob | None:
        """The object at `key`, None when there is none. With `unless` (a version) and the
        object still at that version, returns a Blob with empty data and that version without
        sending the object (HTTP 304)."""
        ...

    def put(self, key: str, data: bytes, *, replaces: str | None = None, create: bool = False) -> str:
        """Write the whole object and return its new version. `create`: only if there is no
        object at `key` (If-None-Match: *); `replaces`: only if the object is at that version
        (If-Match). Conflict when the condition fails; StoreUnavailable when the store does not
        answer. A write whose answer was lost may have happened: callers re-read to find out."""
        ...

    def delete(self, key: str, *, replaces: str | None = None) -> None:
        """Delete the object (only if at version `replaces`, when given). Missing counts as done."""
        ...

    def keys(self, prefix: str = "") -> list[str]:
        """Every key under `prefix`, sorted."""
        ...
