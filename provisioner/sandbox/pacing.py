"""How slow the sandbox's clouds are: per cloud, per kind of call.

Two profiles:
- `flat` (`--api-delay-ms D --boot-delay-s B`): every API call held D, every VM answering SSH
  B after its create; GCP operations DONE after 0.05-0.2 s, Azure long-running operations
  after 0.2 s (the emulators' defaults).
- `cloud[:F]`: the latencies the clouds show, from the published measurements cited below,
  divided by the compression factor F (default 10) so that a run stays within minutes.

Figures in real seconds (before compression). Where no published measurement was found, the
figure is marked as an estimate; it stays inside the ranges the issue names (API round trips
100-300 ms; GCP operations and Azure long-running operations seconds to tens of seconds; VM
boot to SSH tens of seconds; termination tens of seconds).

Sources:
[daemonology] C. Percival, "EC2 boot time benchmarking", 2021-08-12,
  http://www.daemonology.net/blog/2021-08-12-EC2-boot-time-benchmarking.html : c5.xlarge, Linux
  AMIs: RunInstances call 1.5 s, pending -> running 4.9 s, running -> TCP/22 open ~22.8 s.
[brevdev] brevdev/ec2-coldboot-research (GitHub, @fix_plan.md): cold launch to SSH 25.8 s on
  average (API 19 %, pending -> running 69 %, boot -> SSH 12 %), pending -> running 16.4-16.6 s
  whatever the instance family.
[aboukhalil] R. Aboukhalil, "Move Fast and Break the Cloud: A Benchmark of VM Boot Times on
  the Google Cloud", 2018, https://medium.com/@robaboukhalil/move-fast-and-break-the-cloud-b55b899e3683 :
  ~5,000 VMs, time-to-SSH ~23 s (8 vCPU), ~25 s for <= 32 vCPUs.
[issue] issue 19's ranges (API round trips 100-300 ms, ...), used where nothing is cited.
Instance termination is not paced: the emulators (moto for AWS) end instances at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import InputError

CLOUDS = ("aws", "gcp", "azure", "digitalocean")
DEFAULT_COMPRESSION = 10.0
# A read: REST GET/HEAD, an AWS Describe/Get/List action, a GCP list/get/wait.
_READ = re.compile(r"^(GET|HEAD) |^(Describe|Get|List)[A-Z]|\.(list|get|aggregatedList|wait)$")


@dataclass(frozen=True)
class CloudPacing:
    """One cloud's latencies (seconds): a read's and a mutation's round trip, per-route
    overrides (a route as the emulator counts it, e.g. "RunInstances"), its operations'
    duration (GCP operations; Azure long-running operations by resource provider
    namespace) and a VM's boot to SSH after its create."""

    read_s: float
    write_s: float
    boot_s: float
    op_s: tuple[float, float] = (0.05, 0.2)
    op_by_namespace: dict[str, float] = field(default_factory=dict)
    routes: dict[str, float] = field(default_factory=dict)

    def delay_s(self, route: str) -> float:
        """How long the API holds a call of `route`."""
        if route in self.routes:
            return self.routes[route]
        return self.read_s if _READ.search(route) else self.write_s

    def scaled(self, factor: float) -> CloudPacing:
        return CloudPacing(self.read_s / factor, self.write_s / factor, self.boot_s / factor,
                           (self.op_s[0] / factor, self.op_s[1] / factor),
                           {k: v / factor for k, v in self.op_by_namespace.items()},
                           {k: v / factor for k, v in self.routes.items()})


@dataclass(frozen=True)
class Pacing:
    """A profile: its name, the compression factor, and every cloud's latencies."""

    name: str
    compression: float
    clouds: dict[str, CloudPacing]

    def of(self, cloud: str) -> CloudPacing:
        return self.clouds[cloud]


def flat(api_delay_s: float, boot_delay_s: float) -> Pacing:
    """Every call held `api_delay_s`, every VM up `boot_delay_s` after its create."""
    azure_op = {"Microsoft.Network": 0.2, "Microsoft.Compute": 0.2, "Microsoft.Resources": 0.2}
    clouds = {c: CloudPacing(api_delay_s, api_delay_s, boot_delay_s,
                             op_by_namespace=azure_op if c == "azure" else {}) for c in CLOUDS}
    return Pacing("flat", 1.0, clouds)


# The clouds as measured (real seconds).
CLOUD_LIKE = {
    # reads 0.1 s, writes 0.2 s [issue]; RunInstances 1.5 s [daemonology]; boot: pending ->
    # running 4.9 s + 22.8 s to SSH [daemonology], 25.8 s in all [brevdev]: 26 s.
    "aws": CloudPacing(0.1, 0.2, 26.0, routes={"RunInstances": 1.5}),
    # time-to-SSH 23-25 s [aboukhalil], counted from the insert operation's end here (the
    # emulator starts a boot when the operation is DONE): 20 s; operations 5-15 s [estimate].
    "gcp": CloudPacing(0.15, 0.25, 20.0, op_s=(5.0, 15.0)),
    # long-running operations [estimate]: network resources 5 s, a VM 40 s, a resource group
    # delete 60 s; boot to SSH 60 s after the VM's PUT [estimate].
    "azure": CloudPacing(0.15, 0.3, 60.0, op_by_namespace={"Microsoft.Network": 5.0, "Microsoft.Compute": 40.0,
                                                            "Microsoft.Resources": 60.0}),
    # boot to SSH 45 s [estimate]; reads 0.1 s, writes 0.2 s [issue].
    "digitalocean": CloudPacing(0.1, 0.2, 45.0),
}


def parse(text: str, api_delay_s: float = 0.0, boot_delay_s: float = 0.0) -> Pacing:
    """The profile `text` names: "flat" (with the given delays) or "cloud" / "cloud:F" (the
    measured latencies compressed F times). InputError for anything else."""
    name, _, factor_text = text.partition(":")
    if name == "flat" and not factor_text:
        return flat(api_delay_s, boot_delay_s)
    if name == "cloud":
        try:
            factor = float(factor_text) if factor_text else DEFAULT_COMPRESSION
        except ValueError:
            factor = 0.0
        if factor < 1:
            raise InputError("--pacing", f"compression {factor_text!r} is not a number of 1 or more",
                             "cloud:10")
        return Pacing("cloud", factor, {c: p.scaled(factor) for c, p in CLOUD_LIKE.items()})
    raise InputError("--pacing", f"unknown pacing {text!r}", "flat, cloud, cloud:F")
