"""What cast trusts on this machine: a state root only its user owns and can write, rows that
have the form cast writes, secrets never read through a symlink, and a sandbox whose state
file names a live supervisor and only shell-safe variables."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli import cli
from provisioner.private_files import UntrustedPathError
from provisioner.processes import process_start
from provisioner.sandbox import control
from provisioner.state import StateError, StateStore

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmS+5RSqnYIqLBOj44vY3fOoaXBmd1vGL1VX+wOQTZH demo-aws-m1"
UUID = "0b1c2d3e-0000-4000-8000-000000000001"


def _store(tmp_path: Path) -> StateStore:
    store = StateStore(tmp_path / "state")
    store.create_cluster(UUID, "demo", "us-east", {"name": "demo"})
    return store


def test_a_group_writable_state_root_is_refused_naming_the_path_and_the_fix(tmp_path: Path) -> None:
    store = _store(tmp_path)
    os.chmod(store.root, 0o770)
    result = CliRunner().invoke(cli, ["--state-dir", str(store.root), "list"])
    assert result.exit_code == 4
    assert f"{store.root} is writable by its group" in result.output and "chmod 700" in result.output
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    os.chmod(fresh, 0o777)
    with pytest.raises(UntrustedPathError, match="group and others"):
        StateStore(fresh).create_cluster(UUID, "demo", "us-east", {})
    assert list(fresh.iterdir()) == []  # nothing written


@pytest.mark.skipif(os.geteuid() != 0, reason="making a directory owned by another user needs root")
def test_a_state_root_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    os.chown(store.root, 65534, 65534)
    with pytest.raises(UntrustedPathError, match="owned by uid 65534, not by you"):
        store.cluster("demo")


@pytest.mark.parametrize(
    ("column", "value", "field"),
    [
        ("name", "demo\nbootcmd: [touch /tmp/owned]", "name"),
        ("name", "demo\n", "name"),  # passed `re.match` with `$`
        ("spec", json.dumps({"name": "other"}), "spec"),
        ("region", "us-east\r\n", "region"),
    ],
)
def test_a_cluster_row_cast_would_not_write_is_refused_on_load(tmp_path: Path, column: str, value: str,
                                                                field: str) -> None:
    store = _store(tmp_path)
    with sqlite3.connect(store.db_path) as conn:
        conn.execute(f"UPDATE clusters SET {column} = ?", (value,))
    with pytest.raises(StateError, match=f"clusters row .*: field {field} is"):
        store.clusters()


def _node(store: StateStore, **change: str | None) -> None:
    row = {"cluster_uuid": UUID, "name": "demo-aws-m1", "cloud": "aws", "role": "master", "mesh_ip": "10.4.0.1",
           "size": "m6i.large", "status": "meshed", "cloud_id": "i-1", "public_ip": "198.18.0.5",
           "private_ip": "10.0.0.5", "host_key": HOST_KEY,
           "wg_public_key": "YIqLBOj44vY3fOoaXBmd1vGL1VX+wOQTZHBmS+5RSqk=", **change}
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("DELETE FROM nodes")
        conn.execute(f"INSERT INTO nodes ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "demo-aws-m1\nruncmd"}, "name"),
        ({"public_ip": "fe80::1%eth0\nPostUp = id"}, "public_ip"),
        ({"public_ip": "fe80::1"}, "public_ip"),  # link-local: not what a cloud gives as public
        ({"mesh_ip": "10.4.0.1\n"}, "mesh_ip"),
        ({"host_key": "ssh-ed25519 AAAA\nevil"}, "host_key"),
        ({"host_key": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ demo"}, "host_key"),
        ({"wg_public_key": "x\n[Peer]"}, "wg_public_key"),
        ({"cloud": "elsewhere"}, "cloud"),
    ],
)
def test_a_node_row_cast_would_not_write_is_refused_on_load(tmp_path: Path, change: dict[str, str],
                                                             field: str) -> None:
    store = _store(tmp_path)
    _node(store)
    assert [n.name for n in store.nodes(UUID)] == ["demo-aws-m1"]
    _node(store, **change)
    with pytest.raises(StateError, match=f"nodes row .*: field {field} is"):
        store.nodes(UUID)


def test_a_symlinked_secret_is_not_followed(tmp_path: Path) -> None:
    store = _store(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.write_bytes(b"not a secret of this cluster")
    link = store.secrets_dir(UUID) / "ssh_key"
    link.symlink_to(outside)
    with pytest.raises(UntrustedPathError, match="symlink"):
        store.read_secret(UUID, "ssh_key")
    store.write_secret(UUID, "ssh_key", b"key")
    assert outside.read_bytes() == b"not a secret of this cluster"  # replaced the link, not written through
    assert not link.is_symlink() and store.read_secret(UUID, "ssh_key") == b"key"


# --- the sandbox directory ------------------------------------------------------------------


def _sandbox_state(directory: Path, **fields: object) -> None:
    directory.mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(directory.parent, 0o700)
    (directory / "sandbox.json").write_text(json.dumps({"region": "us-east", "env": {}, **fields}))


def _as_supervisor(pid: int) -> dict[str, object]:
    return {"pid": pid, "proc_start": process_start(pid), "uid": os.geteuid()}


def test_sandbox_env_refuses_a_key_that_is_not_a_variable_name_and_quotes_values(tmp_path: Path) -> None:
    directory = control.sandbox_dir(tmp_path / "state")
    value = "http://127.0.0.1:1/ x'$(touch owned)"
    _sandbox_state(directory, **_as_supervisor(os.getpid()), env={"CAST_GCP_ENDPOINT": value})
    shown = CliRunner().invoke(cli, ["--state-dir", str(tmp_path / "state"), "sandbox", "env"])
    assert shown.exit_code == 0, shown.output
    evaluated = subprocess.run(["sh", "-c", f'{shown.output}\nprintf %s "$CAST_GCP_ENDPOINT"'], cwd=tmp_path,
                               capture_output=True, text=True, check=True)
    assert evaluated.stdout == value and not (tmp_path / "owned").exists()

    _sandbox_state(directory, **_as_supervisor(os.getpid()), env={"A=1; touch owned; B": "x"})
    refused = CliRunner().invoke(cli, ["--state-dir", str(tmp_path / "state"), "sandbox", "env"])
    assert refused.exit_code == 1
    assert "not [A-Z_][A-Z0-9_]*" in refused.output and "export" not in refused.output


def test_a_process_with_the_supervisors_command_line_is_not_taken_for_the_supervisor(tmp_path: Path) -> None:
    directory = control.sandbox_dir(tmp_path / "state")
    impostor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "provisioner.sandbox.supervisor"])
    try:
        # the pid of a supervisor that died, now another process's: its start time differs
        _sandbox_state(directory, pid=impostor.pid, proc_start="1", uid=os.geteuid())
        assert control.read_state(directory) is None
        _sandbox_state(directory, pid=impostor.pid)  # what an older cast wrote: no start time, no uid
        assert control.read_state(directory) is None
        _sandbox_state(directory, **{**_as_supervisor(impostor.pid), "uid": os.geteuid() + 1})
        assert control.read_state(directory) is None
        _sandbox_state(directory, **_as_supervisor(impostor.pid))
        assert control.read_state(directory) is not None
    finally:
        impostor.kill()
        impostor.wait()


def test_the_sandbox_log_and_state_are_never_written_or_read_through_a_symlink(tmp_path: Path) -> None:
    directory = control.sandbox_dir(tmp_path / "state")
    directory.mkdir(parents=True, mode=0o700)
    target = tmp_path / "target"
    target.write_text("keep")
    (directory / "supervisor.log").symlink_to(target)
    with pytest.raises(UntrustedPathError, match="symlink"):
        control.open_log(directory)
    (directory / "sandbox.json").symlink_to(target)
    with pytest.raises(UntrustedPathError, match="symlink"):
        control.read_state(directory)
    assert target.read_text() == "keep"
