"""Starting, finding and stopping the sandbox supervisor process (for `cast sandbox ...`)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import CastError
from ..private_files import UntrustedPathError, read_private_file, trusted_dir
from ..processes import process_start, process_uid
from ..retry import DeadlineError, wait_until
from .leftovers import remove_dead_sandboxes
from .pools import DEFAULT_BLOCK, check_block, pools_of
from .supervisor import STATE_FILE, hosts_prefix

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
LOG_FILE = "supervisor.log"
ENV_KEY_RE = re.compile(r"[A-Z_][A-Z0-9_]*")


class SandboxError(CastError):
    """The sandbox cannot be started, found or stopped."""


def sandbox_dir(state_root: Path) -> Path:
    return state_root / "sandbox"


def _trusted(directory: Path) -> None:
    """The sandbox directory and the state root holding it: the user's own, closed to others."""
    trusted_dir(directory.parent)
    trusted_dir(directory)


def read_state(directory: Path) -> dict[str, Any] | None:
    """The running sandbox's state (pid, region, env), or None when none runs. The directory
    must be the user's own and closed to others (UntrustedPathError otherwise: it runs as
    root), the file is read without following a symlink, and it counts only while the process
    it names is the supervisor that wrote it (is_supervisor)."""
    _trusted(directory)
    raw = read_private_file(directory / STATE_FILE)
    if raw is None:
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    return state if isinstance(state, dict) and is_supervisor(state) else None


def is_supervisor(state: dict[str, Any]) -> bool:
    """Whether the process the sandbox state names is still the supervisor that wrote it: the
    pid it recorded, with the start time (a reused pid has another) and the effective uid it
    recorded. A process whose command line merely looks like the supervisor's does not count."""
    pid, start, uid = state.get("pid"), state.get("proc_start"), state.get("uid")
    if type(pid) is not int or pid <= 0 or not isinstance(start, str) or not start or type(uid) is not int:
        return False
    return process_start(pid) == start and process_uid(pid) == uid


def shell_exports(env: object) -> list[str]:
    """`export KEY=value` lines for `eval`, each value quoted with shlex.quote. Raises
    SandboxError naming the key when a key is not a shell variable name (^[A-Z_][A-Z0-9_]*$)
    or a value is not a string: the state file is not trusted to be harmless."""
    import shlex

    if not isinstance(env, dict):
        raise SandboxError("the sandbox state's env is not a mapping: refusing to print it")
    lines = []
    for key, value in env.items():
        if not isinstance(key, str) or not ENV_KEY_RE.fullmatch(key):
            raise SandboxError(f"the sandbox state names the variable {key!r}, which is not [A-Z_][A-Z0-9_]*: "
                               "refusing to print it for eval; run `cast sandbox down` and up again")
        if not isinstance(value, str):
            raise SandboxError(f"the sandbox state's {key} is not a string: refusing to print it")
        lines.append(f"export {key}={shlex.quote(value)}")
    return lines


def open_log(directory: Path) -> BinaryIO:
    """The supervisor's log, opened for appending (0600 when new). Root writes it: never
    through a symlink (UntrustedPathError), in a directory that is the user's own."""
    _trusted(directory)
    path = directory / LOG_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError:
        if path.is_symlink():
            raise UntrustedPathError(f"{path} is a symlink: refusing to write through it; remove it") from None
        raise
    return os.fdopen(fd, "ab")


def choose_pools(block: str, say: Callable[[str], None] = lambda message: None) -> dict[str, str]:
    """Each cloud's public /24 from `block` (pools.check_block: InputError when it cannot hold them),
    after removing, as root, what sandboxes that no longer run left (their routes would hold the
    block's /24s), each removal told to `say`."""
    pools_of(block)  # bad input first: nothing is touched for a block that is no block
    if os.geteuid() == 0:
        for leftover in remove_dead_sandboxes():
            say(f"removed what a sandbox that no longer runs left on this machine ({leftover.prefix}: "
                f"{len(leftover.namespaces)} namespaces{', its uplink and routes' if leftover.uplink else ''})")
    return check_block(block)


