"""SSH to nodes: the only module that imports paramiko.

Every node's host key is known before first contact (cast made it and cloud-init installed
it), so a connection accepts exactly that key: a different key is refused, never learnt.
Commands run as root with the cluster's key. Errors name the node; no secret is ever logged
or put into an error (command text is shown only by its first word, output only stderr).
Each connection and each command is one line of the command log (provisioner.logs): the node,
the command's purpose (never its text, input or output), its exit status and its duration.
"""

from __future__ import annotations

import base64
import binascii
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .. import logs
from ..errors import CastError
from ..retry import wait_until

if TYPE_CHECKING:
    import paramiko

T = TypeVar("T")
CONNECT_TIMEOUT_S = 10.0
IDLE_WAKE_S = 1.0
COMMAND_TIMEOUT_S = 120.0
MAX_WORKERS = 32
STDERR_SHOWN = 400
OUTPUT_LIMIT = 8 * 1024 * 1024  # per stream: what cast reads back is a few KiB (admin.conf, peers)
_CHUNK = 64 * 1024


def _first_word(command: str) -> str:
    return command.split(None, 1)[0] if command.strip() else "command"


def _log(node: NodeAccess, purpose: str, status: int | str, started: float) -> None:
    logs.logger("ssh").info("%s %s:%d %r status=%s ms=%d", node.name, node.host, node.port, purpose, status,
                            logs.elapsed_ms(started))


class NodeError(CastError):
    """Reaching or running something on a node failed; the message names the node."""

    def __init__(self, node: str, message: str):
        self.node = node
        super().__init__(f"node {node}: {message}")


class HostKeyMismatchError(NodeError):
    """The node presented a host key other than the one cast made for it: refused for
    safety (exit 4), nothing was sent to it."""

    exit_code = 4


class OutputTooLargeError(NodeError):
    """A command wrote more than OUTPUT_LIMIT bytes to stdout or stderr: refused, not kept."""


class NodeCommandError(NodeError):
    """A command exited non-zero on a node."""

    def __init__(self, node: str, command: str, status: int, stderr: str):
        self.status = status
        self.stderr = stderr
        summary = command.split(None, 1)[0] if command.strip() else "command"
        tail = stderr.strip()[-STDERR_SHOWN:]
        super().__init__(node, f"`{summary} …` exited {status}" + (f": {tail}" if tail else ""))


class NodesError(CastError):
    """Work failed on one or more nodes; `errors` maps each failed node to its error."""

    def __init__(self, errors: dict[str, Exception]):
        self.errors = errors
        lines = "; ".join(str(e) if isinstance(e, NodeError) else f"node {n}: {e}"
                          for n, e in sorted(errors.items()))
        super().__init__(f"{len(errors)} node(s) failed: {lines}")
        if all(isinstance(e, HostKeyMismatchError) for e in errors.values()):
            self.exit_code = HostKeyMismatchError.exit_code


@dataclass(frozen=True)
class NodeAccess:
    """How to reach a node: its name (used in every message), address, port, and its host
    key as an OpenSSH public key line ("ssh-ed25519 AAAA… [comment]")."""

    name: str
    host: str
    host_key: str
    port: int = 22
    user: str = "root"


@dataclass(frozen=True)
class CommandResult:
    status: int
    stdout: str
    stderr: str


def load_private_key(path: str) -> paramiko.PKey:
    """Load the cluster's SSH private key (OpenSSH or PEM, ed25519/ecdsa/rsa) from `path`.
    Raises CastError naming the file (never its content)."""
    import paramiko

    try:
        return paramiko.PKey.from_path(path)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise CastError(f"ssh key {path}: cannot be read as a private key ({type(exc).__name__})")\
            from None


def _pinned_key(node: NodeAccess) -> paramiko.PKey:
    import paramiko

    parts = node.host_key.split()
    if len(parts) < 2:
        raise NodeError(node.name, "its host key is not an OpenSSH public key line")
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))
    except (ValueError, paramiko.SSHException, binascii.Error) as exc:
        raise NodeError(node.name, f"its host key cannot be read ({exc})") from None


