"""Progress and tables as a user sees them: a live view in a real pseudo-terminal, whole lines
and whole table values through a pipe, and text from clouds and nodes printed literally."""

import os
import re
import subprocess
import sys

from provisioner.state import NodeRow, StateStore
from tests.terminal import CSI, clean_env, drawn_lines, run_in_pty, screen
from tests.unit.progress_driver import DURING, LONG_DETAIL

DRIVER = [sys.executable, "-m", "tests.unit.progress_driver"]
CAST = [sys.executable, "-m", "provisioner"]
SPINNER = re.compile("[\u2800-\u28ff]")  # rich's "dots" spinner frames are braille cells
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_a_terminal_shows_live_rows_then_the_final_ones_and_the_result():
    code, raw = run_in_pty(DRIVER)
    assert code == 0, raw
    drawn = drawn_lines(raw)
    # While the VMs boot, the row of each cloud spins and counts, with its elapsed time.
    for count in ("1/3 running", "2/3 running", "1/2 running"):
        live = [line for line in drawn if count in line]
        assert live, f"no frame showed {count!r}:\n" + "\n".join(drawn)
        assert any(SPINNER.match(line) and " vms " in line and re.search(r" \d+\.\ds ", line) for line in live)
    final = screen(raw)
    assert final[0] == DURING and final[-1] == "RESULT demo ready", final
    rows = final[1:-1]
    assert [r.split()[1] for r in rows] == ["cluster", "aws", "gcp", "mesh", "kubernetes"], rows
    assert re.match(r"✓ cluster +done +done +\d+\.\ds +5 nodes on 2 clouds$", rows[0]), rows[0]
    assert re.match(r"✓ aws +vms +done +\d+\.\ds +3 running$", rows[1]), rows[1]
    assert re.match(r"- kubernetes +bootstrap +skipped .*cannot run a kubelet$", rows[4]), rows[4]
    assert not SPINNER.search("\n".join(final))
    assert "\x1b[?25h" in raw  # the cursor is given back


def test_a_failure_on_a_terminal_stays_shown_whole_and_literal():
    code, raw = run_in_pty(DRIVER + ["--fail"], columns=60)
    assert code == 0, raw
    final = screen(raw)
    assert final[-1] == "RESULT demo ready"
    start = next(i for i, line in enumerate(final) if line.startswith("✗ mesh"))
    mesh = final[start:-1]
    assert "failed" in mesh[0]
    shown = "".join(line.strip() for line in mesh)  # the detail folds at 60 columns, never cut
    assert "[/etc/wireguard/wg0.conf][link=http://x][31mred" in shown.replace(" ", "")
    assert "…" not in raw and "\x1b[31m" not in raw


def test_stdout_into_a_file_stays_out_of_the_live_view_on_stderr(tmp_path):
    with open(tmp_path / "out", "w") as out:
        code, raw = run_in_pty(DRIVER, stdout=out)
    assert code == 0, raw
    assert (tmp_path / "out").read_text() == f"{DURING}\nRESULT demo ready\n"
    final = screen(raw)
    assert [r.split()[1] for r in final] == ["cluster", "aws", "gcp", "mesh", "kubernetes"], final


def test_through_a_pipe_every_event_is_one_whole_line():
    out = subprocess.run(DRIVER, capture_output=True, text=True, cwd=ROOT, env=clean_env(), check=True)
    assert out.stdout == f"{DURING}\nRESULT demo ready\n"
    lines = out.stderr.splitlines()
    assert all(re.match(r"\[ +\d+\.\ds\] \S+ +\S+ +(start|run|done|fail|skip) ", line + " ") for line in lines), lines
    assert len(LONG_DETAIL) > 300
    assert any(line.endswith("aws           network        done  " + LONG_DETAIL) for line in lines)
    assert [line.split()[-2] for line in lines if " aws " in line and " run " in line] == ["0/3", "1/3", "2/3", "3/3"]
    assert "…" not in out.stderr and "\x1b" not in out.stderr


def test_forced_colours_through_a_pipe_stay_whole_lines_without_a_live_view():
    out = subprocess.run(DRIVER, capture_output=True, text=True, cwd=ROOT, env=clean_env(FORCE_COLOR="1"), check=True)
    assert "\x1b[" in out.stderr  # coloured, as asked
    assert not re.search(r"\x1b\[(\d*A|2K|\?25l)", out.stderr)  # but no cursor moves: no live view
    lines = [CSI.sub("", line) for line in out.stderr.splitlines()]
    assert any(line.endswith("aws           network        done  " + LONG_DETAIL) for line in lines), lines


def test_remote_text_through_a_pipe_is_printed_literally_without_controls():
    out = subprocess.run(DRIVER + ["--fail"], capture_output=True, text=True, cwd=ROOT, env=clean_env())
    assert out.returncode == 0, out.stderr
    failed = [line for line in out.stderr.splitlines() if " fail " in line]
    assert len(failed) == 1
    assert failed[0].endswith(
        "mesh          wireguard      fail  wg: Unable to modify interface [/etc/wireguard/wg0.conf] "
        "[link=http://x] [31mred")
    assert "\x1b" not in out.stderr and "\r" not in out.stderr


def test_the_node_table_through_a_pipe_keeps_every_value_whole(tmp_path):
    from provisioner.keys import new_ed25519

    store = StateStore(tmp_path)
    uuid = "b3a120c1-0000-4000-8000-000000000001"
    store.create_cluster(uuid, "demo", "us-east", {})
    # a size longer than any terminal, with brackets that must not be read as markup
    size = "m6i.large-[bold]with[/]-a-size-name-far-longer-than-any-terminal-" + "x" * 60
    cloud = "digitalocean"  # cut to `digita…` through a pipe before
    for i, name in enumerate(["demo-aws-master-1", "demo-do-worker-with-a-long-name-2"]):
        host_key = new_ed25519(name).public
        store.upsert_node(NodeRow(uuid, name, cloud, "worker", f"10.99.0.{i + 1}", size, "running",
                                  f"i-{i}", f"203.0.113.{i + 1}", None, host_key, None))
    out = subprocess.run([*CAST, "--state-dir", str(tmp_path), "status", "demo"], capture_output=True, text=True,
                         cwd=ROOT, env=clean_env(), check=True)
    rows = [line for line in out.stdout.splitlines() if "203.0.113." in line]
    assert len(rows) == 2, out.stdout
    assert sorted(row.split()[0] for row in rows) == ["demo-aws-master-1", "demo-do-worker-with-a-long-name-2"]
    for row in rows:
        assert row.split()[1:5] == [cloud, "worker", size, "running"], row
    assert "…" not in out.stdout


def test_cast_regions_never_cuts_a_value_through_a_pipe_or_on_a_narrow_terminal():
    import yaml

    with open(os.path.join(ROOT, "regions.yaml")) as f:
        regions = yaml.safe_load(f)["regions"]
    names = [r["name"] for r in regions.values()]
    out = subprocess.run([*CAST, "regions"], capture_output=True, text=True, cwd=ROOT, env=clean_env(), check=True)
    lines = out.stdout.splitlines()
    for name in names:
        assert any(name in line for line in lines), name
    assert "…" not in out.stdout
    code, raw = run_in_pty([*CAST, "regions"], columns=70)
    assert code == 0 and "…" not in raw
    assert "us-east" in raw
