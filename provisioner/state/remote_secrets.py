"""A cluster's secrets on object storage, sealed on this machine (sealing.py) before they leave
it: each secret one object, `clusters/<name>/secrets/<secret>.<id>`, written once under a fresh
name and only then pointed at by the cluster's document (a conditional, fenced write), so a
secret is never half replaced; the object it replaced goes after. A run killed between the two
leaves an unreferenced sealed object, which the next mover sweeps (`sweep`)."""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..private_files import read_private_file, trusted_dir, write_private_file
from .objects import Conflict, ObjectStore
from .rows import StateError
from .sealing import Keyring, seal, unseal


class SealedSecrets:
    """The secrets half of RemoteStateStore (which provides what is declared here)."""

    objects: ObjectStore
    keyring: Keyring | None
    root: Path

    @property
    def location(self) -> str:
        raise NotImplementedError

    def _name_of(self, cluster_uuid: str) -> str:
        raise NotImplementedError

    def _doc_of(self, cluster_uuid: str) -> dict[str, Any]:
        raise NotImplementedError

    def _load(self, name: str) -> tuple[dict[str, Any], str] | None:
        raise NotImplementedError

    def _mutate(self, name: str, change: Callable[[dict[str, Any]], Any], *, create: bool = False) -> Any:
        raise NotImplementedError

    def _by_uuid(self, cluster_uuid: str, change: Callable[[dict[str, Any]], Any]) -> Any:
        raise NotImplementedError

    def _keyring(self) -> Keyring:
        if self.keyring is None:
            raise InputError("--state-key", f"the state in {self.location} keeps secrets sealed: name the key "
                             "(or set CAST_STATE_KEY)", "kms://alias/NAME or file://PATH")
        return self.keyring

    def write_secret(self, cluster_uuid: str, name: str, data: bytes) -> Path:
        """Seal the secret on this machine and store it; only then does the document point at it."""
        sealed = seal(self._keyring(), cluster_uuid, name, data)
        cluster = self._name_of(cluster_uuid)
        key = f"clusters/{cluster}/secrets/{name}.{uuidlib.uuid4().hex[:12]}"
        try:
            self.objects.put(key, sealed, create=True)
        except Conflict:  # botocore's retry of a put that landed, its reply lost?
            landed = self.objects.get(key)
            if landed is None or landed.data != sealed:
                raise
        old: list[str] = []

        def change(doc: dict[str, Any]) -> None:
            old[:] = [doc["secrets"].get(name, "")]
            doc["secrets"][name] = key

        self._mutate(cluster, change)
        if old and old[0] and old[0] != key:
            self.objects.delete(old[0])  # after the document stopped pointing at it
        return self._cache_dir(cluster_uuid) / name

    def read_secret(self, cluster_uuid: str, name: str) -> bytes | None:
        key = self._doc_of(cluster_uuid)["secrets"].get(name)
        if not key:
            return None
        blob = self.objects.get(key)
        if blob is None:
            raise StateError(f"{self.location}: secret {name} of {cluster_uuid} is indexed but missing")
        return unseal(self._keyring(), cluster_uuid, name, blob.data)

    def delete_secret(self, cluster_uuid: str, name: str) -> None:
        old: list[str] = []
        self._by_uuid(cluster_uuid, lambda doc: old.append(doc["secrets"].pop(name, "")))
        if old and old[0]:
            self.objects.delete(old[0])
        (self._cache_dir(cluster_uuid, create=False) / name).unlink(missing_ok=True)

    def secret_names(self, cluster_uuid: str) -> list[str]:
        return sorted(self._doc_of(cluster_uuid)["secrets"])

    def secrets_dir(self, cluster_uuid: str, *, create: bool = True) -> Path:
        """A private local directory holding the cluster's secrets, unsealed (0600 files in a
        0700 directory, like the local store's), for what needs a file (the SSH key, kubectl)."""
        path = self._cache_dir(cluster_uuid, create=True)
        if self.keyring is None and not create:
            return path  # a read-only look (e.g. `cast status`) without the key: what is already here
        names = set(self.secret_names(cluster_uuid))
        for stale in path.iterdir():
            if stale.name not in names:
                stale.unlink()
        for name in names:
            data = self.read_secret(cluster_uuid, name)
            if data is not None and read_private_file(path / name) != data:
                write_private_file(path / name, data)
        return path

    def _cache_dir(self, cluster_uuid: str, *, create: bool = True) -> Path:
        base = self.root / "cache" / hashlib.sha256(self.location.encode()).hexdigest()[:12]
        path = base / cluster_uuid
        if create:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        for directory in (self.root, self.root / "cache", base, path):
            trusted_dir(directory)
        return path

    def _drop_cache(self, cluster_uuid: str) -> None:
        path = self._cache_dir(cluster_uuid, create=False)
        if path.exists():
            for f in path.iterdir():
                f.unlink()
            path.rmdir()

    def sweep(self, cluster: str) -> list[str]:
        """Delete the cluster's sealed secrets that its document does not point at (left by a
        run killed between storing a secret and recording it). Under the lease only."""
        current = self._load(cluster)
        wanted = set(current[0]["secrets"].values()) if current else set()
        orphans = [k for k in self.objects.keys(f"clusters/{cluster}/secrets/") if k not in wanted]
        for key in orphans:
            self.objects.delete(key)
        return orphans