def connect(node: NodeAccess, key: paramiko.PKey,
            timeout_s: float = CONNECT_TIMEOUT_S) -> paramiko.SSHClient:
    """Open one SSH connection to `node`, accepting only its pinned host key.

    Raises HostKeyMismatchError when the node shows another key, NodeError otherwise
    (unreachable, refused, authentication failed)."""
    import paramiko

    client = paramiko.SSHClient()
    pinned = _pinned_key(node)
    entry = node.host if node.port == 22 else f"[{node.host}]:{node.port}"
    client.get_host_keys().add(entry, pinned.get_name(), pinned)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        sock = socket.create_connection((node.host, node.port), timeout=timeout_s)
        # Without TCP_NODELAY each new channel waits ~40 ms on Nagle and delayed ACKs.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.connect(node.host, port=node.port, username=node.user, pkey=key, sock=sock,
                       timeout=timeout_s, banner_timeout=timeout_s, auth_timeout=timeout_s,
                       allow_agent=False, look_for_keys=False)
    except paramiko.BadHostKeyException:
        client.close()
        raise HostKeyMismatchError(
            node.name, f"refused: {node.host}:{node.port} presented a host key other than the "
            "one cast made for this node") from None
    except paramiko.AuthenticationException:
        client.close()
        raise NodeError(node.name, "the cluster's SSH key was not accepted") from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        client.close()
        raise NodeError(node.name, f"cannot connect to {node.host}:{node.port} "
                        f"({type(exc).__name__}: {exc})") from None
    # paramiko's reader thread wakes at each socket timeout (0.1 s) only to see whether it
    # should stop; idle connections to 100 nodes cost cast 50 ms of CPU a second that way.
    # Connected, it wakes once a second (close does not wait for it).
    sock.settimeout(IDLE_WAKE_S)
    return client


def _read_output(node: NodeAccess, channel: paramiko.Channel, deadline: float) -> tuple[bytes, bytes, int]:
    """stdout, stderr and exit status of a command, both streams read as data comes (read one
    after the other, a command filling the unread one's window would stall until the
    timeout), each at most OUTPUT_LIMIT bytes (OutputTooLargeError), all by `deadline`
    (TimeoutError after it)."""
    import select

    streams = {"stdout": bytearray(), "stderr": bytearray()}
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the command's deadline passed")
        select.select([channel], [], [], min(remaining, 1.0))
        for name, ready, recv in (("stdout", channel.recv_ready, channel.recv),
                                  ("stderr", channel.recv_stderr_ready, channel.recv_stderr)):
            while ready():
                streams[name] += recv(_CHUNK)
                if len(streams[name]) > OUTPUT_LIMIT:
                    raise OutputTooLargeError(node.name, f"a command wrote more than {OUTPUT_LIMIT} bytes "
                                                         f"to {name}: refused")
        if (channel.eof_received or channel.closed) and not channel.recv_ready() and not channel.recv_stderr_ready():
            break
    if not channel.status_event.wait(max(deadline - time.monotonic(), 0)):
        raise TimeoutError("no exit status by the command's deadline")
    return bytes(streams["stdout"]), bytes(streams["stderr"]), channel.recv_exit_status()


