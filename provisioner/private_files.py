"""Files and directories only the current user may read: cast's state root, its secrets, the
user's kubeconfig, the sandbox directory. Writes are atomic and 0600 from the first byte; reads
never follow a symlink; a directory someone else owns or can write to is refused (OpenSSH's
StrictModes rule: whoever can write there could plant a file or a link cast would trust).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import CastError, LockHeldError


class UntrustedPathError(CastError):
    """A directory or file cast would trust is owned by someone else, open to others, or a
    symlink where none may be. The message names the path and the fix."""

    exit_code = 4


def trusted_dir(path: Path) -> Path:
    """Check an existing directory cast keeps secrets in, then chmod it 0700. Raises
    UntrustedPathError when it is a symlink, not a directory, owned by another user than the
    one running cast, or writable by group or others (checked before the chmod: a directory
    others could write to may hold what they planted). Returns `path`."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    if stat.S_ISLNK(info.st_mode):
        raise UntrustedPathError(f"{path} is a symlink; cast keeps secrets only in a real directory: "
                                 "point --state-dir (or CAST_HOME) at the directory itself")
    if not stat.S_ISDIR(info.st_mode):
        raise UntrustedPathError(f"{path} is not a directory")
    if info.st_uid != os.geteuid():
        raise UntrustedPathError(
            f"{path} is owned by uid {info.st_uid}, not by you (uid {os.geteuid()}): refusing to trust it; "
            "use a directory of your own (--state-dir or CAST_HOME), or chown it to yourself if it is yours"
        )
    if info.st_mode & 0o022:
        raise UntrustedPathError(
            f"{path} is writable by {'group and others' if info.st_mode & 0o002 else 'its group'} "
            f"(mode {stat.S_IMODE(info.st_mode):04o}): refusing to trust it; check nothing foreign is in it, "
            f"then `chmod 700 {path}`"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def read_private_file(path: Path) -> bytes | None:
    """The bytes of `path`, or None when it does not exist. Never follows a symlink at `path`
    (UntrustedPathError: a link in a secrets directory was planted there)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise UntrustedPathError(f"{path} is a symlink: refusing to read a secret through it; remove it") from None
        raise CastError(f"{path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        return file.read()


def write_private_file(path: Path, data: bytes) -> Path:
    """Replace `path` with `data` atomically, mode 0600 from the first byte: a new file of a
    random name beside it (mkstemp: O_EXCL, so nothing planted there is reused), fchmod 0600,
    written, fsynced, renamed over `path`, and the directory fsynced. A symlink at `path` is
    replaced by the file, never written through (callers that mean to write through resolve
    it first: see kube/user_config.py). Returns `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    sync_dir(path.parent)
    return path


def sync_dir(path: Path) -> None:
    """fsync a directory, so a rename in it survives a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist, and chmod it 0600 if it does;
    never through a symlink. (SQLite gives its -wal and -shm files the database's mode.)"""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        if os.path.islink(path):
            raise UntrustedPathError(f"{path} is a symlink: refusing to use it; remove it") from None
        raise
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


@contextlib.contextmanager
def kubectl_lock(path: Path) -> Iterator[None]:
    """Hold kubectl's own lock on a kubeconfig, `<path>.lock` (created with O_CREAT|O_EXCL as
    client-go does, removed after), so that cast and kubectl never write the file at the same
    time. Raises LockHeldError (exit 4) naming the lock file when it exists already."""
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        raise LockHeldError(
            f"{lock} exists: kubectl (or another cast) is writing {path}; run this again when it is done, "
            f"or remove {lock} if nothing is"
        ) from None
    os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
