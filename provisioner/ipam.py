"""The address plan (IPAM): pure, deterministic functions over sorted inputs.

| range | use |
| 10.0.0.0/16 GCP, 10.10.0.0/16 AWS, 10.20.0.0/16 Azure | one /24 subnet per cluster |
| 10.100.0.0/20 .. 10.255.240.0/20 | DigitalOcean: one VPC per cluster, first /20 free in the account
|   and outside the reserved ranges (so 10.112.0.0/20 comes first) |
| 10.4.0.0/16 | WireGuard mesh: one /32 per node, never reused while the cluster lives |
| 10.96.0.0/12, 10.217.0.0/16 | Kubernetes services and pods (reserved) |
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

from .errors import CastError

CLOUD_BLOCKS: dict[str, IPv4Network] = {
    "gcp": IPv4Network("10.0.0.0/16"),
    "aws": IPv4Network("10.10.0.0/16"),
    "azure": IPv4Network("10.20.0.0/16"),
}
DO_FIRST = IPv4Network("10.100.0.0/20")
DO_LAST = IPv4Network("10.255.240.0/20")
DO_PREFIX = 20
MESH = IPv4Network("10.4.0.0/16")
SERVICES = IPv4Network("10.96.0.0/12")
PODS = IPv4Network("10.217.0.0/16")
RESERVED = (MESH, SERVICES, PODS)


class AddressExhaustedError(CastError):
    """No free block is left in a range."""


def _networks(ranges: Iterable[str | IPv4Network]) -> list[IPv4Network]:
    return sorted({IPv4Network(r, strict=False) for r in ranges})


def _overlaps_any(net: IPv4Network, used: list[IPv4Network]) -> bool:
    return any(net.overlaps(u) for u in used)


def cluster_subnet(cloud: str, used: Iterable[str | IPv4Network] = ()) -> IPv4Network:
    """The first /24 in the cloud's /16 that overlaps nothing in `used` (the account's subnets).

    Raises AddressExhaustedError when all 256 are taken, KeyError for a cloud with no /16.
    """
    block = CLOUD_BLOCKS[cloud]
    taken = _networks(used)
    for candidate in block.subnets(new_prefix=24):
        if not _overlaps_any(candidate, taken):
            return candidate
    raise AddressExhaustedError(f"{cloud}: every /24 in {block} is already in use")


def digitalocean_vpc_range(used: Iterable[str | IPv4Network] = ()) -> IPv4Network:
    """The first /20 from 10.100.0.0 to 10.255.240.0 that overlaps none of the account's VPC
    ranges in `used` and none of the reserved ranges. Raises AddressExhaustedError when none
    is free.

    10.100.0.0-10.111.255.255 lies inside the Kubernetes service range 10.96.0.0/12 and
    10.217.0.0/16 is the pod range: a node network there would shadow service or pod
    addresses, so those /20s are skipped and the first one handed out is 10.112.0.0/20.
    """
    taken = _networks([*used, *RESERVED])
    first = int(DO_FIRST.network_address)
    last = int(DO_LAST.network_address)
    step = 1 << (32 - DO_PREFIX)
    for start in range(first, last + 1, step):
        candidate = IPv4Network((start, DO_PREFIX))
        if not _overlaps_any(candidate, taken):
            return candidate
    raise AddressExhaustedError(
        f"digitalocean: no free /20 between {DO_FIRST} and {DO_LAST}: the account's VPCs use them all"
    )


def allocate_mesh_addresses(count: int, ever_allocated: Iterable[str | IPv4Address]) -> list[IPv4Address]:
    """`count` new mesh addresses from 10.4.0.0/16, the lowest first, skipping every address
    the cluster has ever allocated (addresses are never reused while the cluster lives) and
    the network and broadcast addresses. Raises AddressExhaustedError when too few are left.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    taken = {int(ipaddress.IPv4Address(a)) for a in ever_allocated}
    # Never reuse: start above the highest address ever handed out, so a freed address stays
    # unused even when it is the lowest gap.
    start = max(taken, default=int(MESH.network_address)) + 1
    end = int(MESH.broadcast_address)
    if end - start < count:
        raise AddressExhaustedError(f"the mesh range {MESH} has no {count} unused addresses left")
    return [IPv4Address(start + i) for i in range(count)]
