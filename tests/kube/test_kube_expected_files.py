"""Node by node, the exact files and commands a real cluster gets, compared with the readable
files under tests/kube/expected/<node>/ (commands.sh lists the steps; the config files sit at
their target paths). After an intended change, regenerate them with
CAST_REGENERATE_EXPECTED=1 .venv/bin/pytest -q tests/kube/test_kube_expected_files.py
and review the diff."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .sample_cluster import expected_tree, sample_plan

EXPECTED = Path(__file__).parent / "expected"
NOT_PLAN = {"README.md"}


def _on_disk() -> dict[str, str]:
    return {
        str(p.relative_to(EXPECTED)): p.read_text()
        for p in sorted(EXPECTED.rglob("*"))
        if p.is_file() and str(p.relative_to(EXPECTED)) not in NOT_PLAN
    }


def _regenerate(tree: dict[str, str]) -> None:
    for child in EXPECTED.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
    for relative, text in tree.items():
        target = EXPECTED / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


@pytest.fixture(scope="module")
def tree() -> dict[str, str]:
    generated = expected_tree(sample_plan())
    if os.environ.get("CAST_REGENERATE_EXPECTED") == "1":
        _regenerate(generated)
    return generated


def test_every_node_gets_exactly_the_expected_set_of_files(tree: dict[str, str]) -> None:
    assert sorted(tree) == sorted(_on_disk())


@pytest.mark.parametrize("relative", sorted(expected_tree(sample_plan())))
def test_file_matches_expected(tree: dict[str, str], relative: str) -> None:
    path = EXPECTED / relative
    assert path.is_file(), f"missing expected file {relative} (regenerate, then review)"
    assert tree[relative] == path.read_text()
