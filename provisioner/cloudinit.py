"""cloud-init user-data for a node: rendering (one template per role, for each cloud), the size
and encoding each cloud's API takes, and the one reading the sandbox does (the host key and the
authorized keys; nothing else in user-data is acted on). Pure."""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .errors import ConfigError, InputError
from .kube.versions import (
    KUBERNETES_APT_KEY_FINGERPRINT,
    KUBERNETES_APT_KEY_URL,
    KUBERNETES_APT_REPOSITORY,
    KUBERNETES_MINOR,
)
from .textcheck import one_line

if TYPE_CHECKING:
    import jinja2  # imported where a template is rendered: commands that render none skip it

STATE_DIR = "/var/lib/cast"  # on the node
BOOT_MARKER = f"{STATE_DIR}/boot-done"  # written last by cloud-init; provisioner/nodes/boot.py reads it
BOOT_FAILURES = f"{STATE_DIR}/boot-failures"  # a reason per failed step, for the marker
WG0_RULES = "/etc/cast/wg0.nft"  # the host firewall on the mesh interface (nftables)

_PEM_LINE = re.compile(r"-----(BEGIN|END) OPENSSH PRIVATE KEY-----|[A-Za-z0-9+/=]{1,76}")

class UserDataTooLargeError(ConfigError):
    """The rendered user-data is over the cloud's limit: the templates have outgrown it."""

    def __init__(self, cloud: str, size: int, limit: int):
        self.cloud = cloud
        self.size = size
        self.limit = limit
        super().__init__(f"{cloud}: the node's cloud-init user-data is {size} bytes, over the cloud's limit of "
                         f"{limit} bytes (templates/cloud-init/)")


@dataclass(frozen=True)
class Bootstrap:
    """What the sandbox takes from a VM's user-data to boot it as a host."""

    host_key_private: str
    host_key_public: str
    authorized_keys: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Bootstrap(host_key_public={self.host_key_public!r}, authorized_keys={self.authorized_keys!r})"


@dataclass(frozen=True)
class AptSource:
    """Where a node's apt gets kubeadm, kubelet and kubectl: a repository (a flat one: the
    sources line is `deb [signed-by=...] <repository> /`) and its signing key, fetched from
    `key_url` or given as `key_text` (ASCII-armored; written by cloud-init), trusted only when
    it is exactly one key with `fingerprint`."""

    repository: str
    fingerprint: str
    key_url: str = ""
    key_text: str = ""


DEFAULT_APT_SOURCE = AptSource(KUBERNETES_APT_REPOSITORY, KUBERNETES_APT_KEY_FINGERPRINT,
                               key_url=KUBERNETES_APT_KEY_URL)


_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#\[\]@!&()*+,;=%-]+")
_FINGERPRINT = re.compile(r"[0-9A-F]{40}")
_ARMOR_LINE = re.compile(r"[A-Za-z0-9+/=:. -]*")


def check_apt_source(source: AptSource) -> None:
    """InputError unless the repository (and key URL) is an http(s) URL of safe characters
    (they go into shell commands), the fingerprint 40 upper-case hex digits, and exactly one of
    key_url and key_text given, key_text an ASCII-armored public key block."""
    for field, value in (("apt_repository", source.repository), ("apt_key", source.key_url)):
        if (value or field == "apt_repository") and not _URL.fullmatch(value):
            raise InputError(f"kubernetes.{field}", f"{value!r} is not an http(s) URL", "an http:// or https:// URL")
    if not _FINGERPRINT.fullmatch(source.fingerprint):
        raise InputError("kubernetes.apt_key_fingerprint", f"{source.fingerprint!r} is not a key fingerprint",
                         "40 hexadecimal digits")
    if bool(source.key_url) == bool(source.key_text):
        raise InputError("kubernetes.apt_key", "give the key's URL or its file (one of them)", "a URL or a file")
    lines = source.key_text.strip().splitlines()
    if source.key_text and not (lines[0] == "-----BEGIN PGP PUBLIC KEY BLOCK-----"
                                and lines[-1] == "-----END PGP PUBLIC KEY BLOCK-----"
                                and all(_ARMOR_LINE.fullmatch(line) for line in lines)):
        raise InputError("kubernetes.apt_key", "the key file is not an ASCII-armored OpenPGP public key",
                         "the output of gpg --armor --export")


@functools.lru_cache(maxsize=8)
def _environment(templates: Path | None) -> jinja2.Environment:
    """One environment per template directory (None: the templates shipped with cast, read
    through importlib.resources): it compiles each template once (and reloads one whose file
    changed), so rendering for many nodes costs little."""
    import jinja2

    from .data import CLOUD_INIT_TEMPLATES

    loader: jinja2.BaseLoader = (
        jinja2.PackageLoader("provisioner.data", CLOUD_INIT_TEMPLATES)
        if templates is None
        else jinja2.FileSystemLoader(str(templates))
    )
    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def user_data_limit(cloud: str) -> int:
    """The most user-data `cloud` accepts, in bytes of the text (its provider's
    user_data_limit). Raises InputError for an unknown cloud."""
    from .clouds import NAMES, provider_class

    if cloud not in NAMES:
        raise InputError("cloud", f"no user-data limit known for {cloud!r}", ", ".join(NAMES))
    return provider_class(cloud).user_data_limit


def check_user_data_size(cloud: str, text: str) -> None:
    """Raise UserDataTooLargeError (naming the cloud, the size and the limit) when `text` is
    over `cloud`'s user-data limit; InputError for a cloud without a known limit."""
    size, limit = len(text.encode()), user_data_limit(cloud)
    if size > limit:
        raise UserDataTooLargeError(cloud, size, limit)


