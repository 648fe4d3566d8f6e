"""The errors cast raises, each with the exit code a user or a script sees.

Exit codes: 0 done; 1 the operation failed; 2 bad input; 3 a latency check over its
threshold; 4 refused for safety (a VM without the cluster's UUID, a lock held by another run).
Cloud modules map their SDK's errors onto the `CloudError` family; nothing above
`provisioner/clouds/` ever sees an SDK exception type.
"""

from __future__ import annotations


class CastError(Exception):
    """Base of every error cast reports to the user. The message must never hold a secret."""

    exit_code = 1


class InputError(CastError):
    """Bad input from the user: a flag, a file, a name. Nothing has been created or written."""

    exit_code = 2

    def __init__(self, field: str, problem: str, allowed: str | None = None):
        self.field = field
        self.problem = problem
        self.allowed = allowed
        text = f"{field}: {problem}"
        if allowed:
            text += f" (allowed: {allowed})"
        super().__init__(text)


class ConfigError(CastError):
    """A project file (regions.yaml, a template) is malformed. Names the file and the key."""

    exit_code = 2


class LatencyError(CastError):
    """A latency check or pre-flight is over its threshold; the message names the pairs."""

    exit_code = 3


class SafetyError(CastError):
    """Refused for safety: nothing was changed. Exit code 4."""

    exit_code = 4


class ForeignVmError(SafetyError):
    """A cluster network holds VMs that do not carry the cluster's UUID; nothing was deleted."""

    def __init__(self, cloud: str, vms: list[str]):
        self.cloud = cloud
        self.vms = vms
        listed = ", ".join(vms)
        super().__init__(
            f"{cloud}: refusing to delete: the cluster's network holds VMs without the "
            f"cluster's UUID: {listed}. Remove them or move them out, then run again."
        )


class LockHeldError(SafetyError):
    """Another live cast process holds the cluster's lock."""


class HostKeyMismatchFound(SafetyError):
    """reconcile found nodes presenting a host key other than the pinned one: nothing was sent
    to them or repaired on them. The message holds every finding of the run. Exit code 4."""

    def __init__(self, nodes: list[str], findings: list[str]):
        self.nodes = nodes
        self.findings = findings
        listed = "".join(f"\n  {line}" for line in findings)
        super().__init__(
            f"host key mismatch on {', '.join(nodes)}: refusing to touch {'it' if len(nodes) == 1 else 'them'} "
            f"(a node showing another key is not the VM cast made, or its key was changed); findings:{listed}"
        )


# --- cloud errors: mapped from SDK errors inside provisioner/clouds/ -------------------


class CloudError(CastError):
    """A cloud call failed. `cloud` names the cloud; the message names the resource."""

    def __init__(self, cloud: str, message: str):
        self.cloud = cloud
        super().__init__(f"{cloud}: {message}")


class TransientError(CloudError):
    """Throttling, a 5xx, a timeout: worth retrying with backoff."""


class CapacityError(CloudError):
    """Out of capacity or over a quota; names the region and the size. Not retried."""


class DependencyError(CloudError):
    """The resource is still in use by another one (delete it later, in a later pass)."""


class NotFoundError(CloudError):
    """The resource does not exist. In teardown this counts as done."""


class AuthError(CloudError):
    """Missing or wrong credentials; the message says which source was tried and how to fix it."""


class ExcessResourcesError(CloudError):
    """More resources carry the cluster's tags than the plan expects: a probable leak."""
