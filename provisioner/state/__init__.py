"""The state store: where cast keeps each cluster's journal, resource cache and secrets.

The default is SQLite in a local directory (sqlite.py); a team shares one on object storage
(remote.py over s3.py), chosen by `--state s3://bucket/prefix` or CAST_STATE. Both keep the
contract of backend.py. `open_store` picks one from what the user named.
"""

from __future__ import annotations

from .backend import StateBackend
from .location import open_store, parse_location
from .rows import ClusterRow, JournalEntry, LockHolder, NodeRow, StateError, default_state_dir
from .sqlite import SCHEMA_VERSION, StateStore, write_private_file

__all__ = ["StateStore", "StateBackend", "StateError", "ClusterRow", "NodeRow", "LockHolder", "JournalEntry",
           "SCHEMA_VERSION", "default_state_dir", "open_store", "parse_location", "write_private_file"]
