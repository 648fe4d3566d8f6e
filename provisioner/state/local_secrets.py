"""A cluster's secrets in the local store: files of mode 0600 under `<root>/secrets/<uuid>/`,
every directory on the way checked like the root (private_files)."""

from __future__ import annotations

from pathlib import Path

from ..private_files import read_private_file, trusted_dir, write_private_file


class LocalSecrets:
    """The secrets half of the SQLite StateStore."""

    root: Path

    def secrets_dir(self, cluster_uuid: str, *, create: bool = True) -> Path:
        """The directory of a cluster's secrets (0700, as are its parents up to the root, each
        checked like the root: UntrustedPathError when someone else owns or can write to it)."""
        path = self.root / "secrets" / cluster_uuid
        if create:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        for directory in (self.root, path.parent, path):
            trusted_dir(directory)
        return path

    def write_secret(self, cluster_uuid: str, name: str, data: bytes) -> Path:
        """Write a secret file with mode 0600, atomically (never readable by others, even briefly)."""
        return write_private_file(self.secrets_dir(cluster_uuid) / name, data)

    def read_secret(self, cluster_uuid: str, name: str) -> bytes | None:
        """A secret's bytes, None when there is none; a symlink in its place is never followed
        (UntrustedPathError)."""
        return read_private_file(self.secrets_dir(cluster_uuid, create=False) / name)

    def delete_secret(self, cluster_uuid: str, name: str) -> None:
        """Forget one secret (nothing happens when there is none)."""
        (self.secrets_dir(cluster_uuid, create=False) / name).unlink(missing_ok=True)

    def secret_names(self, cluster_uuid: str) -> list[str]:
        """The names of a cluster's secrets, sorted."""
        path = self.secrets_dir(cluster_uuid, create=False)
        return sorted(f.name for f in path.iterdir() if f.is_file()) if path.exists() else []
