"""The user's kubeconfig file (`$KUBECONFIG`'s first entry, else ~/.kube/config): merging a
cluster's kubeconfig into it, atomically and with mode 0600, since it holds credentials."""

from __future__ import annotations

import os
from pathlib import Path

from ..private_files import UntrustedPathError, kubectl_lock, write_private_file
from .kubeconfig import merge_kubeconfig


def user_kubeconfig_path() -> Path:
    """Where kubectl reads by default: the first file named in $KUBECONFIG, else ~/.kube/config."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(listed[0]).expanduser() if listed else Path.home() / ".kube" / "config"


def _write_target(path: Path) -> Path:
    """The file a write to `path` lands in. A symlink (e.g. into a dotfiles checkout) is written
    through to its final target, kept a symlink, but only when that target is a regular file
    owned by the user (or, when it does not exist yet, its directory is): otherwise
    UntrustedPathError, since the credentials would go to a file someone else controls."""
    if not path.is_symlink():
        return path
    real = Path(os.path.realpath(path))
    owner_of = real if real.exists() else real.parent
    try:
        info = owner_of.stat()
    except FileNotFoundError:
        raise UntrustedPathError(f"{path} is a symlink to {real}, whose directory does not exist") from None
    if info.st_uid != os.geteuid() or (real.exists() and not real.is_file()):
        raise UntrustedPathError(
            f"{path} is a symlink to {real}, which is not a file of yours (owner uid {info.st_uid}): refusing to "
            "write credentials there; replace the link by a file, or name another file in $KUBECONFIG"
        )
    return real


def merge_into_user_config(kubeconfig: str, context: str, path: Path | None = None) -> Path:
    """Merge `kubeconfig` into the user's file (or `path`) under `context`, replacing the
    entries of the same names and keeping every other one; return the file's path. Holds
    kubectl's `<file>.lock` while it reads and writes (LockHeldError, exit 4, when kubectl or
    another cast holds it). The file is replaced atomically and left with mode 0600; a symlink
    is written through to its target when that is the user's own file (see _write_target)."""
    target = path or user_kubeconfig_path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with kubectl_lock(target):
        real = _write_target(target)
        existing = real.read_text() if real.exists() else None
        merged = merge_kubeconfig(existing, kubeconfig, context)
        write_private_file(real, merged.encode())
    return target
