"""The cluster's SSH key as an EC2 key pair, imported once and found by the cluster's UUID."""

from __future__ import annotations

from typing import Any

from .aws_api import AwsApi
from .aws_owned import at_most_one, cluster_tags, owned, tag_specs
from .base import CloudResource, CloudTarget, ClusterRef, Ensured


def key_name(cluster: ClusterRef) -> str:
    """The key pair's name: cast-<cluster>-<shortid>."""
    return f"cast-{cluster.name}-{cluster.short_id}"


def find_key(api: AwsApi, cluster: ClusterRef) -> dict[str, Any] | None:
    """The cluster's key pair (with its public key where the API returns it), or None."""
    items = api.describe("describe_key_pairs", "KeyPairs", Filters=owned(cluster),
                         IncludePublicKey=True)
    return at_most_one("key pair", items, "KeyPairId", cluster)


def _key_body(line: str) -> str:
    """The type and base64 parts of an OpenSSH public key line (the comment does not count)."""
    return " ".join(line.split()[:2])


def ensure_ssh_key(api: AwsApi, target: CloudTarget, public_key: str, dry_run: bool) -> Ensured:
    """Import the key unless the cluster's key pair exists; a pair holding another key is
    replaced."""
    cluster = target.cluster
    name = key_name(cluster)
    actions: list[str] = []
    key = find_key(api, cluster)
    if key is not None and key.get("PublicKey") and \
            _key_body(key["PublicKey"]) != _key_body(public_key):
        actions.append(f"replace key pair {key['KeyName']} (it holds another key)")
        if dry_run:
            return Ensured(actions=tuple(actions))
        api.ec2("delete_key_pair", what=f"deleting key pair {key['KeyName']}",
                KeyPairId=key["KeyPairId"])
        key = None
    if key is None:
        if not actions:
            actions.append(f"import key pair {name}")
        if dry_run:
            return Ensured(actions=tuple(actions))
        key = api.ec2("import_key_pair", what=f"importing key pair {name}", KeyName=name,
                      PublicKeyMaterial=public_key.strip().encode(),
                      TagSpecifications=tag_specs(["key-pair"], cluster_tags(cluster, name)))
    resource = CloudResource("key-pair", key["KeyPairId"], key["KeyName"])
    return Ensured(resources=(resource,), actions=tuple(actions))
