"""The sandbox's public pools come from one block, and a block holding an address this machine
uses (its own, a route, a neighbour, a host it resolves for its proxies, package indexes or
/etc/hosts) is refused before anything starts, naming the address and where it was found."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from provisioner.errors import InputError
from provisioner.sandbox.pools import DEFAULT_BLOCK, MachineConfig, check_block, pools_of


def machine(tmp_path: Path, *, hosts: str = "127.0.0.1 localhost\n", environ: dict[str, str] | None = None,
            pip: str | None = None, apt: str | None = None,
            resolver: dict[str, list[str]] | None = None) -> MachineConfig:
    """A machine described by files under tmp_path and a fake resolver (no `ip`, no DNS)."""
    hosts_file = tmp_path / "hosts"
    hosts_file.write_text(hosts)
    pip_files: tuple[Path, ...] = ()
    if pip is not None:
        (tmp_path / "pip.conf").write_text(pip)
        pip_files = (tmp_path / "pip.conf",)
    apt_dir = tmp_path / "apt"
    (apt_dir / "sources.list.d").mkdir(parents=True)
    if apt is not None:
        (apt_dir / "sources.list.d" / "mirror.sources").write_text(apt)
    table = resolver or {}

    def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"{host}: no such host")
        return table[host]

    return MachineConfig(environ=environ or {}, hosts_file=hosts_file, pip_files=pip_files,
                         apt_dirs=(apt_dir,), resolve=resolve, run_ip=False)


def test_every_cloud_gets_its_own_24_from_the_block() -> None:
    pools = pools_of(DEFAULT_BLOCK)
    assert set(pools) == {"aws", "gcp", "azure", "digitalocean"}
    networks = [ipaddress.IPv4Network(p) for p in pools.values()]
    assert all(n.prefixlen == 24 and n.subnet_of(ipaddress.IPv4Network(DEFAULT_BLOCK)) for n in networks)
    assert len(set(networks)) == 4
    assert pools_of("100.64.8.0/22")["digitalocean"] == "100.64.11.0/24"


@pytest.mark.parametrize(("block", "said"), [("198.18.0.0/23", "too small"), ("not-a-cidr", "not an IPv4 network"),
                                             ("2001:db8::/32", "not an IPv4 network")])
def test_a_block_that_cannot_hold_four_pools_is_bad_input(block: str, said: str) -> None:
    with pytest.raises(InputError) as caught:
        pools_of(block)
    assert caught.value.field == "--pool" and said in str(caught.value)


def test_a_clean_machine_gets_the_default_pools(tmp_path: Path) -> None:
    clean = machine(tmp_path, resolver={"pypi.org": ["151.101.0.223"], "files.pythonhosted.org": ["151.101.1.63"]})
    assert check_block(DEFAULT_BLOCK, clean) == pools_of(DEFAULT_BLOCK)


def refusal(block: str, config: MachineConfig) -> str:
    with pytest.raises(InputError) as caught:
        check_block(block, config)
    assert caught.value.field == "--pool"
    return str(caught.value)


SMALL = "198.18.0.0/22"  # exactly four /24s: any address the machine uses in it leaves too few


def test_an_etc_hosts_entry_in_the_block_is_refused(tmp_path: Path) -> None:
    config = machine(tmp_path, hosts="127.0.0.1 localhost\n198.18.2.7 mirror.internal  # the team's mirror\n")
    said = refusal(SMALL, config)
    assert "198.18.2.7" in said and f"{tmp_path / 'hosts'} line 2" in said


def test_a_24_the_machine_uses_is_skipped_when_the_block_has_others(tmp_path: Path) -> None:
    # e.g. another sandbox's routes, or a VPN's: the pools are the block's next free /24s
    config = machine(tmp_path, hosts="127.0.0.1 localhost\n198.18.2.7 mirror.internal\n")
    pools = check_block(DEFAULT_BLOCK, config)
    assert pools == {"aws": "198.18.0.0/24", "gcp": "198.18.1.0/24", "azure": "198.18.3.0/24",
                     "digitalocean": "198.18.4.0/24"}


def test_a_proxy_that_resolves_into_the_block_is_refused(tmp_path: Path) -> None:
    config = machine(tmp_path, environ={"https_proxy": "http://proxy.corp.example:3128"},
                     resolver={"proxy.corp.example": ["198.19.0.40"]})
    said = refusal("198.19.0.0/22", config)
    assert "198.19.0.40" in said and "proxy.corp.example" in said and "$https_proxy" in said


def test_the_package_index_that_resolves_into_the_block_is_refused(tmp_path: Path) -> None:
    # what this kind of machine does: its package index resolves into a documentation range
    config = machine(tmp_path, pip="[global]\nindex-url = https://pypi.mirror.example/simple\n",
                     resolver={"pypi.mirror.example": ["203.0.113.80"]})
    said = refusal("203.0.112.0/22", config)
    assert "203.0.113.80" in said and "pypi.mirror.example" in said and str(tmp_path / "pip.conf") in said
    # the default block does not hold it
    assert check_block(DEFAULT_BLOCK, config)


def test_pips_default_index_is_checked_when_none_is_configured(tmp_path: Path) -> None:
    config = machine(tmp_path, resolver={"pypi.org": ["198.18.3.3"]})
    assert "pypi.org" in refusal(SMALL, config)


def test_an_apt_mirror_that_resolves_into_the_block_is_refused(tmp_path: Path) -> None:
    config = machine(tmp_path, apt="Types: deb\nURIs: http://deb.mirror.example/debian\nSuites: bookworm\n",
                     resolver={"deb.mirror.example": ["198.18.1.200"]})
    said = refusal(SMALL, config)
    assert "198.18.1.200" in said and "mirror.sources" in said


def own_address() -> str | None:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    for line in out.split("\n"):
        words = line.split()
        if "inet" in words:
            address = words[words.index("inet") + 1].split("/")[0]
            if not ipaddress.IPv4Address(address).is_loopback:
                return address
    return None


def test_sandbox_up_refuses_a_block_holding_this_machines_address_and_writes_nothing(tmp_path: Path) -> None:
    address = own_address()
    if address is None:
        pytest.skip("this machine has no IPv4 address besides loopback")
    block = str(ipaddress.IPv4Network(f"{address}/22", strict=False))
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-m", "provisioner", "sandbox", "up", "--pool", block],
                          env={**os.environ, "CAST_HOME": str(home)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "--pool" in done.stderr and address in done.stderr
    assert not home.exists()
