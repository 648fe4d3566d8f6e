"""The boot marker: the last thing a node's cloud-init does is write /var/lib/cast/boot-done,
saying whether Kubernetes is installed (`kubernetes=v1.36.2`), failed to install
(`kubernetes=unavailable` and `reason=...`), or cannot run on that host at all
(`kubernetes=unsupported` and `reason=...`: the sandbox's namespace hosts). cast waits for it
before it uses a node, so the mesh and kubeadm never race a half-done package install.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..cloudinit import BOOT_MARKER
from ..errors import CastError
from ..retry import wait_until
from .ssh import HostKeyMismatchError, NodeError

if TYPE_CHECKING:
    from .ssh import NodeAccess, SshPool

BOOT_TIMEOUT_S = 1200.0  # cloud-init installs containerd and Kubernetes: minutes on a real cloud
UNAVAILABLE = "unavailable"  # the install failed: an error
UNSUPPORTED = "unsupported"  # the host cannot run a kubelet: the Kubernetes steps are skipped

# cloud-init writes this when its last stage ends: {"v1": {"datasource": ..., "errors": [...]}}.
CLOUD_INIT_RESULT = "/run/cloud-init/result.json"

# Prints the marker when it is there; otherwise says so when cloud-init has finished with errors,
# so a broken boot fails in seconds instead of at the deadline. Reading cloud-init's result file
# costs a `tr` and a `grep`; `cloud-init status` would start Python on every poll (seconds on a
# small or emulated VM). The file is JSON, indented or not: spaces and newlines are dropped first.
_PROBE = (
    f"if [ -f {BOOT_MARKER} ]; then cat {BOOT_MARKER}; "
    f"elif [ -f {CLOUD_INIT_RESULT} ] && tr -d ' \\n' < {CLOUD_INIT_RESULT} | grep -q '\"errors\":\\[\"'; "
    "then echo cloud-init=error; fi"
)


@dataclass(frozen=True)
class BootMarker:
    """What a booted node says of itself."""

    kubernetes: str  # the installed kubeadm version, "unavailable" or "unsupported"
    reason: str = ""  # why Kubernetes is unavailable or unsupported

    @property
    def can_run_kubernetes(self) -> bool:
        return self.kubernetes not in (UNAVAILABLE, UNSUPPORTED)

    @property
    def unsupported(self) -> bool:
        return self.kubernetes == UNSUPPORTED


def parse_marker(text: str) -> BootMarker:
    """The marker's `key=value` lines as a BootMarker; a marker without a `kubernetes` line
    means unavailable, with the reason that says so."""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    version = fields.get("kubernetes", "").strip()
    if not version:
        return BootMarker(UNAVAILABLE, "the boot marker names no Kubernetes version")
    return BootMarker(version, fields.get("reason", "").strip())


def wait_booted(pool: SshPool, node: NodeAccess, timeout_s: float = BOOT_TIMEOUT_S) -> BootMarker:
    """Block until `node` (already reachable over SSH) has written its boot marker, polling
    with backoff; return it. Raises NodeError when cloud-init failed on the node or the
    marker did not appear within `timeout_s`."""

    def probe() -> str | None:
        try:
            out = pool.check(node, _PROBE, purpose="read boot marker").strip()
        except HostKeyMismatchError:
            raise
        except NodeError:
            return None  # cloud-init may restart sshd while it upgrades packages: try again
        if out == "cloud-init=error":
            raise NodeError(
                node.name, "cloud-init failed while booting; see /var/log/cloud-init-output.log on the node"
            )
        return out or None

    try:
        text = wait_until(probe, what=f"node {node.name} to finish booting", timeout_s=timeout_s,
                          initial=0.05, maximum=1.0)  # one small command on an open connection
    except NodeError:
        raise
    except CastError as exc:
        raise NodeError(node.name, f"{exc}: no {BOOT_MARKER} yet (is cloud-init still running?)") from None
    return parse_marker(text)
