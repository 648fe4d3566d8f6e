"""The inventory file of `cast check-latency --inventory`: pure, table-driven."""

from __future__ import annotations

import json

import pytest

from provisioner.errors import InputError
from provisioner.nodes.inventory import load_inventory

GOOD = {"name": "aws-1", "cloud": "aws", "public_ip": "198.18.0.10", "mesh_ip": "10.4.0.1",
        "ssh_port": 2222, "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA host"}


def test_nodes_are_read_with_cloud_as_group(tmp_path):
    path = tmp_path / "inv.json"
    path.write_text(json.dumps({"nodes": [GOOD, dict(GOOD, name="gcp-1", cloud=None,
                                                     group="gcp", public_ip="198.51.100.9")]}))
    nodes = load_inventory(path)
    assert [(n.name, n.group, n.access.host, n.access.port, n.mesh_ip) for n in nodes] == [
        ("aws-1", "aws", "198.18.0.10", 2222, "10.4.0.1"),
        ("gcp-1", "gcp", "198.51.100.9", 2222, "10.4.0.1"),
    ]
    assert nodes[0].access.host_key == GOOD["host_key"] and nodes[0].access.user == "root"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("{", "not JSON", id="broken json"),
        pytest.param("[]", "non-empty list", id="empty"),
        pytest.param(json.dumps([dict(GOOD, public_ip="nope")]), "public_ip", id="bad ip"),
        pytest.param(json.dumps([{k: v for k, v in GOOD.items() if k != "mesh_ip"}]), "mesh_ip",
                     id="missing field"),
        pytest.param(json.dumps([dict(GOOD, ssh_port=70000)]), "ssh_port", id="bad port"),
        pytest.param(json.dumps([dict(GOOD, host_key="AAAA")]), "host_key", id="bad host key"),
        pytest.param(json.dumps([GOOD, GOOD]), "listed twice", id="duplicate"),
    ],
)
def test_bad_inventories_are_refused_naming_the_problem(tmp_path, content, expected):
    path = tmp_path / "inv.json"
    path.write_text(content)
    with pytest.raises(InputError) as caught:
        load_inventory(path)
    assert expected in str(caught.value) and str(path) in str(caught.value)
    assert caught.value.exit_code == 2
