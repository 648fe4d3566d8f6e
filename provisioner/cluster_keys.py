"""The cluster's key material, kept as its secrets in the state store: the SSH client key
(root on every node) and each node's first host key, made by cast before the VM exists and
pinned in the node's row."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .keys import new_ed25519, public_of
from .state import StateStore

CLUSTER_KEY = "ssh_key"  # the secret name of the cluster's SSH client key
KUBECONFIG_SECRET = "kubeconfig"  # the secret name of the cluster's admin kubeconfig


def host_key_secret(node: str) -> str:
    """The secret name of node `node`'s injected host key (gone once the node rotated it)."""
    return f"host-key-{node}"


def key_pair(store: StateStore, uuid: str, secret: str, comment: str) -> tuple[bytes, str]:
    """An ed25519 key pair kept as the cluster's secret `secret`, made on first use:
    (private OpenSSH PEM, public line)."""
    private = store.read_secret(uuid, secret)
    if private is None:
        private = new_ed25519(comment).private
        store.write_secret(uuid, secret, private)
    return private, public_of(private, comment)


def client_key(store: StateStore, uuid: str, name: str) -> tuple[bytes, str]:
    """The SSH client key pair of cluster `name` (root on every node)."""
    return key_pair(store, uuid, CLUSTER_KEY, f"cast-{name}")


def client_key_path(store: StateStore, uuid: str) -> Path:
    """Where the cluster's SSH client key is kept (client_key makes it)."""
    return store.secrets_dir(uuid) / CLUSTER_KEY


def host_key(store: StateStore, uuid: str, node: str) -> tuple[bytes, str]:
    """A node's SSH host key pair, made by cast before the VM exists."""
    return key_pair(store, uuid, host_key_secret(node), node)


def has_host_key(store: StateStore, uuid: str, node: str) -> bool:
    """Whether the node's injected host key is still kept (it is not once rotated)."""
    return store.read_secret(uuid, host_key_secret(node)) is not None


def forget_host_key(store: StateStore, uuid: str, node: str) -> None:
    """Forget the node's injected private host key (harmless when already gone)."""
    store.delete_secret(uuid, host_key_secret(node))


def pin(store: StateStore, uuid: str, node: str, public: str) -> None:
    """Record `public` (an OpenSSH public key line) as the host key node `node` presents."""
    for row in store.nodes(uuid):
        if row.name == node and row.host_key != public:
            store.upsert_node(replace(row, host_key=public))
