"""What local hosts leave on the machine: nothing. Their /run/sshd, /run/wireguard and
/var/lib/cast are in each host's own root, never made here; /run/cast-hosts is removed when
the last run closes or its leftovers are cleaned up after a crash; what existed before
(/etc/wireguard from wireguard-tools) stays. Needs root; run alone (the machine-wide lock)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provisioner.sandbox.hosts import RUN_ROOT, LocalHosts, cleanup_leftovers, require_support

from .conftest import keypair

pytestmark = pytest.mark.root

MADE = ("/run/sshd", "/run/wireguard", "/var/lib/cast")


def _clean_machine() -> dict[str, bool]:
    """Remove what earlier runs left (empty directories only), and say what exists now."""
    reason = require_support()
    if reason:
        pytest.skip(f"local hosts need root, namespaces and sshd: {reason}")
    if RUN_ROOT.is_dir() and any(p.is_dir() for p in RUN_ROOT.iterdir()):
        pytest.skip(f"another run of local hosts is active under {RUN_ROOT}")
    if Path("/run/sshd.pid").exists():
        pytest.skip("the machine's own sshd runs: /run/sshd may be its own")
    for path in (*MADE, str(RUN_ROOT)):
        for leftover in sorted(Path(path).glob("*")) if path == str(RUN_ROOT) else ():
            leftover.unlink()
        if Path(path).is_dir() and not any(Path(path).iterdir()):
            os.rmdir(path)
    return {path: Path(path).exists() for path in (*MADE, "/etc/wireguard", str(RUN_ROOT))}


def _one_host(prefix: str) -> LocalHosts:
    hosts = LocalHosts(prefix)
    hosts.add_group("east", "198.19.0.240/29")
    hosts.add_host("l1", "east", "198.19.0.242", keypair()[0], keypair()[1])
    return hosts


@pytest.mark.parametrize("ending", ["close", "crash"])
def test_the_last_run_leaves_no_directory_behind(ending: str) -> None:
    before = _clean_machine()
    prefix = f"lo{os.getpid() % 100000}"
    hosts = _one_host(prefix)
    try:  # a host's directories are its own: none is made on the machine, even while it runs
        assert {path: Path(path).exists() for path in MADE} == {path: before[path] for path in MADE}
    finally:
        if ending == "close":
            hosts.close()
        else:  # the process died: the next `cast sandbox down` cleans up after it
            for host in hosts.hosts.values():
                if host.sshd:
                    host.sshd.kill()
            cleanup_leftovers(prefix)
    after = {path: Path(path).exists() for path in before}
    assert after == before, "left behind: " + ", ".join(p for p in after if after[p] and not before[p])
