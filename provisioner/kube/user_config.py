"""The user's kubeconfig file (`$KUBECONFIG`'s first entry, else ~/.kube/config): merging a
cluster's kubeconfig into it, atomically and with mode 0600, since it holds credentials."""

from __future__ import annotations

import os
from pathlib import Path

from ..state import write_private_file
from .kubeconfig import merge_kubeconfig


def user_kubeconfig_path() -> Path:
    """Where kubectl reads by default: the first file named in $KUBECONFIG, else ~/.kube/config."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(listed[0]).expanduser() if listed else Path.home() / ".kube" / "config"


def merge_into_user_config(kubeconfig: str, context: str, path: Path | None = None) -> Path:
    """Merge `kubeconfig` into the user's file (or `path`) under `context`, replacing the
    entries of the same names and keeping every other one; return the file's path. The file
    is replaced atomically and left with mode 0600."""
    target = path or user_kubeconfig_path()
    existing = target.read_text() if target.exists() else None
    merged = merge_kubeconfig(existing, kubeconfig, context)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return write_private_file(target, merged.encode())
