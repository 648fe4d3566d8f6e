"""A node that presents another host key than the pinned one is reported as a mismatch, not as
unreachable, and reconcile refuses (exit 4), with --dry-run too."""

from __future__ import annotations

import json
import sqlite3

import pytest

from provisioner.keys import new_ed25519

from .conftest import SKIP

pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def test_reconcile_reports_a_host_key_mismatch_and_exits_4(cast):
    created = cast("create-cluster", "pin", "--region", "eu-frankfurt", "--cloud", "aws:1:0",
                   "--latency-threshold-ms", "1000", "--output", "json")
    cluster = json.loads(created.stdout)
    try:
        assert cast("reconcile", "pin", "--dry-run").returncode == 0
        # The pinned key changes (as if the node were another machine at the same address).
        with sqlite3.connect(cast.state_dir / "state.db") as conn:
            conn.execute("UPDATE nodes SET host_key = ? WHERE name = 'pin-aws-m1'", (new_ed25519("pin-aws-m1").public,))
        for args in (("--dry-run",), ()):
            result = cast("reconcile", "pin", *args, check=False)
            assert result.returncode == 4, result.stderr
            assert "host key mismatch on pin-aws-m1" in result.stderr
            assert "mesh: pin-aws-m1: host key mismatch" in result.stderr
            assert "unreachable" not in result.stderr
    finally:
        cast("delete-cluster", "pin", "--yes", check=False)
    assert cast.leftovers("pin", cluster["uuid"], cluster["spec"]) == {"aws": []}
