"""Invariants of the bootstrap plan, on the sample cluster and on generated ones: secrets only
in 0600 files, never on a command line; every kubelet on its mesh address; the API certificate
names every master; kubeadm files of the right kinds that kubeadm can split."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioner import ipam
from provisioner.kube import bootstrap, kubeadm, paths
from provisioner.kube.bootstrap import BootstrapPlan, KubeNode, NodeBootstrap

from .sample_cluster import CA_HASH, CERTIFICATE_KEY, CLUSTER, NODES, TOKEN, sample_plan


def _steps(plan: BootstrapPlan) -> list[NodeBootstrap]:
    return [plan.init, plan.refresh, *plan.joins]


def _go_yaml_chunks(text: str) -> list[str]:
    """The documents as kubeadm's YAML reader splits them: at lines starting `---`, every
    non-empty chunk being one document (comments alone would make one)."""
    chunks, buffer = [], ""
    for line in text.splitlines(keepends=True):
        if line.startswith("---"):
            if buffer:
                chunks.append(buffer)
            buffer = ""
        else:
            buffer += line
    if buffer:
        chunks.append(buffer)
    return chunks


def _kubeadm_documents(text: str) -> list[dict]:
    documents = [yaml.safe_load(chunk) for chunk in _go_yaml_chunks(text)]
    for document in documents:
        assert isinstance(document, dict) and document.get("apiVersion") and document.get("kind"), document
    return documents


def _kubeadm_files(plan: BootstrapPlan) -> dict[tuple[str, str], list[dict]]:
    return {
        (step.node, f.path): _kubeadm_documents(f.content)
        for step in _steps(plan) for f in step.files if f.path.startswith(f"{paths.CAST_DIR}/kubeadm-")
    }


def check_invariants(plan: BootstrapPlan, nodes: tuple[KubeNode, ...], token: str, certificate_key: str) -> None:
    secret_half = token.split(".", 1)[1]
    by_name = {n.name: n for n in nodes}
    masters = [n for n in nodes if n.role == "master"]

    # The first master inits; every other node joins exactly once, masters before workers.
    assert plan.first_master == min(masters, key=lambda n: n.name)
    assert plan.init.node == plan.refresh.node == plan.first_master.name
    joined = [j.node for j in plan.joins]
    assert sorted(joined) == sorted(n.name for n in nodes if n != plan.first_master)
    roles = [j.role for j in plan.joins]
    assert roles == sorted(roles, key=lambda r: r != "master")

    for step in _steps(plan):
        for command in (*step.prepare, *step.commands, *step.cleanup):
            assert token not in command and secret_half not in command and certificate_key not in command, command
        for f in step.files:
            holds_secret = token in f.content or secret_half in f.content or certificate_key in f.content
            if holds_secret:
                assert f.secret and f.mode == 0o600, f.path
            if f.secret:
                assert any(c == f"rm -f {f.path}" for c in step.cleanup), f"{f.path} is never removed"

    files = _kubeadm_files(plan)
    assert len(files) == 2 + len(plan.joins)
    for (node_name, path), documents in files.items():
        node = by_name[node_name]
        kinds = [d["kind"] for d in documents]
        for d in documents:
            expected_api = kubeadm.KUBELET_API if d["kind"] == "KubeletConfiguration" else kubeadm.KUBEADM_API
            assert d["apiVersion"] == expected_api
        first = documents[0]
        registration = first["nodeRegistration"]
        assert registration["name"] == node.name
        assert registration["kubeletExtraArgs"] == [{"name": "node-ip", "value": node.mesh_ip}]
        if path == paths.JOIN_CONFIG:
            assert kinds == ["JoinConfiguration"]
            discovery = first["discovery"]["bootstrapToken"]
            assert discovery["apiServerEndpoint"] == plan.endpoint
            assert discovery["token"] == token
            if node.role == "master":
                assert first["controlPlane"]["localAPIEndpoint"]["advertiseAddress"] == node.mesh_ip
                assert first["controlPlane"]["certificateKey"] == certificate_key
            else:
                assert "controlPlane" not in first and certificate_key not in str(first)
        else:
            assert kinds == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]
            assert first["localAPIEndpoint"] == {"advertiseAddress": node.mesh_ip, "bindPort": 6443}
            assert first["bootstrapTokens"][0]["token"] == token
            assert first["certificateKey"] == certificate_key
            cluster = documents[1]
            assert cluster["networking"] == {"podSubnet": str(ipam.PODS), "serviceSubnet": str(ipam.SERVICES)}
            assert cluster["controlPlaneEndpoint"] == plan.endpoint
            sans = cluster["apiServer"]["certSANs"]
            assert plan.endpoint.rsplit(":", 1)[0] in sans and "127.0.0.1" in sans
            for master in masters:
                assert master.public_ip in sans and master.mesh_ip in sans
            assert documents[2]["cgroupDriver"] == "systemd"

    # Every node maps the endpoint name to the first master's mesh address.
    hosts = bootstrap.hosts_command(plan.cluster, plan.first_master)
    for step in (plan.init, *plan.joins):
        assert step.commands[0] == hosts
    assert f"{plan.first_master.mesh_ip} api.{plan.cluster}.cast.internal" in hosts


def test_sample_cluster_invariants() -> None:
    check_invariants(sample_plan(), NODES, TOKEN, CERTIFICATE_KEY)


def test_sample_ttl_is_short_and_the_token_is_refreshed_before_joins() -> None:
    plan = sample_plan()
    init = _kubeadm_files(plan)[(plan.first_master.name, paths.INIT_CONFIG)][0]
    assert init["bootstrapTokens"][0]["ttl"] == "30m"
    assert any("kubeadm token create" in c for c in plan.refresh.commands)
    # A master joins, so the certificates (deleted by kubeadm after 2 h) are uploaded again.
    assert any("upload-certs" in c for c in plan.refresh.commands)


def test_nodes_already_joined_get_no_join_and_the_refresh_fits_what_is_left() -> None:
    masters = [n.name for n in NODES if n.role == "master"]
    first = bootstrap.first_master(NODES).name
    joined = {n for n in masters if n != first}  # the other masters are in: only workers are left
    plan = bootstrap.bootstrap_plan(CLUSTER, NODES, token=TOKEN, certificate_key=CERTIFICATE_KEY,
                                    ca_cert_hash=CA_HASH, kubernetes_version="1.36.2", joined=joined)
    assert {j.node for j in plan.joins} == {n.name for n in NODES if n.role == "worker"}
    assert not any("upload-certs" in c for c in plan.refresh.commands)


def test_workers_only_refresh_uploads_no_certificates() -> None:
    nodes = (NODES[0], NODES[2], NODES[3])
    plan = bootstrap.bootstrap_plan(CLUSTER, nodes, token=TOKEN, certificate_key=CERTIFICATE_KEY,
                                    ca_cert_hash=CA_HASH, kubernetes_version="1.36.2")
    assert not any("upload-certs" in c for c in plan.refresh.commands)
    check_invariants(plan, nodes, TOKEN, CERTIFICATE_KEY)


_token = st.from_regex(kubeadm.TOKEN_RE, fullmatch=True)
_key = st.from_regex(kubeadm.CERTIFICATE_KEY_RE, fullmatch=True)


@st.composite
def _clusters(draw: st.DrawFn) -> tuple[KubeNode, ...]:
    masters = draw(st.integers(1, 3))
    workers = draw(st.integers(0, 4))
    clouds = draw(st.lists(st.sampled_from(["aws", "gcp", "az", "do"]), min_size=masters + workers,
                           max_size=masters + workers))
    mesh = draw(st.lists(st.integers(1, 65534), min_size=masters + workers, max_size=masters + workers, unique=True))
    nodes = []
    for i, cloud in enumerate(clouds):
        role = "master" if i < masters else "worker"
        name = f"c-{cloud}-{role[0]}{i + 1}"
        nodes.append(KubeNode(name, role, str(ipam.MESH.network_address + mesh[i]), str(ipaddress.IPv4Address(0xC6120000 + i + 1))))
    return tuple(draw(st.permutations(nodes)))


@settings(max_examples=60, deadline=None)
@given(nodes=_clusters(), token=_token, certificate_key=_key)
def test_generated_clusters_keep_the_invariants(nodes: tuple[KubeNode, ...], token: str, certificate_key: str) -> None:
    plan = bootstrap.bootstrap_plan("c", nodes, token=token, certificate_key=certificate_key,
                                    ca_cert_hash=CA_HASH, kubernetes_version="v1.36.0")
    check_invariants(plan, nodes, token, certificate_key)


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell to parse the commands")
def test_every_command_is_valid_posix_shell() -> None:
    for step in _steps(sample_plan()):
        for command in (*step.prepare, *step.commands, *step.cleanup):
            result = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
            assert result.returncode == 0, (command, result.stderr)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"token": "abcdef.0123"}, "bootstrap token"),
        ({"token": TOKEN + "\n"}, "bootstrap token"),  # `$` let a trailing newline through
        ({"ca_cert_hash": CA_HASH + "\n"}, "CA hash"),
        ({"kubernetes_version": "v1.36.2\n"}, "Kubernetes version"),
        ({"certificate_key": "XYZ"}, "certificate key"),
        ({"ca_cert_hash": "md5:00"}, "CA hash"),
        ({"kubernetes_version": "latest"}, "Kubernetes version"),
    ],
)
def test_malformed_material_is_refused_without_quoting_it(change: dict[str, str], problem: str) -> None:
    material = {"token": TOKEN, "certificate_key": CERTIFICATE_KEY, "ca_cert_hash": CA_HASH,
                "kubernetes_version": "v1.36.2", **change}
    with pytest.raises(ValueError, match=problem) as caught:
        bootstrap.bootstrap_plan(CLUSTER, NODES, **material)
    if "kubernetes_version" not in change:
        assert next(iter(change.values())) not in str(caught.value)


@pytest.mark.parametrize(
    ("nodes", "problem"),
    [
        ((NODES[2], NODES[3]), "needs a master"),
        ((NODES[0], NODES[0]), "share a name"),
        ((KubeNode("x", "boss", "10.4.0.9", "198.18.0.9"),), "unknown role"),
        ((KubeNode("x", "master", "10.5.0.9", "198.18.0.9"),), "outside 10.4.0.0/16"),
        ((KubeNode("x", "master", "10.4.0.9", "not-an-ip"),), "not an IP address"),
    ],
)
def test_malformed_nodes_are_refused(nodes: tuple[KubeNode, ...], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        bootstrap.bootstrap_plan(CLUSTER, nodes, token=TOKEN, certificate_key=CERTIFICATE_KEY,
                                 ca_cert_hash=CA_HASH, kubernetes_version="v1.36.2")
