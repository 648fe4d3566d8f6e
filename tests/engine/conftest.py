"""The engine on fakes, as an ordinary user: a state store in a temporary directory, the four
clouds as one FakeWorld (tests.fakes.cloud) behind Engine's cloud_factory, their VMs' nodes as
FakeNodes (tests.fakes.nodes) behind its node_side hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.engine import Engine
from provisioner.regions import load_region_map
from provisioner.spec import ClusterSpec, build_spec
from provisioner.state import StateStore
from tests.fakes.cloud import FakeWorld
from tests.fakes.nodes import FakeNodes

REGIONS = load_region_map()
REGION = "eu-frankfurt"  # all four clouds in one metro
FOUR = ["aws:1:1", "gcp:0:1", "azure:0:1", "digitalocean:0:1"]


class RecordingStore(StateStore):
    """The state store, with every journal row also kept in order in `rows`."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.rows: list[tuple[str, str, str, str]] = []

    def journal(self, cluster_uuid: str, cloud: str, step: str, phase: str, detail: str = "") -> None:
        super().journal(cluster_uuid, cloud, step, phase, detail)
        self.rows.append((cloud, step, phase, detail))

    def phases(self, *steps: tuple[str, str]) -> list[tuple[str, str, str]]:
        """(scope, step, phase) of the rows of these steps, in order (every row without `steps`)."""
        return [(c, s, p) for c, s, p, _ in self.rows if not steps or (c, s) in steps]


def make_spec(name: str, clouds: list[str] = FOUR, **kw) -> ClusterSpec:
    return build_spec(REGIONS, name=name, region=REGION, cloud_flags=clouds, latency_threshold_ms=1000, **kw)


@pytest.fixture
def world() -> FakeWorld:
    # DigitalOcean-like: one cloud picks its own network block; GCP-like: one takes user-data back.
    return FakeWorld(choose_network={"digitalocean"}, removes_user_data={"gcp"})


@pytest.fixture
def nodes(world: FakeWorld) -> FakeNodes:
    return FakeNodes(world)


@pytest.fixture
def store(tmp_path: Path) -> RecordingStore:
    return RecordingStore(tmp_path / "cast-home")


@pytest.fixture
def engine(store: RecordingStore, world: FakeWorld, nodes: FakeNodes) -> Engine:
    return Engine(store, REGIONS, cloud_factory=world.open, node_side=nodes.open)
