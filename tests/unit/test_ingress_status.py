"""`cast status` shows each cloud's load balancer as the journal's newest load-balancer step that
changed something left it; what the journal says is validated before it is shown."""

from __future__ import annotations

from provisioner.ingress_status import BalancerState, balancers
from provisioner.state.rows import JournalEntry

NODES = {"demo-aws-w1", "demo-aws-w2", "demo-gcp-w1"}


def entry(cloud: str, detail: str, phase: str = "end", step: str = "load-balancer") -> JournalEntry:
    return JournalEntry(cloud, step, phase, detail, 0.0)


def test_the_newest_change_stands_and_a_step_that_changed_nothing_does_not_hide_it() -> None:
    journal = [
        entry("aws", "created the load balancer; at 198.18.0.9: demo-aws-w1"),
        entry("gcp", "created the forwarding rule; at 198.18.1.4: demo-gcp-w1"),
        entry("aws", "added demo-aws-w2; at 198.18.0.9: demo-aws-w1, demo-aws-w2"),
        entry("aws", ""),  # a re-run that changed nothing
        entry("aws", "", phase="begin"),
    ]
    assert balancers(journal, NODES) == [BalancerState("aws", "198.18.0.9", ("demo-aws-w1", "demo-aws-w2")),
                                         BalancerState("gcp", "198.18.1.4", ("demo-gcp-w1",))]


def test_a_deleted_balancer_is_not_shown() -> None:
    journal = [entry("aws", "created the load balancer; at 198.18.0.9: demo-aws-w1"),
               entry("aws", "delete the load balancer: the cloud has no worker left")]
    assert balancers(journal, NODES) == []


def test_what_is_not_an_address_or_not_a_node_of_the_cluster_is_not_shown() -> None:
    journal = [entry("aws", "at 198.18.0.9\x1b[2J: demo-aws-w1"),
               entry("gcp", "at 198.18.1.4: demo-gcp-w1, evil\x1b[31m, demo-aws-w9"),
               entry("azure", "at 999.1.1.1: demo-aws-w1"),
               entry("digitalocean", "at 198.18.3.7: x", phase="fail"),
               entry("aws", "at 198.18.0.8: demo-aws-w1", step="vms")]
    assert balancers(journal, NODES) == [BalancerState("gcp", "198.18.1.4", ("demo-gcp-w1",))]