def start(directory: Path, region: str, *, api_delay_ms: float = 0.0, boot_delay_s: float = 0.0,
          pool: str = DEFAULT_BLOCK, pacing: str = "flat", hosts: str = "namespace",
          say: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Start the supervisor in the background and block until it is ready. Needs root.
    `api_delay_ms`: how long every cloud API request waits before it is answered;
    `boot_delay_s`: how long after its create a VM answers SSH (both for the "flat" `pacing`;
    "cloud" or "cloud:F": the clouds' own latencies, see sandbox.pacing); `pool`: the block the public
    addresses of every cloud are carved from (its first four /24s that hold nothing this machine
    uses; InputError, before anything starts, when it has fewer); `hosts`: "namespace" or "vm" (QEMU guests: the guest
    image must be built already, vm_image.ensure_image). When a sandbox runs already, returns its state, or raises
    SandboxError if it was started with other settings. What sandboxes that no longer run left on
    the machine (their namespaces and routes) is removed first, each removal told to `say`."""
    existing = read_state(directory)
    if existing:
        running = (float(existing.get("api_delay_ms", 0.0)), float(existing.get("boot_delay_s", 0.0)),
                   str(existing.get("pool", DEFAULT_BLOCK)), str(existing.get("pacing", "flat")),
                   str(existing.get("hosts", "namespace")))
        if running != (api_delay_ms, boot_delay_s, pool, pacing, hosts):
            raise SandboxError(
                f"a sandbox runs already with --api-delay-ms {running[0]:g} --boot-delay-s {running[1]:g} "
                f"--pool {running[2]} --pacing {running[3]} --hosts {running[4]}; stop it first with "
                "`cast sandbox down`"
            )
        return existing
    pools = choose_pools(pool, say)
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root: it makes network namespaces for its VMs")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = open_log(directory)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "provisioner.sandbox.supervisor", str(directory), "--region", region,
             "--api-delay-ms", str(api_delay_ms), "--boot-delay-s", str(boot_delay_s), "--pool", pool,
             "--pacing", pacing, "--hosts", hosts,
             "--pools", ",".join(f"{cloud}={cidr}" for cloud, cidr in pools.items())],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()

    def ready() -> dict[str, Any] | None:
        if process.poll() is not None:
            raise SandboxError(f"the sandbox supervisor exited ({process.returncode}); see {directory / LOG_FILE}")
        return read_state(directory)

    try:
        return wait_until(ready, what="the sandbox to start", timeout_s=START_TIMEOUT_S)
    except DeadlineError:
        process.terminate()
        raise SandboxError(f"the sandbox did not start in {START_TIMEOUT_S:.0f}s; see {directory / LOG_FILE}") from None


def stop(directory: Path) -> bool:
    """Stop the supervisor (it removes its hosts and namespaces) and block until it is gone.
    Returns False when none was running (leftovers of a crashed one are removed then)."""
    state = read_state(directory)
    if state is None:
        from .hosts import cleanup_leftovers

        cleanup_leftovers(hosts_prefix(directory))
        return False
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not is_supervisor(state), what="the sandbox to stop", timeout_s=STOP_TIMEOUT_S)
    except DeadlineError:
        os.kill(pid, signal.SIGKILL)
        from .hosts import cleanup_leftovers

        cleanup_leftovers(hosts_prefix(directory))
    (directory / STATE_FILE).unlink(missing_ok=True)
    return True


def vm_hosts(state: dict[str, Any]) -> dict[str, Any]:
    """What each emulator reports running (through its control endpoint), for `status`."""
    import urllib.request

    found: dict[str, Any] = {}
    for cloud, variable in (
        ("gcp", "CAST_GCP_ENDPOINT"),
        ("azure", "CAST_AZURE_ENDPOINT"),
        ("digitalocean", "CAST_DIGITALOCEAN_ENDPOINT"),
    ):
        request = urllib.request.Request(f"{state['env'][variable]}/_emulator/vms", headers=control_headers(state))
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                found[cloud] = [{k: vm[k] for k in ("id", "name", "public_ip", "state")} for vm in json.load(response)]
        except OSError as exc:
            found[cloud] = f"unreachable: {exc}"
    return found


def control_headers(state: dict[str, Any]) -> dict[str, str]:
    """The header that opens the running sandbox's control routes (its per-run token)."""
    from .emulator import CONTROL_TOKEN_ENV, CONTROL_TOKEN_HEADER

    token = state.get("env", {}).get(CONTROL_TOKEN_ENV)
    return {CONTROL_TOKEN_HEADER: token} if token else {}


def uptime(state: dict[str, Any]) -> float:
    return time.time() - float(state.get("started_at", time.time()))
