"""Azure's creation steps (Cloud.creation_steps): the default graph, with the VM requests
(their user-data: rendering and host keys, CPU and state reads) made as the network step
starts, alongside the resource group's creation instead of at the start of the VM step, so
that the public IPs, which need only the group and the nodes' names and roles, go out with
the VNet and the security groups (Provider.ensure_network), and the VM step begins with the
NICs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from .base import Cloud, CloudTarget, CreationStep, Ensured, StepInputs, VmRequest

if TYPE_CHECKING:
    from .azure import Provider


class EarlyRequests:
    """The VM requests of one creation graph, made once, early (plain creates only: a dry
    run renders nothing and a repair only what is missing, as the VM step decides)."""

    def __init__(self) -> None:
        self._future: Future[Sequence[VmRequest]] | None = None
        self._names: tuple[str, ...] = ()

    def start(self, inputs: StepInputs) -> Callable[[], Sequence[VmRequest]] | None:
        """Begin making the requests of every planned node, in a thread of its own; returns
        what waits for them (None where they are not made early)."""
        if inputs.dry_run or inputs.repair or not inputs.nodes:
            return None
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="azure-requests")
        future = self._future = pool.submit(inputs.requests, inputs.nodes)
        pool.shutdown(wait=False)  # the thread ends with its one task
        self._names = tuple(inputs.nodes)
        return future.result

    def inputs(self, inputs: StepInputs) -> StepInputs:
        """`inputs` whose requests for every planned node are the ones made early."""
        future, names = self._future, self._names
        if future is None:
            return inputs
        made = future

        def requests(wanted: Sequence[str]) -> Sequence[VmRequest]:
            return made.result() if tuple(wanted) == names else inputs.requests(wanted)

        return replace(inputs, requests=requests)


def creation_steps(p: Provider) -> tuple[CreationStep, ...]:
    """Provider.creation_steps: base.Cloud's graph, its network and VM steps sharing the early
    requests."""
    early = EarlyRequests()

    def network(t: CloudTarget, i: StepInputs) -> Ensured:
        return p.ensure_network(t, dry_run=i.dry_run, addresses=early.start(i))

    steps = {s.name: s for s in Cloud.creation_steps(p)}
    steps["network"] = replace(steps["network"], ensure=network)
    steps["vms"] = replace(steps["vms"], ensure=lambda t, i: p.ensure_vms_step(t, early.inputs(i)))
    return tuple(steps.values())
