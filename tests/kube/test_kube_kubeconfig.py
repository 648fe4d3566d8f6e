"""The user's kubeconfig: admin.conf renamed after the cast cluster and pointed at the first
master's public address; merged into an existing file without losing anything else."""

from __future__ import annotations

import pytest
import yaml

from provisioner.kube.kubeconfig import KubeconfigError, client_kubeconfig, merge_kubeconfig

CA_DATA = "RkFLRSBDQQ=="  # plain fake certificate data
CERT_DATA = "RkFLRSBDRVJU"
KEY_DATA = "RkFLRSBLRVk="

ADMIN_CONF = f"""\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {CA_DATA}
    server: https://api.demo.cast.internal:6443
  name: demo
contexts:
- context:
    cluster: demo
    user: kubernetes-admin
  name: kubernetes-admin@demo
current-context: kubernetes-admin@demo
kind: Config
users:
- name: kubernetes-admin
  user:
    client-certificate-data: {CERT_DATA}
    client-key-data: {KEY_DATA}
"""

SERVER = "https://198.18.0.10:6443"


def test_client_kubeconfig_is_named_after_the_cluster_and_uses_the_public_server() -> None:
    config = yaml.safe_load(client_kubeconfig(ADMIN_CONF, cluster="demo", server=SERVER))
    assert config["current-context"] == "demo"
    assert config["contexts"] == [{"name": "demo", "context": {"cluster": "cast-demo", "user": "cast-demo-admin"}}]
    assert config["clusters"] == [{"name": "cast-demo",
                                   "cluster": {"certificate-authority-data": CA_DATA, "server": SERVER}}]
    assert config["users"] == [{"name": "cast-demo-admin",
                                "user": {"client-certificate-data": CERT_DATA, "client-key-data": KEY_DATA}}]


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        (ADMIN_CONF.replace("current-context: kubernetes-admin@demo", "current-context: ''"), "no current-context"),
        (ADMIN_CONF.replace("  name: kubernetes-admin\n", "  name: someone-else\n", 1)
         .replace("- name: kubernetes-admin\n", "- name: someone-else\n"), "no user named"),
        ("clusters: [", "not valid YAML"),
        ("- a list", "not a mapping"),
    ],
)
def test_client_kubeconfig_refuses_a_broken_admin_conf_without_quoting_it(broken: str, problem: str) -> None:
    with pytest.raises(KubeconfigError, match=problem) as caught:
        client_kubeconfig(broken, cluster="demo", server=SERVER)
    assert KEY_DATA not in str(caught.value)


NEW = client_kubeconfig(ADMIN_CONF, cluster="demo", server=SERVER)

EXISTING = """\
apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: cast-demo
  cluster: {server: "https://203.0.113.9:6443", certificate-authority-data: OLD}
- name: other
  cluster: {server: "https://other:6443"}
users:
- name: cast-demo-admin
  user: {token: OLD}
- name: other-user
  user: {token: keep}
contexts:
- name: demo
  context: {cluster: cast-demo, user: cast-demo-admin, namespace: apps}
- name: other
  context: {cluster: other, user: other-user}
current-context: other
"""


def test_merge_replaces_same_named_entries_and_keeps_the_rest() -> None:
    merged = yaml.safe_load(merge_kubeconfig(EXISTING, NEW, "demo"))
    by_name = {section: {e["name"]: e for e in merged[section]} for section in ("clusters", "users", "contexts")}
    assert by_name["clusters"]["cast-demo"]["cluster"] == {"certificate-authority-data": CA_DATA, "server": SERVER}
    assert by_name["clusters"]["other"]["cluster"] == {"server": "https://other:6443"}
    assert by_name["users"]["cast-demo-admin"]["user"]["client-key-data"] == KEY_DATA
    assert by_name["users"]["other-user"]["user"] == {"token": "keep"}
    assert by_name["contexts"]["demo"]["context"] == {"cluster": "cast-demo", "user": "cast-demo-admin"}
    assert len(merged["clusters"]) == len(merged["users"]) == len(merged["contexts"]) == 2
    assert merged["current-context"] == "other"  # the user's choice stays
    assert merged["preferences"] == {"colors": True}


@pytest.mark.parametrize("existing", [None, "", "apiVersion: v1\nkind: Config\ncurrent-context: ''\n"])
def test_merge_into_nothing_or_no_current_context_selects_the_cluster(existing: str | None) -> None:
    merged = yaml.safe_load(merge_kubeconfig(existing, NEW, "demo"))
    assert merged["current-context"] == "demo"
    assert [c["name"] for c in merged["contexts"]] == ["demo"]
    assert merged["apiVersion"] == "v1" and merged["kind"] == "Config"


def test_merge_twice_is_the_same_as_once() -> None:
    once = merge_kubeconfig(EXISTING, NEW, "demo")
    assert merge_kubeconfig(once, NEW, "demo") == once


def test_merge_refuses_a_context_the_new_file_lacks() -> None:
    with pytest.raises(KubeconfigError, match="no context named 'prod'"):
        merge_kubeconfig(EXISTING, NEW, "prod")
