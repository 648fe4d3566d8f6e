"""cast's Kubernetes bootstrap run over SSH on real hosts: what each node receives, in what
order, with which file modes, and what is left on it afterwards. The hosts cannot run a
kubelet, so kubeadm, kubectl, curl and sha256sum are stand-ins (in each host's own
/usr/local/sbin: its /usr is this machine's, read-only) that record every call and leave the
files kubeadm would. Needs root."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest
import yaml

from provisioner.kube import kubeadm
from provisioner.nodes.kubernetes import bootstrap_kubernetes
from provisioner.nodes.ssh import NodeAccess, SshPool, load_private_key
from provisioner.state import NodeRow
from tests.kube.pki import make_pki

from ..reports import reports
from .conftest import GROUPS, Network, keypair

pytestmark = pytest.mark.root

PRIVATE = ("/usr/local/sbin",)  # the rest of a host's root (/etc among it) is its own already
LOG = "/etc/kubernetes/calls.log"
TOKEN = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")

KUBEADM = f"""#!/bin/sh
echo "kubeadm $*" >> {LOG}
case "$1 $2" in
  "reset --force") rm -rf /etc/kubernetes/pki /etc/kubernetes/admin.conf ;;
  "init --config")
    stat -c "%a %n" "$3" >> /etc/kubernetes/modes.log
    mkdir -p /etc/kubernetes/pki
    cp /usr/local/sbin/ca.crt /etc/kubernetes/pki/ca.crt
    cp /usr/local/sbin/admin.conf /etc/kubernetes/admin.conf ;;
  "join --config")
    stat -c "%a %n" "$3" >> /etc/kubernetes/modes.log
    grep -o 'sha256:[0-9a-f]*' "$3" >> /etc/kubernetes/pins.log
    grep -q '^controlPlane:' "$3" && echo control-plane >> /etc/kubernetes/pins.log ;;
esac
exit 0
"""
RECORDER = f"""#!/bin/sh
echo "$(basename "$0") $*" >> {LOG}
while [ $# -gt 0 ]; do [ "$1" = -o ] && echo 'kind: List' > "$2"; shift; done
exit 0
"""


@pytest.fixture(scope="module")
def cluster(network: Network):
    """Two masters and a worker on three groups, with the stand-ins installed. Each host has
    its own (empty) copy of every directory in PRIVATE; the ones this machine lacks are made
    for the mount point and removed afterwards."""
    made = [Path(p) for p in PRIVATE if not Path(p).exists()]
    for path in made:
        path.mkdir(parents=True)
    try:
        yield from _cluster(network)
    finally:
        for path in made:
            path.rmdir()


def _cluster(network: Network):
    pki = make_pki()
    ca = pki.ca_pem
    specs = [("demo-aws-m1", "aws", "master", "10.4.0.1"), ("demo-gcp-m1", "gcp", "master", "10.4.0.2"),
             ("demo-az-w1", "azure", "worker", "10.4.0.3")]
    members = []
    pool = SshPool(load_private_key(str(network.ssh_key_path)))
    for index, (name, group, role, mesh_ip) in enumerate(specs):
        private, public = keypair()
        ip = str(ipaddress.IPv4Network(GROUPS[group]).network_address + 50 + index)
        network.hosts.add_host(name, group, ip, private, network.ssh_public, private=PRIVATE)
        access = NodeAccess(name, ip, public)
        for path, data, mode in [("/usr/local/sbin/kubeadm", KUBEADM.encode(), 0o755),
                                 ("/usr/local/sbin/ca.crt", ca, 0o644),
                                 ("/usr/local/sbin/admin.conf", pki.admin_conf().encode(), 0o600)]:
            pool.upload(access, path, data, mode)
        for tool in ("kubectl", "curl", "sha256sum"):
            pool.upload(access, f"/usr/local/sbin/{tool}", RECORDER.encode(), 0o755)
        members.append((access, NodeRow("u", name, group, role, mesh_ip, "s", "meshed", "id", ip, None, public, None)))
    yield pool, members, pki
    pool.close()
    for _, row in members:
        network.hosts.remove_host(row.name)


def _calls(pool: SshPool, access: NodeAccess) -> list[str]:
    return pool.check(access, f"cat {LOG} 2>/dev/null || true").splitlines()


def _steps(calls: list[str]) -> list[str]:
    """Each call up to its first option, the token id (random, and public) made generic."""
    return [re.sub(r"^(kubeadm token delete) [a-z0-9]{6}$", r"\1 <id>", c.split(" --")[0]) for c in calls]


def test_first_run_inits_the_first_master_then_joins_the_rest_with_secrets_only_in_0600_files(cluster) -> None:
    pool, members, pki = cluster
    (m1, _), (m2, _), (w1, _) = members
    with reports("kubernetes", "bootstrap") as said:
        result = bootstrap_kubernetes(pool, "demo", members, "v1.36.2")

    # What the user watches meanwhile, in the order it happens.
    assert said == [f"kubeadm init on {m1.name}", f"joining master {m2.name}", "joining the workers (1)"]

    first = _calls(pool, m1)
    assert _steps(first) == [
        "kubeadm reset", "kubeadm init", "curl -fsSL", "sha256sum", "kubectl", "kubeadm token delete <id>",
        "kubeadm token create", "kubeadm init phase upload-certs",
    ]
    assert "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -k /etc/kubernetes/cast/flannel" in first
    for joining in (m2, w1):
        assert _steps(_calls(pool, joining)) == ["kubeadm reset", "kubeadm join"]
    # The CA is pinned by its hash; only the master joins the control plane.
    pin = kubeadm.ca_cert_hash(pki.ca_pem)
    assert pool.check(m2, "cat /etc/kubernetes/pins.log").split() == [pin, "control-plane"]
    assert pool.check(w1, "cat /etc/kubernetes/pins.log").split() == [pin]
    # kubeadm read its configuration from root-only files, and none is left behind.
    assert pool.check(m1, "cat /etc/kubernetes/modes.log").split() == ["600", "/etc/kubernetes/cast/kubeadm-init.yaml"]
    assert pool.check(w1, "cat /etc/kubernetes/modes.log").split() == ["600", "/etc/kubernetes/cast/kubeadm-join.yaml"]
    for access, _ in members:
        left = pool.check(access, "ls /etc/kubernetes/cast").split()
        assert not [f for f in left if f.endswith(".yaml")], f"{access.name} keeps {left}"
        assert not TOKEN.search("\n".join(_calls(pool, access))), "a token was on a command line"
        hosts = pool.check(access, "cat /etc/hosts")
        assert "10.4.0.1 api.demo.cast.internal # cast: kubernetes api" in hosts.splitlines()
    # The user's kubeconfig: the first master's credentials, its public address, named after the cluster.
    config = yaml.safe_load(result.kubeconfig)
    assert config["current-context"] == "demo"
    assert config["clusters"][0]["cluster"]["server"] == f"https://{m1.host}:6443"
    assert config["users"][0]["user"]["client-key-data"] == pki.key_data
    assert pki.key_data not in repr(result)


def test_a_second_run_initialises_and_joins_nothing(cluster) -> None:
    pool, members, _ = cluster
    before = {a.name: len(_calls(pool, a)) for a, _ in members}
    bootstrap_kubernetes(pool, "demo", members, "v1.36.2")
    again = {a.name: _calls(pool, a)[before[a.name]:] for a, _ in members}
    assert _steps(again["demo-aws-m1"]) == ["curl -fsSL", "sha256sum", "kubectl"]
    assert again["demo-gcp-m1"] == [] and again["demo-az-w1"] == []