def encode_user_data(cloud: str, text: str) -> str:
    """`text` as `cloud`'s API field takes it: base64 where its provider says
    user_data_base64, the text itself elsewhere. Raises as check_user_data_size does."""
    from .clouds import provider_class

    check_user_data_size(cloud, text)
    if provider_class(cloud).user_data_base64:
        return base64.b64encode(text.encode()).decode("ascii")
    return text


_ENVIRONMENT_LOCK = threading.Lock()


def _shared_environment(templates: Path | None) -> jinja2.Environment:
    # One thread builds it (the create's warm-up and a first VM request may ask at once).
    with _ENVIRONMENT_LOCK:
        return _environment(templates)


def prepare_templates(templates: Path | None = None) -> None:
    """Import the template engine and compile the role templates of `templates` (as in
    render_user_data), so that the first VM request renders at once: a create calls it on a
    thread of its own while the networks are made. Never raises: a template that is missing
    or does not compile is left for render_user_data to report."""
    from .regions import ROLES

    with contextlib.suppress(Exception):  # anything wrong here is render_user_data's to report
        environment = _shared_environment(templates)
        for role in ROLES:
            with contextlib.suppress(Exception):
                environment.get_template(f"{role}.yaml.j2")


def render_user_data(
    *,
    cluster: str,
    node: str,
    role: str,
    cloud: str,
    host_key_private: bytes,
    host_key_public: str,
    authorized_key: str,
    master_mesh_ips: Sequence[str] = (),
    templates: Path | None = None,
    apt_source: AptSource | None = None,
) -> str:
    """The #cloud-config text for one node, from `<role>.yaml.j2` in `templates` (default: the
    templates shipped with cast); already
    checked against `cloud`'s size limit (UserDataTooLargeError). Contains the node's host
    private key: a secret. `master_mesh_ips`: the masters' mesh addresses, the only peers a
    master's etcd ports are open to on wg0. `apt_source`: where kubeadm, kubelet and kubectl
    come from (default: pkgs.k8s.io for the pinned minor). InputError for a role without a template, an
    address that is not IPv4, and a variable holding a line break (a private key: a line that
    is not PEM), which would add YAML keys such as `bootcmd` to the cloud-config."""
    for field, value in (("cluster", cluster), ("node", node), ("role", role), ("cloud", cloud),
                         ("host_key_public", host_key_public), ("authorized_key", authorized_key)):
        one_line(field, value)
    private_text = host_key_private.decode().rstrip("\n")
    if not all(_PEM_LINE.fullmatch(line) for line in private_text.split("\n")):
        raise InputError("host_key_private", "is not an OpenSSH private key in PEM lines")
    try:
        masters = sorted(str(ipaddress.IPv4Address(ip)) for ip in master_mesh_ips)
    except ValueError:
        raise InputError("master_mesh_ips", f"{list(master_mesh_ips)!r} holds a non-IPv4 address", "IPv4") from None
    import jinja2

    try:
        template = _shared_environment(templates).get_template(f"{role}.yaml.j2")
    except jinja2.TemplateNotFound:
        raise InputError("role", f"no cloud-init template for {role!r}", "master, worker") from None
    source = apt_source or DEFAULT_APT_SOURCE
    check_apt_source(source)
    text = template.render(
        cluster=cluster,
        node=node,
        role=role,
        cloud=cloud,
        host_key_private=private_text,
        host_key_public=host_key_public,
        authorized_key=authorized_key,
        kubernetes_minor=KUBERNETES_MINOR,
        apt_repository=source.repository,
        apt_key_url=source.key_url,
        apt_key_text=source.key_text,
        apt_key_fingerprint=source.fingerprint,
        state_dir=STATE_DIR,
        marker=BOOT_MARKER,
        failures=BOOT_FAILURES,
        wg0_rules=WG0_RULES,
        master_mesh_ips=masters,
        api_port=6443,
        kubelet_port=10250,
        etcd_ports="2379-2380",
        vxlan_port=8472,  # flannel's vxlan backend, run over wg0 (kube/cni.py)
        nodeport_range="30000-32767",
    )
    check_user_data_size(cloud, text)
    return text


# What the sandbox reads of a VM's user-data (as root): the largest any cloud accepts (its
# providers' user_data_limit; tests/cloudinit checks it), a key line at most a few KiB, a few
# dozen authorized keys.
READ_LIMIT = 256 * 1024
KEY_LINE_LIMIT = 16 * 1024
AUTHORIZED_KEYS_LIMIT = 64


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses YAML aliases (`*name`): 503 bytes of nested aliases expand to
    72 M characters. cast's user-data never uses one."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases are not accepted in user-data")
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def read_bootstrap(user_data: str) -> Bootstrap | None:
    """The host key pair and authorized keys from user-data, or None when it holds no cast
    host key (a VM cast did not make) or is not what cast writes: over READ_LIMIT bytes, any
    YAML alias, keys that are not strings, a key line over KEY_LINE_LIMIT, more than
    AUTHORIZED_KEYS_LIMIT authorized keys."""
    if len(user_data) > READ_LIMIT:
        return None
    try:
        data = yaml.load(user_data, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict):
        return None
    keys = data.get("ssh_keys") or {}
    if not isinstance(keys, dict):
        return None
    private, public = keys.get("ed25519_private"), keys.get("ed25519_public")
    authorized = data.get("ssh_authorized_keys") or []
    if not (isinstance(private, str) and isinstance(public, str) and isinstance(authorized, list)):
        return None
    if len(authorized) > AUTHORIZED_KEYS_LIMIT or not all(isinstance(k, str) for k in authorized):
        return None
    if any(len(line) > KEY_LINE_LIMIT for line in (private, public, *authorized)):
        return None
    if any("\n" in line or "\r" in line for line in (public, *authorized)):
        return None
    return Bootstrap(private, public, tuple(authorized))
