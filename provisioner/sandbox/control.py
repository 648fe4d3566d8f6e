"""Starting, finding and stopping the sandbox supervisor process (for `cast sandbox ...`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import CastError
from ..retry import DeadlineError, wait_until
from .pools import DEFAULT_BLOCK, check_block
from .supervisor import STATE_FILE, hosts_prefix

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
LOG_FILE = "supervisor.log"


class SandboxError(CastError):
    """The sandbox cannot be started, found or stopped."""


def sandbox_dir(state_root: Path) -> Path:
    return state_root / "sandbox"


def read_state(directory: Path) -> dict[str, Any] | None:
    """The running sandbox's state (pid, region, env), or None when none runs."""
    try:
        state: dict[str, Any] = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if _is_supervisor(int(state.get("pid", 0))) else None


def _is_supervisor(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"provisioner.sandbox.supervisor" in cmdline


def start(directory: Path, region: str, *, api_delay_ms: float = 0.0, boot_delay_s: float = 0.0,
          pool: str = DEFAULT_BLOCK) -> dict[str, Any]:
    """Start the supervisor in the background and block until it is ready. Needs root.
    `api_delay_ms`: how long every cloud API request waits before it is answered;
    `boot_delay_s`: how long after its create a VM answers SSH; `pool`: the block the public
    addresses of every cloud are carved from (InputError, before anything starts, when this
    machine uses an address in it). When a sandbox runs already, returns its state, or raises
    SandboxError if it was started with other settings."""
    existing = read_state(directory)
    if existing:
        running = (float(existing.get("api_delay_ms", 0.0)), float(existing.get("boot_delay_s", 0.0)),
                   str(existing.get("pool", DEFAULT_BLOCK)))
        if running != (api_delay_ms, boot_delay_s, pool):
            raise SandboxError(
                f"a sandbox runs already with --api-delay-ms {running[0]:g} --boot-delay-s {running[1]:g} "
                f"--pool {running[2]}; stop it first with `cast sandbox down`"
            )
        return existing
    check_block(pool)
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root: it makes network namespaces for its VMs")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = open(directory / LOG_FILE, "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "provisioner.sandbox.supervisor", str(directory), "--region", region,
             "--api-delay-ms", str(api_delay_ms), "--boot-delay-s", str(boot_delay_s), "--pool", pool],
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
        wait_until(lambda: not _is_supervisor(pid), what="the sandbox to stop", timeout_s=STOP_TIMEOUT_S)
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
        try:
            with urllib.request.urlopen(f"{state['env'][variable]}/_emulator/vms", timeout=5) as response:
                found[cloud] = [{k: vm[k] for k in ("id", "name", "public_ip", "state")} for vm in json.load(response)]
        except OSError as exc:
            found[cloud] = f"unreachable: {exc}"
    return found


def uptime(state: dict[str, Any]) -> float:
    return time.time() - float(state.get("started_at", time.time()))
