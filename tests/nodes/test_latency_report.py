"""The latency verdict: pure, table-driven."""

from __future__ import annotations

import json

import pytest

from provisioner.errors import LatencyError
from provisioner.nodes.latency import LatencyReport, PairLatency


def pair(source: str, target: str, avg: float | None, received: int = 5) -> PairLatency:
    group = {"a": "aws", "g": "gcp", "z": "azure"}
    return PairLatency(source, target, group[source[0]], group[target[0]], 5, received,
                       None if avg is None else avg - 1, avg, None if avg is None else avg + 1)


@pytest.mark.parametrize(
    ("pairs", "violating"),
    [
        pytest.param([pair("a1", "g1", 9.9), pair("g1", "a1", 10.0)], [], id="at the threshold"),
        pytest.param([pair("a1", "g1", 10.1)], [("a1", "g1")], id="over it"),
        pytest.param([pair("a1", "a2", 50.0)], [], id="inside one cloud: never judged"),
        pytest.param([pair("a1", "z1", 2.0, received=4)], [("a1", "z1")], id="a lost packet"),
        pytest.param([pair("g1", "z1", None, received=0)], [("g1", "z1")], id="no reply"),
        pytest.param([pair("a1", "a2", None, received=0)], [], id="no reply inside one cloud"),
    ],
)
def test_violations_are_the_cross_cloud_pairs_over_threshold_or_losing(pairs, violating):
    report = LatencyReport(tuple(pairs), 10.0, 5, 0.2)
    assert [(p.source, p.target) for p in report.violations()] == violating
    assert report.ok == (not violating)
    data = json.loads(report.to_json())
    assert data["violations"] == [list(v) for v in violating] and len(data["pairs"]) == len(pairs)
    if violating:
        with pytest.raises(LatencyError) as caught:
            report.raise_on_violations()
        assert caught.value.exit_code == 3
        assert all(f"{s}->{t}" in str(caught.value) for s, t in violating)
    else:
        report.raise_on_violations()


def test_loss_is_a_share_of_pings_sent():
    assert pair("a1", "g1", 1.0, received=4).loss == pytest.approx(0.2)
    assert PairLatency("a1", "g1", "aws", "gcp", 0, 0, None, None, None).loss == 1.0


@pytest.mark.parametrize("n", range(1, 13))
def test_each_pair_is_measured_once_and_the_nodes_share_the_work(n):
    from provisioner.nodes.latency import measured_from

    names = [f"node-{i:02}" for i in reversed(range(n))]  # the order given does not matter
    targets = measured_from(names)
    assert set(targets) == set(names)
    measured = [frozenset((a, b)) for a, peers in targets.items() for b in peers]
    assert all(a not in peers for a, peers in targets.items())
    assert len(measured) == len(set(measured)) == n * (n - 1) // 2  # every pair, once
    assert {len(peers) for peers in targets.values()} <= {(n - 1) // 2, n // 2}
