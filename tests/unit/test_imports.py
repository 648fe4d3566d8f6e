"""What a command imports, in a clean interpreter: no cloud SDK for the commands that call no
cloud, and only the SDK of the cluster's one cloud for a one-cloud command (from
google-cloud-compute only the service modules, never its package root, which imports every
service). Start-up time itself is measured by scripts/bench_perf.py --profile, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from provisioner.regions import load_region_map
from provisioner.sandbox.gcp_emulator import GcpEmulator
from provisioner.spec import build_spec
from provisioner.state import StateStore

SDKS = ("boto3", "botocore", "google.cloud.compute_v1", "google.auth", "google.api_core", "azure", "pydo")
# A service cast never calls: imported only by compute_v1's package root.
UNUSED_GCP_SERVICE = "google.cloud.compute_v1.services.accelerator_types"

# Runs the command line in this interpreter, then prints the modules it imported.
DRIVER = """
import json, sys
from provisioner.cli import cli
try:
    cli.main(args=sys.argv[1:], prog_name="cast")
except SystemExit as exc:
    code = exc.code
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported(args: list[str], env: dict[str, str] | None = None) -> tuple[int, set[str], str]:
    """(exit code, the modules imported, stderr) of `cast ARGS` in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"]), done.stderr


def sdks(modules: set[str]) -> set[str]:
    """The cloud SDKs among `modules` (by the prefixes in SDKS)."""
    return {sdk for sdk in SDKS if any(m == sdk or m.startswith(sdk + ".") for m in modules)}


@pytest.mark.parametrize("args", [
    ["--help"],
    ["regions"],
    ["create-cluster", "demo", "--region", "eu-frankfurt", "--cloud", "aws:1:1", "--cloud", "gcp:0:1",
     "--cloud", "azure:0:1", "--cloud", "digitalocean:0:1", "--dry-run"],
], ids=["help", "regions", "create-dry-run"])
def test_commands_that_call_no_cloud_import_no_cloud_sdk(args, tmp_path):
    code, modules, err = imported(["--state-dir", str(tmp_path), *args])
    assert code in (0, None), err
    assert sdks(modules) == set()


@pytest.fixture
def gcp_cluster(tmp_path, monkeypatch):
    """A one-cloud (GCP) cluster in a state directory, its cloud an emulator on loopback: the
    state directory and the environment that points cast at it."""
    regions = load_region_map()
    spec = build_spec(regions, name="onecloud", region="eu-frankfurt", cloud_flags=["gcp:1:0"])
    StateStore(tmp_path).create_cluster(str(uuid.uuid4()), spec.name, spec.region, spec.to_dict())
    with GcpEmulator(token="t") as emulator:
        yield tmp_path, {"CAST_GCP_ENDPOINT": emulator.url, "CAST_GCP_TOKEN": "t", "CAST_GCP_PROJECT": "cast-test"}


def test_a_one_cloud_command_imports_that_cloud_only_and_gcp_without_its_package_root(gcp_cluster):
    state, env = gcp_cluster
    code, modules, err = imported(["--state-dir", str(state), "delete-cluster", "onecloud", "--yes"], env)
    assert code in (0, None), err
    assert sdks(modules) == {"google.cloud.compute_v1", "google.auth", "google.api_core"}
    assert "google.cloud.compute_v1.services.instances" in modules
    assert UNUSED_GCP_SERVICE not in modules
    assert "jinja2" not in modules  # renders no user-data: the template engine stays out
    assert StateStore(Path(state)).cluster("onecloud") is None  # the command did its work


def test_an_azure_only_delete_imports_neither_the_compute_nor_the_network_sdk(tmp_path, monkeypatch):
    # The cluster's resource group and VNet are there (made here, through the SDKs): the
    # command's safety check lists the group's VMs and VNets and its teardown deletes the
    # group, all through azure-mgmt-resource.
    from provisioner.clouds.azure import Provider
    from provisioner.clouds.base import CloudTarget, ClusterRef
    from provisioner.plan import enforceable, make_plan
    from provisioner.sandbox.azure_emulator import AzureEmulator

    regions = load_region_map()
    spec = build_spec(regions, name="azonly", region="eu-frankfurt", cloud_flags=["azure:1:0"])
    uuid_ = str(uuid.uuid4())
    StateStore(tmp_path).create_cluster(uuid_, spec.name, spec.region, spec.to_dict())
    with AzureEmulator(token="t") as emulator:
        assert isinstance(emulator, AzureEmulator)
        env = {"CAST_AZURE_ENDPOINT": emulator.url, "CAST_AZURE_TOKEN": "t"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        cp = make_plan(spec, regions).cloud("azure")
        target = CloudTarget(ClusterRef("azonly", uuid_), cp.region, cp.zone, cp.network_cidr, cp.subnet_cidr,
                             enforceable(cp.firewall), cp.image)
        Provider(target.region).ensure_network(target)
        emulator.calls.clear()

        code, modules, err = imported(["--state-dir", str(tmp_path), "delete-cluster", "azonly", "--yes"], env)

        assert code in (0, None), err
        assert {m for m in modules if m.startswith(("azure.mgmt.compute", "azure.mgmt.network"))} == set()
        assert "azure.mgmt.resource.resources" in modules
        with emulator.lock:
            assert emulator.state.groups == {}  # the command did its work
            assert any("virtualMachines" in route for route in emulator.calls)  # the safety check ran
        assert emulator.errors == []
    assert StateStore(Path(tmp_path)).cluster("azonly") is None
