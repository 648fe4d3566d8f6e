"""The one journaled executor (provisioner.graph): order, parallelism, failures, the network a
cloud chose, steps not needed or skipped, dry runs."""

from __future__ import annotations

import threading
import time

import pytest

from provisioner.clouds.base import CloudTarget, ClusterRef, Ensured
from provisioner.graph import Graph, Journal, Step, StepError, run_graph
from provisioner.progress import Progress

from .conftest import RecordingStore

REF = ClusterRef("g", "00000000-0000-4000-8000-000000000001")


def journal(store: RecordingStore, dry_run: bool = False) -> Journal:
    return Journal(store, "g", REF.uuid, Progress(None), dry_run=dry_run)


def target(cidr: str = "10.1.0.0/16") -> CloudTarget:
    return CloudTarget(REF, "r", None, cidr, "10.1.0.0/24", {}, {})


def ok(*actions: str, cidr: str | None = None):
    return lambda _t: Ensured(actions=actions, network_cidr=cidr)


@pytest.fixture
def store(tmp_path) -> RecordingStore:
    return RecordingStore(tmp_path / "home")


def test_steps_run_after_what_they_need_and_side_by_side_otherwise(store):
    inside: list[str] = []
    both = threading.Barrier(2, timeout=5)  # fails unless the two run at the same time

    def side(name: str):
        def work(_t):
            both.wait()
            inside.append(name)
            return Ensured(actions=(name,))
        return work

    g = Graph()
    g.add(Step("a", "network", ok("net")))
    g.add(Step("a", "subnet", side("subnet"), after=(("a", "network"),)))
    g.add(Step("a", "firewall", side("firewall"), after=(("a", "network"),)))
    g.add(Step("a", "vms", ok("vms"), after=(("a", "subnet"), ("a", "firewall"))))
    outcome = run_graph(g, journal(store), {"a": target()})
    ends = [s for c, s, p in store.phases() if p == "end"]
    assert ends[0] == "network" and ends[-1] == "vms" and set(ends[1:3]) == {"subnet", "firewall"}
    assert outcome.actions() == ["a: net", "a: subnet", "a: firewall", "a: vms"]  # in declared order


def test_a_failure_blocks_what_needs_it_lets_the_rest_finish_and_is_raised(store):
    g = Graph()
    g.add(Step("a", "network", lambda _t: (_ for _ in ()).throw(RuntimeError("boom"))))
    g.add(Step("a", "vms", ok("never"), after=(("a", "network"),)))
    g.add(Step("b", "network", lambda _t: (time.sleep(0.1), Ensured(actions=("slow",)))[1]))
    g.add(Step("b", "vms", ok("made"), after=(("b", "network"),)))
    with pytest.raises(StepError) as failed:
        run_graph(g, journal(store))
    assert str(failed.value).startswith("a: step network failed: boom\nRun the same command again")
    assert ("a", "network", "fail", "RuntimeError: boom") in store.rows
    assert ("a", "vms", "begin") not in store.phases()
    assert ("b", "vms", "end") in store.phases()  # independent of the failure: it went on


def test_a_chosen_network_block_replaces_the_targets_for_the_later_steps_of_that_scope(store):
    seen: dict[str, str] = {}

    def look(name: str):
        def work(t):
            seen[name] = f"{t.network_cidr} {t.subnet_cidr}"
            return Ensured()
        return work

    g = Graph()
    g.add(Step("do", "network", ok(cidr="10.7.16.0/20")))
    g.add(Step("do", "subnet", look("do"), after=(("do", "network"),)))
    g.add(Step("aws", "network", ok(cidr="10.1.0.0/16")))  # the same block: nothing replaced
    g.add(Step("aws", "subnet", look("aws"), after=(("aws", "network"),)))
    run_graph(g, journal(store), {"do": target("10.9.0.0/20"), "aws": target()})
    assert seen == {"do": "10.7.16.0/20 10.7.16.0/20", "aws": "10.1.0.0/16 10.1.0.0/24"}


def test_steps_not_needed_are_not_journaled_and_skipped_ones_say_why(store):
    g = Graph()
    g.add(Step("mesh", "wireguard", ok("up"), when=lambda: False))
    g.add(Step("kubernetes", "bootstrap", ok("never"), after=(("mesh", "wireguard"),), skip=lambda: "no kubelet"))
    outcome = run_graph(g, journal(store))
    assert store.rows == [("kubernetes", "bootstrap", "skip", "no kubelet")]
    assert outcome.results == {}


def test_a_dry_run_journals_nothing(store):
    g = Graph()
    g.add(Step("a", "network", ok("would create")))
    assert run_graph(g, journal(store, dry_run=True)).actions() == ["a: would create"]
    assert store.rows == [] and store.clusters() == []


def test_a_step_must_come_after_declared_steps():
    g = Graph()
    with pytest.raises(ValueError, match="undeclared"):
        g.add(Step("a", "vms", ok(), after=(("a", "network"),)))
