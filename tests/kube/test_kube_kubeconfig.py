"""The user's kubeconfig: admin.conf renamed after the cast cluster and pointed at the first
master's public address; merged into an existing file without losing anything else."""

from __future__ import annotations

import pytest
import yaml

from provisioner.kube import kubeadm
from provisioner.kube.kubeconfig import KubeconfigError, UnsafeKubeconfigError, client_kubeconfig, merge_kubeconfig

from .pki import make_pki

PKI = make_pki()
CA_HASH = kubeadm.ca_cert_hash(PKI.ca_pem)
CA_DATA, CERT_DATA, KEY_DATA = PKI.ca_data, PKI.cert_data, PKI.key_data
ADMIN_CONF = PKI.admin_conf()
SERVER = "https://198.18.0.10:6443"


def _client(admin_conf: str, ca_hash: str = CA_HASH) -> str:
    return client_kubeconfig(admin_conf, cluster="demo", server=SERVER, ca_hash=ca_hash)


def test_client_kubeconfig_is_named_after_the_cluster_and_uses_the_public_server() -> None:
    config = yaml.safe_load(_client(ADMIN_CONF))
    assert config == {
        "apiVersion": "v1", "kind": "Config", "current-context": "demo", "preferences": {},
        "contexts": [{"name": "demo", "context": {"cluster": "cast-demo", "user": "cast-demo-admin"}}],
        "clusters": [{"name": "cast-demo", "cluster": {"certificate-authority-data": CA_DATA, "server": SERVER}}],
        "users": [{"name": "cast-demo-admin",
                   "user": {"client-certificate-data": CERT_DATA, "client-key-data": KEY_DATA}}],
    }


EXEC_USER = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [-c, 'id > /tmp/owned']\n"


@pytest.mark.parametrize(
    ("admin_conf", "field"),
    [
        (PKI.admin_conf(user_extra=EXEC_USER), "exec"),
        (PKI.admin_conf(user_extra="    auth-provider: {name: oidc}\n"), "auth-provider"),
        (PKI.admin_conf(user_extra="    token: abc\n"), "token"),
        (PKI.admin_conf(user_extra="    tokenFile: /etc/shadow\n"), "tokenFile"),
        (PKI.admin_conf(cluster_extra="    insecure-skip-tls-verify: true\n"), "insecure-skip-tls-verify"),
        (PKI.admin_conf(cluster_extra="    proxy-url: http://evil:3128\n"), "proxy-url"),
        (PKI.admin_conf() + "- name: second\n  user: {client-key-data: eA==}\n", "2 users"),
        (PKI.admin_conf().replace("current-context:", "preferences: {colors: true}\ncurrent-context:"),
         "preferences"),
    ],
)
def test_client_kubeconfig_refuses_every_field_but_the_ca_and_client_credentials(admin_conf: str, field: str) -> None:
    """A compromised master's admin.conf with a user `exec` ran code as the operator at the next
    kubectl call once merged: cast refuses it (exit 4) instead of copying it."""
    with pytest.raises(UnsafeKubeconfigError, match=field) as caught:
        _client(admin_conf)
    assert caught.value.exit_code == 4
    assert KEY_DATA not in str(caught.value) and "owned" not in str(caught.value)


def test_client_kubeconfig_refuses_a_ca_other_than_the_pinned_one() -> None:
    other = make_pki()
    with pytest.raises(UnsafeKubeconfigError, match="not the CA whose hash pinned the joins"):
        _client(ADMIN_CONF, ca_hash=kubeadm.ca_cert_hash(other.ca_pem))
    # the pinned CA, but a client certificate another CA issued
    mixed = ADMIN_CONF.replace(CERT_DATA, other.cert_data)
    with pytest.raises(UnsafeKubeconfigError, match="not issued by the cluster's CA"):
        _client(mixed)


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        (ADMIN_CONF.replace("current-context: kubernetes-admin@kubernetes", "current-context: ''"),
         "no current-context"),
        (ADMIN_CONF.replace("- name: kubernetes-admin\n", "- name: someone-else\n"), "no user named"),
        (ADMIN_CONF.replace(f"client-key-data: {KEY_DATA}", "client-key-data: '!!'"), "not base64"),
        ("clusters: [", "not valid YAML"),
        ("- a list", "not a mapping"),
    ],
)
def test_client_kubeconfig_refuses_a_broken_admin_conf_without_quoting_it(broken: str, problem: str) -> None:
    with pytest.raises(KubeconfigError, match=problem) as caught:
        _client(broken)
    assert KEY_DATA not in str(caught.value)


NEW = _client(ADMIN_CONF)

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


def test_merge_refuses_a_saved_kubeconfig_carrying_an_exec_user() -> None:
    saved = yaml.safe_load(NEW)
    saved["users"][0]["user"]["exec"] = {"command": "sh"}
    with pytest.raises(UnsafeKubeconfigError, match="exec"):
        merge_kubeconfig(EXISTING, yaml.safe_dump(saved), "demo")
