"""What a cloud, a node or a state file returns is rendered into other nodes' files only in the
form cast writes: addresses without a scope id (Python's ipaddress accepts one, newlines and
all) and no line break in any rendered field."""

from __future__ import annotations

import base64

import pytest

from provisioner.cloudinit import render_user_data
from provisioner.clouds.base import UnsafeReplyError, Vm
from provisioner.errors import InputError
from provisioner.keys import new_ed25519
from provisioner.kube.bootstrap import hosts_command
from provisioner.kube.kubeadm import KubeNode
from provisioner.mesh import MeshMember, NodeConfig, Peer, plan_mesh, render_wg_quick

SCOPED = "fe80::1%eth0\nPostUp=id"  # ipaddress.ip_address accepts it, newline and all


@pytest.mark.parametrize("address", [SCOPED, "fe80::1", "10.0.0.1 ", "fd00::1"])
def test_a_vm_reply_with_an_address_cast_would_not_render_is_refused_at_the_edge(address: str) -> None:
    with pytest.raises(UnsafeReplyError, match="public_ip"):
        Vm("demo-aws-m1", "i-1", "running", "10.0.0.5", address)


def test_a_vm_reply_with_ipv4_or_global_ipv6_is_taken() -> None:
    assert Vm("demo-aws-m1", "i-1", "running", "10.0.0.5", "198.18.0.5").public_ip == "198.18.0.5"
    assert Vm("demo-aws-m1", "i-1", "running", None, "2600:1f18::5").public_ip == "2600:1f18::5"


def _member(i: int, **change: str) -> MeshMember:
    fields = {"name": f"n{i}", "group": "aws", "mesh_ip": f"10.4.0.{i}", "public_ip": f"192.0.2.{i}",
              "public_key": base64.b64encode(bytes([i]) * 32).decode(), **change}
    return MeshMember(**fields)


def test_a_scoped_address_never_reaches_a_peers_wg0_conf() -> None:
    with pytest.raises(InputError, match="n2.public_ip"):
        plan_mesh([_member(1), _member(2, public_ip=SCOPED)])


def test_wg0_conf_refuses_a_line_break_in_any_field() -> None:
    peer = Peer("n2\nPostUp = id", base64.b64encode(b"k" * 32).decode(), "192.0.2.2:51820", ("10.4.0.2/32",))
    with pytest.raises(InputError, match="line break"):
        render_wg_quick(NodeConfig("n1", "10.4.0.1/16", 51820, 1380, (peer,)))


@pytest.mark.parametrize("field", ["cluster", "node", "host_key_public", "authorized_key"])
def test_cloud_init_refuses_a_line_break_in_a_template_variable(field: str) -> None:
    host, client = new_ed25519("h"), new_ed25519("c")
    args = {"cluster": "demo", "node": "demo-aws-m1", "role": "master", "cloud": "aws",
            "host_key_private": host.private, "host_key_public": host.public, "authorized_key": client.public}
    render_user_data(**args)  # type: ignore[arg-type]
    args[field] = f"{args[field]}\nbootcmd: [touch /tmp/owned]"
    with pytest.raises(InputError, match=f"{field}: contains a line break"):
        render_user_data(**args)  # type: ignore[arg-type]
    args[field] = {"cluster": "demo", "node": "demo-aws-m1"}.get(field, host.public)
    args["host_key_private"] = host.private + b"bootcmd: [touch /tmp/owned]\n"
    with pytest.raises(InputError, match="host_key_private"):
        render_user_data(**args)  # type: ignore[arg-type]


def test_the_etc_hosts_line_stays_one_line() -> None:
    assert "10.4.0.1 api.demo.cast.internal" in hosts_command("demo", KubeNode("m1", "master", "10.4.0.1", "198.18.0.1"))
    with pytest.raises(ValueError, match="one line"):
        hosts_command("demo", KubeNode("m1", "master", "10.4.0.1\n203.0.113.9 github.com", "198.18.0.1"))
