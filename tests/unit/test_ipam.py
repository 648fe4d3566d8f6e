"""The address plan: nothing overlaps, ever; exhausted ranges raise clear errors."""

from ipaddress import IPv4Address, IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner import ipam

ALL_BLOCKS = [*ipam.CLOUD_BLOCKS.values(), ipam.MESH, ipam.SERVICES, ipam.PODS]


def test_cloud_blocks_and_reserved_ranges_do_not_overlap():
    for i, a in enumerate(ALL_BLOCKS):
        for b in ALL_BLOCKS[i + 1 :]:
            assert not a.overlaps(b), (a, b)


@pytest.mark.parametrize(
    ("cloud", "used", "expected"),
    [
        ("aws", [], "10.10.0.0/24"),
        ("gcp", [], "10.0.0.0/24"),
        ("azure", [], "10.20.0.0/24"),
        ("aws", ["10.10.0.0/24", "10.10.1.0/24"], "10.10.2.0/24"),
        ("aws", ["10.10.0.128/25"], "10.10.1.0/24"),
        ("gcp", ["10.0.0.0/23"], "10.0.2.0/24"),
    ],
)
def test_cluster_subnet(cloud, used, expected):
    assert str(ipam.cluster_subnet(cloud, used)) == expected


def test_cluster_subnet_exhausted():
    with pytest.raises(ipam.AddressExhaustedError, match="aws"):
        ipam.cluster_subnet("aws", ["10.10.0.0/16"])


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        ([], "10.112.0.0/20"),  # 10.100-10.111 lie in the service range 10.96.0.0/12
        (["10.112.0.0/20"], "10.112.16.0/20"),
        (["10.112.0.0/24"], "10.112.16.0/20"),
        (["10.112.0.0/16"], "10.113.0.0/20"),
        (["10.112.0.0/20", "10.112.32.0/20"], "10.112.16.0/20"),
        (["172.16.0.0/12", "10.10.0.0/16"], "10.112.0.0/20"),
        ([f"10.{i}.0.0/16" for i in range(112, 217)], "10.218.0.0/20"),  # 10.217/16 holds the pods
    ],
)
def test_digitalocean_first_free_range(used, expected):
    assert str(ipam.digitalocean_vpc_range(used)) == expected


def test_digitalocean_exhausted():
    used = [f"10.{i}.0.0/16" for i in range(100, 256)]
    with pytest.raises(ipam.AddressExhaustedError, match="no free /20"):
        ipam.digitalocean_vpc_range(used)


def test_digitalocean_last_range_is_usable():
    used = [f"10.{i}.0.0/16" for i in range(112, 255)] + [
        "10.255.0.0/17",
        "10.255.128.0/18",
        "10.255.192.0/19",
        "10.255.224.0/20",
    ]
    assert str(ipam.digitalocean_vpc_range(used)) == "10.255.240.0/20"


def test_mesh_addresses_are_never_reused():
    first = ipam.allocate_mesh_addresses(3, [])
    assert [str(a) for a in first] == ["10.4.0.1", "10.4.0.2", "10.4.0.3"]
    # 10.4.0.2 was freed (its node removed) but stays allocated: the next one is .4
    nxt = ipam.allocate_mesh_addresses(1, ["10.4.0.1", "10.4.0.2", "10.4.0.3"])
    assert [str(a) for a in nxt] == ["10.4.0.4"]


def test_mesh_exhausted():
    with pytest.raises(ipam.AddressExhaustedError, match="10.4.0.0/16"):
        ipam.allocate_mesh_addresses(2, ["10.4.255.253"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=(1 << 12) - 1), max_size=40), st.integers(1, 16))
def test_property_digitalocean_never_overlaps_used(starts, prefix_extra):
    # random used ranges inside 10.100.0.0/10-ish territory, of sizes /16 to /28
    used = [
        IPv4Network((int(IPv4Address("10.112.0.0")) + (s << 12), 16 + (prefix_extra % 13)), strict=False)
        for s in starts
    ]
    try:
        chosen = ipam.digitalocean_vpc_range(used)
    except ipam.AddressExhaustedError:
        return
    assert chosen.prefixlen == 20
    assert ipam.DO_FIRST.network_address <= chosen.network_address <= ipam.DO_LAST.network_address
    assert not any(chosen.overlaps(u) for u in used)
    assert not any(chosen.overlaps(r) for r in ipam.RESERVED)
    assert ipam.digitalocean_vpc_range(list(reversed(used))) == chosen  # deterministic


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=10))
def test_property_mesh_addresses_unique_across_rounds(rounds):
    ever: list[IPv4Address] = []
    for count in rounds:
        new = ipam.allocate_mesh_addresses(count, ever)
        assert len(new) == count
        assert not set(new) & set(ever)
        assert all(a in ipam.MESH and a not in (ipam.MESH.network_address, ipam.MESH.broadcast_address) for a in new)
        ever += new
    assert len(set(ever)) == len(ever)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["aws", "gcp", "azure"]), st.lists(st.integers(0, 255), max_size=60))
def test_property_subnet_never_overlaps_used(cloud, thirds):
    block = ipam.CLOUD_BLOCKS[cloud]
    used = [IPv4Network((int(block.network_address) + (t << 8), 24)) for t in thirds]
    try:
        chosen = ipam.cluster_subnet(cloud, used)
    except ipam.AddressExhaustedError:
        assert len(set(thirds)) == 256
        return
    assert chosen.subnet_of(block) and chosen.prefixlen == 24
    assert not any(chosen.overlaps(u) for u in used)
