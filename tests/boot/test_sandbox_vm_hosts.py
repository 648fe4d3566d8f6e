"""`cast sandbox up --hosts vm`: a VM made through the emulated EC2 API boots as a QEMU guest with
the user-data the API received (cast's own, with the default package source: pkgs.k8s.io,
which the sandbox's network cannot reach, so the boot marker names the first failed step);
terminating the instance stops the guest, and `cast sandbox down` leaves no process, tap,
namespace or file behind.

One guest, minutes under TCG: run under the root-test lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest

from provisioner.cloudinit import BOOT_FAILURES, BOOT_MARKER, render_user_data
from provisioner.keys import new_ed25519
from provisioner.nodes.ssh import NodeAccess, SshPool
from provisioner.sandbox.supervisor import hosts_prefix
from provisioner.sandbox.vm_image import CACHE_ENV

from .conftest import CACHE, _skip_reason

pytestmark = [pytest.mark.timeout(1500)]
PROJECT = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT_S = 900.0


def _cast(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provisioner", *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT, timeout=timeout)


def _qemu_pids(prefix: str) -> list[int]:
    """The qemu processes in the sandbox's internet namespace (where its guests run)."""
    done = subprocess.run(["ip", "netns", "pids", f"{prefix}-inet"], capture_output=True, text=True)
    pids = [int(p) for p in done.stdout.split()] if done.returncode == 0 else []
    found = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith("qemu-system"):
                found.append(pid)
        except OSError:
            continue
    return found


@pytest.mark.root
def test_a_vm_made_through_the_cloud_api_boots_its_own_user_data(tmp_path: Path) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    import boto3

    home = tmp_path / "cast-home"
    env = dict(os.environ, CAST_HOME=str(home), **{CACHE_ENV: str(CACHE)})
    started = time.monotonic()
    up = _cast(env, "sandbox", "up", "--hosts", "vm")
    assert up.returncode == 0, up.stderr
    print(f"\nsandbox up --hosts vm: {time.monotonic() - started:.1f}s: {up.stderr.strip()}")
    assert "VMs boot as QEMU guests (tcg:" in up.stderr or "VMs boot as QEMU guests (kvm:" in up.stderr
    prefix = hosts_prefix(home / "sandbox")
    try:
        sandbox_env = json.loads(_cast(env, "sandbox", "env", "--output", "json").stdout)
        ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=sandbox_env["AWS_ENDPOINT_URL"],
                           aws_access_key_id=sandbox_env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=sandbox_env["AWS_SECRET_ACCESS_KEY"])
        image = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
        host_key, client = new_ed25519("sbx-worker"), new_ed25519("cast-sbx")
        user_data = render_user_data(cluster="sbx", node="sbx-worker", role="worker", cloud="aws",
                                     host_key_private=host_key.private, host_key_public=host_key.public,
                                     authorized_key=client.public)
        made = ec2.run_instances(ImageId=image, InstanceType="t3.medium", MinCount=1, MaxCount=1,
                                 UserData=user_data)["Instances"][0]
        created = time.time()
        instance = ec2.describe_instances(InstanceIds=[made["InstanceId"]])["Reservations"][0]["Instances"][0]
        access = NodeAccess("sbx-worker", instance["PublicIpAddress"], host_key.public)
        key = paramiko.Ed25519Key.from_private_key(_text_io(client.private))
        with SshPool(key) as pool:
            pool.wait_reachable(access, timeout_s=BOOT_TIMEOUT_S)
            ssh_s = time.time() - created
            deadline = time.monotonic() + BOOT_TIMEOUT_S
            while pool.run(access, f"test -f {BOOT_MARKER}").status != 0 and time.monotonic() < deadline:
                time.sleep(2)
            marker_s = time.time() - created
            # the guest's cloud-init ran the user-data the API got: its marker, its hostname
            assert pool.check(access, f"cat {BOOT_MARKER}") == (
                "kubernetes=unavailable\nreason=Kubernetes apt key not downloaded\n")
            assert pool.check(access, f"cat {BOOT_FAILURES}").splitlines() == [
                "Kubernetes apt key not downloaded", "kubeadm, kubelet and kubectl not installed"]
            assert pool.check(access, "hostname").strip() == "sbx-worker"
            assert "status: done" in pool.check(access, "cloud-init status")
            # the kernel's WireGuard is there (no wireguard-go in the guest)
            pool.check(access, "ip link add wgt type wireguard && ip link del wgt")
        print(f"sandbox VM {access.host}: SSH {ssh_s:.1f}s, marker {marker_s:.1f}s after run_instances")
        assert _qemu_pids(prefix), "no guest runs in the sandbox's network namespace"
        ec2.terminate_instances(InstanceIds=[made["InstanceId"]])
        deadline = time.monotonic() + 30
        while _qemu_pids(prefix) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _qemu_pids(prefix) == [], "terminating the instance did not stop its guest"
    finally:
        down = _cast(env, "sandbox", "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert not [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                if n.startswith(prefix)]
    assert not Path(f"/run/cast-hosts/{prefix}").exists()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"{prefix}-" not in links
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"/run/cast-hosts/{prefix}/" not in ps, "a process of the sandbox is left"


def _text_io(private: bytes):  # type: ignore[no-untyped-def]
    import io

    return io.StringIO(private.decode())


def test_a_bad_pool_is_refused_before_the_guest_image_is_built(tmp_path: Path) -> None:
    # no root needed: the pool is checked first, and nothing is written (no image, no state)
    import ipaddress

    from tests.sandbox.test_sandbox_pools import own_address

    address = own_address()
    if address is None:
        pytest.skip("this machine has no IPv4 address besides loopback")
    # a /22 holding the machine's address: fewer than the four free /24s the sandbox needs
    block = str(ipaddress.IPv4Network(f"{address}/22", strict=False))
    home = tmp_path / "home"
    done = _cast(dict(os.environ, CAST_HOME=str(home)), "sandbox", "up", "--hosts", "vm", "--pool", block,
                 timeout=60)
    assert done.returncode == 2, done.stderr
    assert "--pool" in done.stderr
    assert not home.exists()
