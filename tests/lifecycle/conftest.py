"""A sandbox for the lifecycle tests: started once per module with `cast sandbox up`, as a
user would, in a private state directory; stopped with `cast sandbox down`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provisioner.clouds import open_cloud
from provisioner.clouds.base import ClusterRef
from provisioner.regions import load_region_map


def _support() -> str | None:
    if os.geteuid() != 0:
        return "the sandbox needs root (network namespaces for its VMs); CI runs these as root"
    for tool in ("ip", "wireguard-go", "wg", "wg-quick"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/setup.sh installs it)"
    if not Path("/usr/sbin/sshd").exists():
        return "openssh-server is not installed (scripts/setup.sh installs it)"
    return None


SKIP = _support()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


class CastRunner:
    """Runs `cast` as a subprocess with the sandbox's environment and a private state dir."""

    def __init__(self, state_dir: Path, env: dict[str, str]):
        self.state_dir = state_dir
        self.env = env

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, **self.env, "CAST_HOME": str(self.state_dir), "COLUMNS": "200", **(extra or {})}

    def __call__(self, *args: str, check: bool = True, timeout: float = 240,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "provisioner", *args], env=self.environ(env),
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"cast {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "provisioner", *args], env=self.environ(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def journal(self, name: str) -> list[tuple[str, str, str]]:
        """(cloud, step, phase) rows of a cluster's journal, read straight from the store."""
        db = self.state_dir / "state.db"
        if not db.exists():
            return []
        with sqlite3.connect(db, timeout=30) as conn:
            try:
                return conn.execute(
                    "SELECT cloud, step, phase FROM journal WHERE cluster_uuid IN "
                    "(SELECT uuid FROM clusters WHERE name = ?) ORDER BY id", (name,)
                ).fetchall()
            except sqlite3.OperationalError:
                return []

    def cluster(self, name: str) -> dict:
        return json.loads(self("status", name, "--output", "json").stdout)

    def vms(self, name: str, uuid: str) -> dict[str, list[str]]:
        """What each cloud runs for the cluster, asked through the providers (the SDKs)."""
        spec = self.cluster(name)["spec"]
        region = load_region_map().region(spec["region"])
        found = {}
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            for cloud in spec["clouds"]:
                c = region.clouds[cloud]
                provider = open_cloud(cloud, c.region, c.zone)
                found[cloud] = sorted(vm.name for vm in provider.list_vms(ClusterRef(name, uuid)))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return found

    @contextlib.contextmanager
    def ssh(self, uuid: str):
        """An SSH pool onto the cluster's nodes (cast's own node access, host keys pinned),
        and {node name: NodeAccess}."""
        from provisioner.nodes.ssh import NodeAccess, SshPool, load_private_key
        from provisioner.state import StateStore

        store = StateStore(self.state_dir)
        key = load_private_key(str(store.secrets_dir(uuid, create=False) / "ssh_key"))
        access = {n.name: NodeAccess(n.name, n.public_ip, n.host_key) for n in store.nodes(uuid) if n.public_ip}
        with SshPool(key) as pool:
            yield pool, access

    def leftovers(self, name: str, uuid: str, spec: dict) -> dict[str, list[str]]:
        """Everything any cloud still holds of a cluster, through the providers."""
        region = load_region_map().region(spec["region"])
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            out = {}
            for cloud in spec["clouds"]:
                c = region.clouds[cloud]
                out[cloud] = [str(r) for r in open_cloud(cloud, c.region, c.zone).list_resources(ClusterRef(name, uuid))]
            return out
        finally:
            os.environ.clear()
            os.environ.update(saved)


def wait_for(predicate, timeout: float = 60.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cast(tmp_path_factory) -> CastRunner:
    state = tmp_path_factory.mktemp("cast-home")
    runner = CastRunner(state, {})
    runner("sandbox", "up", "--region", "eu-frankfurt", timeout=180)
    try:
        runner.env = json.loads(runner("sandbox", "env", "--output", "json").stdout)
        yield runner
    finally:
        runner("sandbox", "down", check=False, timeout=120)