class SshPool:
    """Connections to many nodes (one per node, opened on first use and reused) and a
    bounded thread pool to run work on them in parallel. Close it, or use `with`."""

    def __init__(self, key: paramiko.PKey, *, max_workers: int = MAX_WORKERS,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S):
        self._key = key
        self._connect_timeout_s = connect_timeout_s
        self._clients: dict[str, paramiko.SSHClient] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.max_workers = max_workers

    def __enter__(self) -> SshPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def forget(self, node: NodeAccess) -> None:
        """Close and drop the connection to `node` (after it was removed)."""
        with self._lock:
            client = self._clients.pop(node.name, None)
        if client is not None:
            client.close()

    def client(self, node: NodeAccess) -> paramiko.SSHClient:
        """The open connection to `node`, connecting (once) if needed. Raises NodeError."""
        with self._lock:
            node_lock = self._locks.setdefault(node.name, threading.Lock())
        with node_lock:
            client = self._clients.get(node.name)
            transport = client.get_transport() if client else None
            if client is None or transport is None or not transport.is_active():
                started = time.monotonic()
                try:
                    client = connect(node, self._key, self._connect_timeout_s)
                except NodeError as exc:
                    _log(node, "connect", type(exc).__name__, started)
                    raise
                _log(node, "connect", "ok", started)
                with self._lock:
                    self._clients[node.name] = client
            return client

    def wait_reachable(self, node: NodeAccess, timeout_s: float = 300.0, *, first_retry_s: float = 0.05) -> None:
        """Block until `node` accepts an SSH connection, with backoff from `first_retry_s`, for
        at most `timeout_s`. A wrong host key is refused at once (HostKeyMismatchError); other
        failures are retried (a booting node refuses or rejects keys for a while) and the
        last one is named in the DeadlineError."""
        last: list[str] = []

        def attempt() -> bool:
            try:
                self.client(node)
                return True
            except HostKeyMismatchError:
                raise
            except NodeError as exc:
                last[:] = [str(exc)]
                return False

        try:
            # A booting node refuses at once: trying again often costs one round trip, while
            # a long backoff would leave a node that just came up waiting for seconds.
            wait_until(attempt, what=f"node {node.name} to accept SSH", timeout_s=timeout_s,
                       initial=first_retry_s, maximum=0.25)
        except CastError as exc:
            if isinstance(exc, NodeError):
                raise
            raise NodeError(node.name, f"{exc}; last error: {last[0] if last else '-'}") from None

    def run(self, node: NodeAccess, command: str, *, stdin: bytes | None = None,
            timeout_s: float = COMMAND_TIMEOUT_S, purpose: str | None = None) -> CommandResult:
        """Run `command` (a shell command line) on `node`, feeding `stdin`; return its exit
        status and output. Raises NodeError if the node cannot be reached or the command
        does not finish within `timeout_s` (one deadline for the whole command, however it
        trickles its output), and OutputTooLargeError when it writes more than OUTPUT_LIMIT
        bytes to stdout or stderr. `purpose` says what it is for in the log (by default the
        command's first word: a command line may carry a secret)."""
        import paramiko

        client = self.client(node)
        what = purpose or _first_word(command)
        started = time.monotonic()
        try:
            transport = client.get_transport()
            assert transport is not None
            channel = transport.open_session(timeout=timeout_s)
            channel.settimeout(timeout_s)
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin)
            channel.shutdown_write()
            stdout, stderr, status = _read_output(node, channel, time.monotonic() + timeout_s)
            channel.close()
        except OutputTooLargeError:
            _log(node, what, "output too large", started)
            self.forget(node)
            raise
        except (OSError, paramiko.SSHException, EOFError) as exc:
            _log(node, what, type(exc).__name__, started)
            self.forget(node)
            raise NodeError(node.name, f"running `{_first_word(command)} …` failed "
                            f"({type(exc).__name__})") from None
        _log(node, what, status, started)
        return CommandResult(status, stdout.decode(errors="replace"),
                             stderr.decode(errors="replace"))

    def check(self, node: NodeAccess, command: str, *, stdin: bytes | None = None,
              timeout_s: float = COMMAND_TIMEOUT_S, purpose: str | None = None) -> str:
        """Run `command` on `node` and return its stdout; a non-zero exit raises
        NodeCommandError (naming the node, the exit status and the end of stderr)."""
        result = self.run(node, command, stdin=stdin, timeout_s=timeout_s, purpose=purpose)
        if result.status != 0:
            raise NodeCommandError(node.name, command, result.status, result.stderr)
        return result.stdout

    def upload(self, node: NodeAccess, path: str, data: bytes, mode: int = 0o600) -> None:
        """Write `data` to `path` on `node` atomically: a temporary file in the same
        directory, fsync, chmod `mode`, rename over `path`. Raises NodeError. The log names
        the path, never the data."""
        target = shlex.quote(path)
        script = (
            "set -e; umask 077; "
            f"tmp=$(mktemp \"$(dirname {target})/.cast-upload.XXXXXX\"); "
            "trap 'rm -f \"$tmp\"' EXIT; "
            f"cat > \"$tmp\"; sync \"$tmp\"; chmod {mode:o} \"$tmp\"; mv -f \"$tmp\" {target}; "
            "trap - EXIT"
        )
        self.check(node, script, stdin=data, purpose=f"write {path}")

    def map(self, nodes: Iterable[NodeAccess], work: Callable[[NodeAccess], T], *,
            max_workers: int | None = None) -> dict[str, T]:
        """Run `work(node)` for every node in parallel (at most `max_workers`, by default
        the pool's, at once) and return {node name: result}. If any failed, raises
        NodesError naming every failed node, after all have finished."""
        nodes = list(nodes)
        results: dict[str, T] = {}
        errors: dict[str, Exception] = {}
        if not nodes:
            return results
        with ThreadPoolExecutor(max_workers=min(max_workers or self.max_workers, len(nodes)),
                                thread_name_prefix="ssh") as pool:
            futures = {node.name: pool.submit(work, node) for node in nodes}
            for name, future in futures.items():
                try:
                    results[name] = future.result()
                except CastError as exc:
                    errors[name] = exc
                except OSError as exc:
                    errors[name] = NodeError(name, f"{type(exc).__name__}: {exc}")
        if errors:
            raise NodesError(errors)
        return results
