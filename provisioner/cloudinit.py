"""cloud-init user-data for a node: rendering (for the clouds) and the one reading the sandbox
does (the host key and the authorized keys; nothing else in user-data is acted on). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "cloud-init"


@dataclass(frozen=True)
class Bootstrap:
    """What the sandbox takes from a VM's user-data to boot it as a host."""

    host_key_private: str
    host_key_public: str
    authorized_keys: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Bootstrap(host_key_public={self.host_key_public!r}, authorized_keys={self.authorized_keys!r})"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_user_data(
    *,
    cluster: str,
    node: str,
    role: str,
    cloud: str,
    host_key_private: bytes,
    host_key_public: str,
    authorized_key: str,
) -> str:
    """The #cloud-config text for one node. Contains the node's host private key: a secret."""
    template = _environment().get_template("node.yaml.j2")
    return template.render(
        cluster=cluster,
        node=node,
        role=role,
        cloud=cloud,
        host_key_private=host_key_private.decode().rstrip("\n"),
        host_key_public=host_key_public,
        authorized_key=authorized_key,
    )


def read_bootstrap(user_data: str) -> Bootstrap | None:
    """The host key pair and authorized keys from user-data, or None when it holds no
    cast host key (a VM cast did not make)."""
    try:
        data = yaml.safe_load(user_data)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    keys = data.get("ssh_keys") or {}
    private, public = keys.get("ed25519_private"), keys.get("ed25519_public")
    authorized = data.get("ssh_authorized_keys") or []
    if not (isinstance(private, str) and isinstance(public, str) and isinstance(authorized, list)):
        return None
    return Bootstrap(private, public, tuple(str(k) for k in authorized))
