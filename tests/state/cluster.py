"""A realistic cluster in a local store, made by the engine's own helpers where they are pure:
its spec (built for the region map), nodes with host keys, allocations, resources, a journal,
and the secrets a real one has (the cluster SSH key, host keys, a kubeconfig with a token)."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

from provisioner.keys import new_ed25519
from provisioner.state import NodeRow, StateStore

REGION = "us-east"


def spec_dict(name: str, masters: int = 1, workers: int = 1) -> dict:
    from provisioner.regions import load_region_map
    from provisioner.spec import build_spec

    return build_spec(load_region_map(), name=name, region=REGION, cloud_flags=(f"aws:{masters}:{workers}",),
                      size_flags=(), ssh_cidrs=(), api_cidrs=(), nodeport_cidrs=(), latency_threshold_ms=None,
                      file=None).to_dict()


def kubeconfig(token: str) -> bytes:
    return (f"apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster:\n    server: https://10.4.0.1:6443\n"
            f"users:\n- name: admin\n  user:\n    token: {token}\n").encode()


def make_local_cluster(root: Path, name: str = "demo", *, nodes: int = 2, public_ips: bool = False) -> dict:
    """Write a cluster into the local store at `root`; returns its secrets {name: bytes} and uuid."""
    store = StateStore(root)
    cid = str(uuid.uuid4())
    store.create_cluster(cid, name, REGION, spec_dict(name, 1, nodes - 1))
    secrets: dict[str, bytes] = {"ssh_key": new_ed25519(f"cast-{name}").private}
    for i in range(nodes):
        node = f"{name}-aws-{'m' if i == 0 else 'w'}{i + 1}"
        pair = new_ed25519(node)
        secrets[f"host-key-{node}"] = pair.private
        store.upsert_node(NodeRow(cid, node, "aws", "master" if i == 0 else "worker", f"10.4.0.{i + 1}", "t3.medium",
                                  "planned", None, f"198.18.0.{i + 10}" if public_ips else None, None,
                                  pair.public, None))
        store.allocate(cid, "mesh", {f"10.4.0.{i + 1}": node})
    store.record_resources(cid, "aws", [("vpc", "vpc-0123", f"cast-{name}"), ("subnet", "subnet-0456", name)])
    for step in ("network", "subnet", "firewall"):
        store.journal(cid, "aws", step, "begin")
        store.journal(cid, "aws", step, "end", "created")
    token = base64.b32encode(os.urandom(10)).decode().lower()[:6] + "." + os.urandom(8).hex()
    secrets["kubeconfig"] = kubeconfig(token)
    for secret, data in secrets.items():
        store.write_secret(cid, secret, data)
    return {"uuid": cid, "secrets": secrets, "token": token}
