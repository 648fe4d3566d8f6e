"""The command log: one file per command that touches a cloud or a node, to attach to a bug report.

`<state root>/logs/<cluster>/<UTC time>-<command>.log`, mode 0600 in 0700 directories, the newest
KEEP per cluster kept. The file is opened on its first record (a command refused before it did
anything leaves nothing behind) and removed again when the command ends with bad input (exit 2),
so such a command creates and changes no file. With --verbose the same lines go to stderr.

One line per record, each with its UTC time: a cloud API call (cloud, operation, HTTP status,
duration, the cloud's request id), an SSH command (node, purpose, exit status, duration), a
retry (what, why, the wait), the engine's progress lines and the error a command ended with.
Callers log only what is safe (never a header, a body, a query string, a command's input or
output); `Redact` is a second line of defence, not the first. This module imports no SDK: the
hooks that feed it live with each cloud (clouds/api_log.py) and in nodes/ssh.py and retry.py.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import time
from pathlib import Path
from typing import TextIO

LOGGER = "cast.command"  # the records of the running command; children name the kind of record
KEEP = 20  # log files kept per cluster
FILE_MODE = 0o600
DIR_MODE = 0o700

_root = logging.getLogger(LOGGER)
_root.addHandler(logging.NullHandler())  # no handler attached: records go nowhere, not to stderr
_root.propagate = False


# --- redaction: the second line of defence --------------------------------------------------

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*-----.*?(-----END [A-Z0-9 ]*-----|\Z)", re.S)
_SECRET_AFTER = re.compile(
    r"(?i)([\w-]*(?:authorization|private[_-]?key|token|certificate[_-]?key|password|secret)[\w-]*)"
    r"(\"?\s*[:=]\s*\"?|\s+(?=bearer\b|basic\b))(bearer\s+|basic\s+)?[^\s,;'\"]+"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_FLAG = re.compile(r"(--(?:token|certificate-key|discovery-token)[= ])\S+")
_WG_KEY = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=(?![A-Za-z0-9+/=])")
_BOOTSTRAP_TOKEN = re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b")
_QUERY = re.compile(r"(\bhttps?://[^\s?#]+)\?(?!\[query left out\])[^\s#]*")


def redact(text: str) -> str:
    """`text` with PEM blocks, values after Authorization/PrivateKey/token-like names, 44-char
    base64 keys (WireGuard's) and kubeadm bootstrap tokens replaced by [redacted], and URLs
    without their query strings."""
    text = _PEM.sub("[redacted PEM block]", text)
    text = _QUERY.sub(lambda m: f"{m.group(1)}?[query left out]", text)
    text = _SECRET_AFTER.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} [redacted]", text)
    text = _FLAG.sub(lambda m: f"{m.group(1)}[redacted]", text)
    text = _WG_KEY.sub("[redacted key]", text)
    return _BOOTSTRAP_TOKEN.sub("[redacted token]", text)


class Redact(logging.Filter):
    """Rewrites each record's message (and traceback) through `redact` before any handler
    formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "cast_redacted", False):
            return True
        record.cast_redacted = True
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


@functools.cache
def logger(kind: str) -> logging.Logger:
    """The logger for one kind of record ("api", "ssh", "retry", "wait", "step", "error"). Its
    records are redacted as they are made, whichever handler gets them."""
    made = logging.getLogger(f"{LOGGER}.{kind}")
    made.addFilter(Redact())
    return made


