"""Which state store a command uses: `--state` / CAST_STATE (`s3://bucket/prefix`, or a local
directory), else the local directory of `--state-dir` / CAST_HOME, else the user's data
directory. `--state-key` / CAST_STATE_KEY names the key that seals secrets on object storage."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from .backend import StateBackend

BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")  # S3's bucket naming rules
SCHEMES = "s3://BUCKET[/PREFIX], azblob://ACCOUNT/CONTAINER[/PREFIX] or a local directory"
ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")  # Azure storage account names
CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")


def parse_location(text: str) -> tuple[str, str, str]:
    """(scheme, bucket, prefix) of a `--state` value; scheme 'file' (bucket = the path) for a
    directory. InputError (exit 2) naming --state and the forms allowed."""
    if "://" not in text:
        return "file", text, ""
    scheme, rest = text.split("://", 1)
    if scheme == "file":
        return "file", rest, ""
    if scheme == "azblob":
        account, _, rest = rest.partition("/")
        container, _, prefix = rest.partition("/")
        if not ACCOUNT.match(account):
            raise InputError("--state", f"{account!r} is not an Azure storage account name (3-24 of a-z 0-9)", SCHEMES)
        if not CONTAINER.match(container):
            raise InputError("--state", f"{container!r} is not a blob container name (3-63 of a-z 0-9 -)", SCHEMES)
        return scheme, f"{account}/{container}", prefix.strip("/")
    if scheme != "s3":
        raise InputError("--state", f"{scheme}:// is not a state store cast knows", SCHEMES)
    bucket, _, prefix = rest.partition("/")
    if not BUCKET.match(bucket):
        raise InputError("--state", f"{bucket!r} is not an S3 bucket name (3-63 of a-z 0-9 . -)", SCHEMES)
    return scheme, bucket, prefix.strip("/")


def open_store(state: str | None, state_dir: Path, *, key: str | None = None,
               lock_wait_s: float = 0.0) -> StateBackend:
    """The store `state` names (None: the local one in `state_dir`). Opening reads and writes nothing."""
    from .sqlite import StateStore

    if not state:
        return StateStore(state_dir)
    scheme, bucket, prefix = parse_location(state)
    if scheme == "file":
        return StateStore(Path(bucket).expanduser())
    from .objects import ObjectStore
    from .remote import RemoteStateStore
    from .sealing import open_keyring

    keyring = open_keyring(key) if key else None
    objects: ObjectStore
    if scheme == "azblob":
        from .azblob import AzureBlobStore

        account, container = bucket.split("/")
        objects = AzureBlobStore(account, container, prefix)
    else:
        from .s3 import S3Store

        objects = S3Store(bucket, prefix)
    return RemoteStateStore(objects, state_dir, keyring=keyring, lock_wait_s=lock_wait_s)
