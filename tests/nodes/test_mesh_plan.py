"""The mesh plan and its wg-quick rendering: pure, table-driven."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.errors import InputError
from provisioner.mesh import MTU, MeshMember, plan_mesh, render_wg_quick


def key(i: int) -> str:
    return base64.b64encode(bytes([i]) * 32).decode()


def member(i: int, group: str = "aws", **changes: str) -> MeshMember:
    fields = dict(name=f"n{i}", group=group, mesh_ip=f"10.4.0.{i}", public_ip=f"192.0.2.{i}",
                  public_key=key(i))
    fields.update(changes)
    return MeshMember(**fields)


def test_every_node_peers_with_every_other_node():
    members = [member(1, "aws"), member(2, "gcp"), member(3, "azure")]
    plans = plan_mesh(members)
    assert sorted(plans) == ["n1", "n2", "n3"]
    n1 = plans["n1"]
    assert n1.address == "10.4.0.1/16" and n1.listen_port == 51820 and n1.mtu == MTU == 1380
    assert [(p.name, p.endpoint, p.allowed_ips, p.keepalive_s) for p in n1.peers] == [
        ("n2", "192.0.2.2:51820", ("10.4.0.2/32",), 25),
        ("n3", "192.0.2.3:51820", ("10.4.0.3/32",), 25),
    ]
    assert [p.public_key for p in plans["n3"].peers] == [key(1), key(2)]


def test_the_plan_does_not_depend_on_input_order():
    members = [member(i) for i in range(1, 8)]
    assert plan_mesh(members) == plan_mesh(list(reversed(members)))


def test_a_single_node_has_no_peers():
    assert plan_mesh([member(1)])["n1"].peers == ()


def test_ipv6_endpoints_are_bracketed():
    # a global unicast address: the documentation range 2001:db8::/32 is not one a cloud gives
    plans = plan_mesh([member(1), member(2, public_ip="2600:1f18::2")])
    assert plans["n1"].peers[0].endpoint == "[2600:1f18::2]:51820"


@pytest.mark.parametrize(
    ("members", "field"),
    [
        pytest.param([member(1), member(1, public_ip="192.0.2.9", mesh_ip="10.4.0.9",
                                        public_key=key(9))], "n1.name", id="same name"),
        pytest.param([member(1), member(2, mesh_ip="10.4.0.1")], "n2.mesh_ip", id="same mesh ip"),
        pytest.param([member(1), member(2, public_ip="192.0.2.1")], "n2.public_ip", id="same public ip"),
        pytest.param([member(1), member(2, public_key=key(1))], "n2.public_key", id="same key"),
        pytest.param([member(1, mesh_ip="10.5.0.1")], "n1.mesh_ip", id="outside the mesh"),
        pytest.param([member(1, mesh_ip="10.4.0.0")], "n1.mesh_ip", id="network address"),
        pytest.param([member(1, public_ip="192.0.2")], "n1.public_ip", id="bad public ip"),
        pytest.param([member(1, mesh_ip="2001:db8::1")], "n1.mesh_ip", id="ipv6 mesh ip"),
        pytest.param([member(1, public_key="not-a-key")], "n1.public_key", id="bad key"),
        pytest.param([member(1, public_key=base64.b64encode(b"x" * 31).decode())],
                     "n1.public_key", id="short key"),
    ],
)
def test_bad_members_are_refused_naming_member_and_field(members, field):
    with pytest.raises(InputError) as caught:
        plan_mesh(members)
    assert caught.value.field == field


def test_rendered_config_has_every_peer_and_no_private_key():
    text = render_wg_quick(plan_mesh([member(1), member(2, "gcp"), member(3, "do")])["n2"])
    assert "PrivateKey" not in text
    assert "PostUp = wg set %i private-key /etc/wireguard/private.key" in text
    sections = re.split(r"^\[", text, flags=re.M)
    assert sections[1].startswith("Interface]") and "Address = 10.4.0.2/16" in sections[1]
    assert "MTU = 1380" in sections[1] and "ListenPort = 51820" in sections[1]
    assert "Table = off" in sections[1]  # the /16 route of Address serves every peer
    peers = sections[2:]
    assert len(peers) == 2
    assert f"PublicKey = {key(1)}" in peers[0] and "Endpoint = 192.0.2.1:51820" in peers[0]
    assert "AllowedIPs = 10.4.0.3/32" in peers[1] and "PersistentKeepalive = 25" in peers[1]


@given(st.sets(st.integers(min_value=1, max_value=250), min_size=1, max_size=30))
def test_each_peer_is_reached_through_its_own_address_only(indexes):
    plans = plan_mesh([member(i) for i in indexes])
    for plan in plans.values():
        allowed = [ip for p in plan.peers for ip in p.allowed_ips]
        assert len(allowed) == len(set(allowed)) == len(indexes) - 1
        assert f"{plan.address.split('/')[0]}/32" not in allowed