class UtcFormatter(logging.Formatter):
    """`2026-12-01T10:30:00.123Z api    <message>`: UTC with milliseconds, then the kind."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        kind = record.name.rsplit(".", 1)[-1] if record.name != LOGGER else "cast"
        line = f"{stamp}.{int(record.msecs):03d}Z {kind:<5} {record.getMessage()}"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


# --- the file ---------------------------------------------------------------------------------


def _safe_segment(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return cleaned or "_"


class LazyFileHandler(logging.Handler):
    """Writes to `directory/<UTC time>-<command>.log`, created (0600, directories 0700) on the
    first record; the first line says which command and cast this is."""

    def __init__(self, directory: Path, command: str, header: str):
        super().__init__()
        self.directory = directory
        self.command = command
        self.header = header
        self.path: Path | None = None
        self.made_dirs: list[Path] = []
        self._file: TextIO | None = None

    def _open(self, created: float) -> None:
        missing = [p for p in [self.directory, *self.directory.parents] if not p.exists()]
        for path in reversed(missing):
            path.mkdir(mode=DIR_MODE, exist_ok=True)  # another cast may make it at the same time
            os.chmod(path, DIR_MODE)
        self.made_dirs = missing
        named = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created))
        for n in range(1, 1000):
            suffix = "" if n == 1 else f"-{n}"
            path = self.directory / f"{named}-{self.command}{suffix}.log"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, FILE_MODE)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - a thousand commands in one second
            raise OSError(f"cannot make a log file in {self.directory}")
        os.fchmod(fd, FILE_MODE)
        self.path = path
        self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        stamp = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(created))}.{int(created % 1 * 1000):03d}Z"
        self._write(redact(f"{stamp} start {self.header}"))

    def _write(self, line: str) -> None:
        assert self._file is not None
        self._file.write(line + "\n")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self._file is None:
                self._open(record.created)
            self._write(self.format(record))
        except Exception:  # a log that cannot be written must not fail the command
            self.handleError(record)

    def close(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._file is not None:
                self._file.close()
                self._file = None
        super().close()

    def discard(self) -> None:
        """Close and delete the file and the directories it made (the command changed nothing)."""
        self.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None
        for directory in self.made_dirs:
            try:
                directory.rmdir()
            except OSError:
                break


def prune(directory: Path, keep: int = KEEP) -> list[Path]:
    """Delete all but the newest `keep` logs in `directory` (their names start with their UTC
    time, so they sort by age); return the deleted paths."""
    logs = sorted(p for p in directory.glob("*.log") if p.is_file())
    old = logs[: max(0, len(logs) - keep)]
    for path in old:
        path.unlink(missing_ok=True)
    return old


# --- the command's log ------------------------------------------------------------------------


class CommandLog:
    """The handlers of the running command: its file and, with verbose, stderr."""

    def __init__(self, root: Path, cluster: str, command: str, header: str, *, verbose: bool, keep: int = KEEP):
        self.keep = keep
        self.started = time.monotonic()
        self.file = LazyFileHandler(root / "logs" / _safe_segment(cluster), command, header)
        self.handlers: list[logging.Handler] = [self.file]
        if verbose:
            self.handlers.append(logging.StreamHandler(sys.stderr))
        for handler in self.handlers:
            handler.addFilter(Redact())
            handler.setFormatter(UtcFormatter())
            _root.addHandler(handler)
        _root.setLevel(logging.INFO)

    @property
    def path(self) -> Path | None:
        """The log file, once something was written to it."""
        return self.file.path

    def close(self, *, discard: bool = False) -> Path | None:
        """Detach and close the handlers; prune the cluster's older logs, or with `discard`
        delete this one. Returns the log's path (None when discarded or never written)."""
        for handler in self.handlers:
            _root.removeHandler(handler)
            handler.close()
        if discard:
            self.file.discard()
            return None
        if self.file.path is not None:
            prune(self.file.directory, self.keep)
        return self.file.path


_current: CommandLog | None = None


def start(root: Path, cluster: str, command: str, *, verbose: bool = False, argv: list[str] | None = None,
          version: str = "") -> CommandLog:
    """Begin the log of `command` on `cluster` under the state root `root` (closing any earlier
    one). Nothing is written until the first record."""
    global _current
    if _current is not None:
        _current.close()
    args = " ".join(argv if argv is not None else sys.argv[1:])
    header = f"cast {version} {command} cluster={cluster} pid={os.getpid()} args: {args}".replace("  ", " ")
    _current = CommandLog(root, cluster, command, header, verbose=verbose)
    return _current


def finish(error: BaseException | None = None, *, exit_code: int = 0) -> Path | None:
    """End the running command's log, if any: a failure is written to it (with its traceback
    when it is not a CastError), a success that was logged gets a last line with the exit code
    and the time taken; exit code 2 (bad input) deletes the log instead. Returns the log's
    path, for the error message, or None."""
    global _current
    log, _current = _current, None
    if log is None:
        return None
    if exit_code == 2:
        return log.close(discard=True)
    if error is not None:
        from .errors import CastError

        if isinstance(error, CastError):
            logger("error").error("exit %d: %s", exit_code, error)
        else:
            logger("error").error("exit %d: unexpected %s: %s", exit_code, type(error).__name__, error,
                                  exc_info=(type(error), error, error.__traceback__))
    elif log.path is not None:
        logger("end").info("exit %d after ms=%d", exit_code, elapsed_ms(log.started))
    return log.close()


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (a time.monotonic() value)."""
    return round((time.monotonic() - started) * 1000)


def api_call(cloud: str, operation: str, status: int | str, ms: int, request_id: str | None = None, *,
             attempt: int = 1, error: str | None = None) -> None:
    """Record one HTTP request to a cloud's API (one attempt; retries are separate records):
    `status` is the HTTP status or, without a response, the exception's type name; `error` the
    cloud's error code where it gives one."""
    extra = (f" error={error}" if error else "") + (f" request_id={request_id}" if request_id else "")
    again = f" attempt={attempt}" if attempt > 1 else ""
    logger("api").info("%s %s status=%s ms=%d%s%s", cloud, operation, status, ms, extra, again)


def api_retry(cloud: str, operation: str, reason: str, wait_ms: int, attempt: int) -> None:
    """Record that an SDK (or cast) sends `operation` again, after `wait_ms`, because of `reason`."""
    logger("retry").info("%s %s attempt=%d after %s, waited ms=%d", cloud, operation, attempt, reason, wait_ms)


def retry(what: str, reason: str, wait_s: float, attempt: int) -> None:
    """Record that cast tries `what` again (attempt number `attempt`) in `wait_s`, because of
    `reason` (an error message, which by CastError's contract holds no secret); attempt 0 for
    a pass of work that has no attempt number."""
    numbered = f" attempt={attempt}" if attempt else ""
    logger("retry").info("%s:%s in ms=%d after: %s", what, numbered, round(wait_s * 1000), reason)


def waited(what: str, checks: int, ms: int, *, done: bool) -> None:
    """Record a wait that took more than one check: for what, how many checks, how long."""
    logger("wait").info("%s %s after %d checks, ms=%d", what, "ready" if done else "timed out", checks, ms)
