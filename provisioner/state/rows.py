"""What a state store holds, whichever backend keeps it: the rows of a cluster and its nodes,
the holder of a cluster's lock, and the store's own error."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CastError


class StateError(CastError):
    """The state store cannot be used (newer schema, unreadable file)."""


def default_state_dir() -> Path:
    """$CAST_HOME, else the user's data directory (platformdirs)."""
    env = os.environ.get("CAST_HOME")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("cast", appauthor=False))


@dataclass(frozen=True)
class ClusterRow:
    uuid: str
    name: str
    region: str
    spec: dict[str, Any]
    status: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class NodeRow:
    cluster_uuid: str
    name: str
    cloud: str
    role: str
    mesh_ip: str
    size: str
    status: str
    cloud_id: str | None
    public_ip: str | None
    private_ip: str | None
    host_key: str
    wg_public_key: str | None


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    proc_start: str
    command: str
    started_at: float
    user: str = ""  # named by the object-storage lease (the SQLite lock is this user's anyway)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        who = f"{self.user}@{self.host}" if self.user else self.host
        return f"pid {self.pid} on {who} ({self.command}, since {when})"


@dataclass(frozen=True)
class JournalEntry:
    """One journal line: a step of a cloud (or of the cluster) began, ended, failed or was skipped."""

    cloud: str
    step: str
    phase: str
    detail: str
    at: float


