"""`cast create-cluster` on a real pseudo-terminal in the sandbox: the live rows while it
works, the final rows and the node table after; `cast delete-cluster` through a pipe: one
whole line per event."""

from __future__ import annotations

import re
import sys

import pytest

from tests.terminal import drawn_lines, run_in_pty, screen

from .conftest import SKIP

pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

SPINNER = re.compile("[\u2800-\u28ff]")


def test_create_cluster_shows_live_rows_on_a_terminal_and_whole_lines_through_a_pipe(cast):
    env = {**cast.env, "CAST_HOME": str(cast.state_dir)}
    args = [sys.executable, "-m", "provisioner", "create-cluster", "live", "--region", "eu-frankfurt",
            "--cloud", "aws:1:1", "--cloud", "gcp:0:1", "--latency-threshold-ms", "1000"]
    code, raw = run_in_pty(args, columns=120, rows=40, env=env, timeout=240)
    assert code == 0, raw
    drawn = drawn_lines(raw)
    assert any(SPINNER.match(line) and " vms " in line and re.search(r"\d/2 running", line) for line in drawn), drawn
    assert any(SPINNER.match(line) and " nodes " in line and "nodes booted" in line for line in drawn), drawn
    final = screen(raw)
    rows = {line.split()[1]: line for line in final if line[:1] in "✓✗-·!" and len(line.split()) > 2}
    assert set(rows) == {"cluster", "aws", "gcp", "mesh", "kubernetes"}, final
    assert re.match(r"✓ cluster +done +done +\S+ +3 nodes on 2 clouds$", rows["cluster"]), rows["cluster"]
    # The last step on a cloud: WireGuard opened to the nodes' addresses, once the VMs have them.
    assert re.match(r"✓ aws +firewall-peers +done +\S+ +\S+: add udp/51820 from 198\.", rows["aws"]), rows["aws"]
    assert any(re.search(r"✓ aws +vms +done +\S+ +2 running", line) for line in drawn), drawn
    assert rows["kubernetes"].startswith("- kubernetes") and "skipped" in rows["kubernetes"]
    result = next(i for i, line in enumerate(final) if line.startswith("live ready in eu-frankfurt"))
    assert all(final.index(row) < result for row in rows.values())  # the result comes once the view has ended
    assert [line.split()[0] for line in final[result:] if line.split()[0].startswith("live-")] == [
        "live-aws-m1", "live-aws-w1", "live-gcp-w1"], final
    assert not SPINNER.search("\n".join(final))

    deleted = cast("delete-cluster", "live", "--yes", env={"COLUMNS": "80"})
    lines = deleted.stderr.splitlines()
    assert lines and all(re.match(r"\[ +\d+\.\ds\] \S+ +\S+ +(start|run|done|fail) ", line + " ") for line in lines)
    assert any(line.endswith("aws           safety-check   done  no foreign VM") for line in lines), lines
    assert deleted.stdout.strip() == "deleted cluster live"
