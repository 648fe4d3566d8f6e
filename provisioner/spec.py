"""The cluster spec: what the user asked for, from flags and/or a YAML file, validated once
against the region map. Every rejection is an InputError (exit 2) naming the field and what
is allowed; nothing is created or written before a spec is valid.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .errors import InputError
from .regions import CLOUDS, ROLES, RegionMap
from .spec_ingress import IngressSpec, ingress_from

if TYPE_CHECKING:
    from .cloudinit import AptSource

NAME_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # whole string: fullmatch
NAME_MAX = 30
COUNT_MAX = 100
DEFAULT_SSH_CIDR = "0.0.0.0/0"
DEFAULT_API_CIDR = "0.0.0.0/0"


@dataclass(frozen=True)
class CloudSpec:
    """How many nodes of each role run on one cloud, and their sizes."""

    cloud: str
    masters: int
    workers: int
    sizes: Mapping[str, str]  # role -> size (defaults from the region map filled in)

    def count(self, role: str) -> int:
        return self.masters if role == "master" else self.workers


@dataclass(frozen=True)
class ClusterSpec:
    """A validated cluster spec."""

    name: str
    region: str
    clouds: tuple[CloudSpec, ...]
    ssh_cidrs: tuple[str, ...] = (DEFAULT_SSH_CIDR,)
    latency_threshold_ms: float = 10.0
    api_cidrs: tuple[str, ...] = (DEFAULT_API_CIDR,)  # where the Kubernetes API (tcp 6443) may be reached from
    nodeport_cidrs: tuple[str, ...] = ()  # where NodePorts may be reached from: nowhere unless asked
    kubernetes: AptSource | None = None  # where nodes get kubeadm & co.; None: pkgs.k8s.io
    ingress: IngressSpec | None = None  # a load balancer per cloud with workers, and DNS: off unless asked

    def cloud(self, name: str) -> CloudSpec | None:
        return next((c for c in self.clouds if c.cloud == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (stored in the state, shown as JSON)."""
        data: dict[str, Any] = {
            "name": self.name,
            "region": self.region,
            "ssh_cidrs": list(self.ssh_cidrs),
            "api_cidrs": list(self.api_cidrs),
            "nodeport_cidrs": list(self.nodeport_cidrs),
            "latency_threshold_ms": self.latency_threshold_ms,
            "clouds": {
                c.cloud: {"masters": c.masters, "workers": c.workers, "sizes": dict(c.sizes)} for c in self.clouds
            },
            **({"kubernetes": _source_dict(self.kubernetes)} if self.kubernetes else {}),
        }
        if self.ingress is not None:
            data["ingress"] = self.ingress.to_dict()
        return data


def _source_dict(source: AptSource) -> dict[str, str]:
    return {"apt_repository": source.repository, "apt_key_url": source.key_url, "apt_key_text": source.key_text,
            "apt_key_fingerprint": source.fingerprint}


# --- raw input -----------------------------------------------------------------------


@dataclass
class _RawCloud:
    masters: Any = None
    workers: Any = None
    sizes: dict[str, Any] = field(default_factory=dict)


def validate_name(name: Any) -> str:
    """A cluster name: a DNS label of lowercase letters, digits and '-', starting with a
    letter, at most 30 characters."""
    allowed = f"lowercase letters, digits and '-', starting with a letter, 1 to {NAME_MAX} characters"
    if not isinstance(name, str) or not name:
        raise InputError("name", "a cluster name is required", allowed)
    if len(name) > NAME_MAX:
        raise InputError("name", f"{name!r} is {len(name)} characters long", allowed)
    if not NAME_RE.fullmatch(name):
        raise InputError("name", f"{name!r} is not a DNS label", allowed)
    return name


def _count(value: Any, field_name: str) -> int:
    allowed = f"a whole number from 0 to {COUNT_MAX}"
    if isinstance(value, bool):
        raise InputError(field_name, f"{value!r} is not a number", allowed)
    if isinstance(value, str):
        if not re.fullmatch(r"-?\d+", value.strip()):
            raise InputError(field_name, f"{value!r} is not a whole number", allowed)
        value = int(value)
    if not isinstance(value, int):
        raise InputError(field_name, f"{value!r} is not a whole number", allowed)
    if value < 0:
        raise InputError(field_name, f"{value} is negative", allowed)
    if value > COUNT_MAX:
        raise InputError(field_name, f"{value} is too many", allowed)
    return value


def parse_cloud_flag(text: str) -> tuple[str, int, int]:
    """Parse `CLOUD:MASTERS:WORKERS` (the --cloud flag)."""
    parts = text.split(":")
    if len(parts) != 3:
        raise InputError(
            "--cloud",
            f"{text!r} is not CLOUD:MASTERS:WORKERS",
            f"e.g. aws:1:2; clouds {', '.join(CLOUDS)}",
        )
    cloud = parts[0].strip().lower()
    if cloud not in CLOUDS:
        raise InputError("--cloud", f"unknown cloud {parts[0]!r}", ", ".join(CLOUDS))
    return (
        cloud,
        _count(parts[1], f"--cloud {cloud}: masters"),
        _count(parts[2], f"--cloud {cloud}: workers"),
    )


def parse_size_flag(text: str) -> tuple[str, str, str]:
    """Parse `CLOUD:ROLE:SIZE` (the --size flag)."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in CLOUDS or parts[1] not in ROLES or not parts[2]:
        raise InputError(
            "--size",
            f"{text!r} is not CLOUD:ROLE:SIZE",
            f"e.g. aws:worker:t3.large; clouds {', '.join(CLOUDS)}; roles {', '.join(ROLES)}",
        )
    return parts[0], parts[1], parts[2]


def load_spec_file(path: Path) -> dict[str, Any]:
    """Read a cluster file. Missing, unreadable or broken YAML: InputError naming the file
    (and the line, for broken YAML)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError("-f", f"{path}: no such file") from None
    except OSError as exc:
        raise InputError("-f", f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError("-f", f"{path}: {where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("-f", f"{path}: expected a mapping at the top, found {type(data).__name__}")
    known = {"name", "region", "clouds", "ssh_cidr", "ssh_cidrs", "api_cidr", "api_cidrs", "nodeport_cidr",
             "nodeport_cidrs", "latency_threshold_ms", "kubernetes", "ingress"}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise InputError(f"{path}: {unknown[0]}", "unknown key", ", ".join(sorted(known)))
    return data


def _clouds_from_file(data: Mapping[str, Any], source: str) -> dict[str, _RawCloud]:
    clouds = data.get("clouds") or {}
    if not isinstance(clouds, dict):
        raise InputError(f"{source}: clouds", "expected a mapping of cloud to counts", ", ".join(CLOUDS))
    out: dict[str, _RawCloud] = {}
    for cloud, body in clouds.items():
        if cloud not in CLOUDS:
            raise InputError(f"{source}: clouds", f"unknown cloud {cloud!r}", ", ".join(CLOUDS))
        if not isinstance(body, dict):
            raise InputError(f"{source}: clouds.{cloud}", "expected {masters: N, workers: N}")
        extra = sorted(set(body) - {"masters", "workers", "sizes"})
        if extra:
            raise InputError(f"{source}: clouds.{cloud}.{extra[0]}", "unknown key", "masters, workers, sizes")
        sizes = body.get("sizes") or {}
        if not isinstance(sizes, dict) or any(r not in ROLES for r in sizes):
            raise InputError(f"{source}: clouds.{cloud}.sizes", "expected a mapping of role to size", ", ".join(ROLES))
        out[cloud] = _RawCloud(body.get("masters", 0), body.get("workers", 0), dict(sizes))
    return out


def build_spec(
    regions: RegionMap,
    *,
    name: str | None,
    region: str | None = None,
    cloud_flags: Iterable[str] = (),
    size_flags: Iterable[str] = (),
    ssh_cidrs: Iterable[str] = (),
    api_cidrs: Iterable[str] = (),
    nodeport_cidrs: Iterable[str] = (),
    latency_threshold_ms: float | None = None,
    file: Path | None = None,
    ingress: bool = False,
    ingress_domain: str | None = None,
    dns_provider: str | None = None,
    acme_email: str | None = None,
) -> ClusterSpec:
    """Build and validate a spec from a file (optional) and flags; flags override the file
    (a --cloud flag replaces that cloud's counts). Raises InputError on any problem."""
    data: dict[str, Any] = load_spec_file(file) if file else {}
    source = str(file) if file else "spec"
    clouds = _clouds_from_file(data, source)

    seen: set[str] = set()
    for text in cloud_flags:
        cloud, masters, workers = parse_cloud_flag(text)
        if cloud in seen:
            raise InputError("--cloud", f"{cloud} is given more than once", "each cloud once")
        seen.add(cloud)
        sizes = clouds[cloud].sizes if cloud in clouds else {}
        clouds[cloud] = _RawCloud(masters, workers, sizes)
    for text in size_flags:
        cloud, role, size = parse_size_flag(text)
        if cloud not in clouds:
            raise InputError("--size", f"{cloud} has no nodes in this cluster", ", ".join(clouds) or "none")
        clouds[cloud].sizes[role] = size

    name = validate_name(name if name is not None else data.get("name"))
    region_key = region or data.get("region")
    if not region_key:
        raise InputError("--region", "a region is required", ", ".join(regions.regions))
    if region_key not in regions.regions:
        raise InputError("--region", f"unknown region {region_key!r}", ", ".join(regions.regions))
    reg = regions.region(region_key)

    if not clouds:
        raise InputError("--cloud", "no cloud given", f"CLOUD:MASTERS:WORKERS with clouds {', '.join(reg.clouds)}")
    specs = []
    for cloud in CLOUDS:  # a stable order, whatever the input order
        if cloud not in clouds:
            continue
        raw = clouds[cloud]
        if cloud not in reg.clouds:
            raise InputError(
                "--cloud",
                f"{cloud} is not offered in region {region_key}",
                ", ".join(reg.clouds),
            )
        masters = _count(raw.masters, f"{cloud}: masters")
        workers = _count(raw.workers, f"{cloud}: workers")
        sizes = dict(reg.clouds[cloud].sizes)
        for role, size in raw.sizes.items():
            if size not in regions.sizes[cloud]:
                raise InputError(f"{cloud} {role} size", f"unknown size {size!r}", ", ".join(regions.sizes[cloud]))
            sizes[role] = size
        specs.append(CloudSpec(cloud, masters, workers, sizes))
    if sum(c.masters for c in specs) < 1:
        raise InputError("--cloud", "the cluster has no master", "at least one master on some cloud, e.g. aws:1:2")
    if sum(c.masters + c.workers for c in specs) < 1:
        raise InputError("--cloud", "the cluster has no node")

    cidrs = _cidrs(ssh_cidrs, data, "ssh", (DEFAULT_SSH_CIDR,))
    api = _cidrs(api_cidrs, data, "api", (DEFAULT_API_CIDR,))
    nodeports = _cidrs(nodeport_cidrs, data, "nodeport", ())

    threshold = latency_threshold_ms if latency_threshold_ms is not None else data.get("latency_threshold_ms")
    if threshold is None:
        threshold = regions.latency_threshold_ms
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold <= 0:
        raise InputError("--latency-threshold-ms", f"{threshold!r} is not a positive number", "a number of ms > 0")

    ingress_spec = ingress_from(data, source, ingress, ingress_domain, dns_provider, acme_email)
    if ingress_spec is not None and not any(c.workers for c in specs):
        raise InputError("--ingress", "the cluster has no worker for a load balancer to send traffic to",
                         "at least one worker, e.g. --cloud aws:1:2")

    return ClusterSpec(
        name=name,
        region=region_key,
        clouds=tuple(specs),
        ssh_cidrs=cidrs,
        latency_threshold_ms=float(threshold),
        api_cidrs=api,
        nodeport_cidrs=nodeports,
        kubernetes=_kubernetes_source(data.get("kubernetes"), file),
        ingress=ingress_spec,
    )


KUBERNETES_KEYS = ("apt_repository", "apt_key", "apt_key_fingerprint")


def _kubernetes_source(raw: Any, file: Path | None) -> AptSource | None:
    """The spec file's `kubernetes:` section: an apt repository (http or https URL) holding
    kubeadm, kubelet and kubectl, its signing key (a URL, or a file: relative to the spec
    file) and the key's fingerprint, all three required; None when the section is absent
    (pkgs.k8s.io). InputError naming the field otherwise."""
    if raw is None:
        return None
    from .cloudinit import AptSource, check_apt_source

    allowed = ", ".join(KUBERNETES_KEYS)
    if not isinstance(raw, dict):
        raise InputError("kubernetes", "expected a mapping", allowed)
    unknown = sorted(set(map(str, raw)) - set(KUBERNETES_KEYS))
    if unknown:
        raise InputError(f"kubernetes.{unknown[0]}", "unknown key", allowed)
    for key in KUBERNETES_KEYS:
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise InputError(f"kubernetes.{key}", "missing or not a string", allowed)
    key = raw["apt_key"].strip()
    fingerprint = re.sub(r"\s+", "", raw["apt_key_fingerprint"]).upper()
    if re.match(r"https?://", key):
        source = AptSource(raw["apt_repository"].strip(), fingerprint, key_url=key)
    else:
        path = Path(key).expanduser()
        if not path.is_absolute() and file is not None:
            path = file.parent / path
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError("kubernetes.apt_key", f"{path}: cannot be read ({type(exc).__name__})",
                             "an http(s) URL or a readable key file") from None
        source = AptSource(raw["apt_repository"].strip(), fingerprint, key_text=text)
    check_apt_source(source)
    return source


def _cidrs(flags: Iterable[str], data: Mapping[str, Any], kind: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """The `--<kind>-cidr` flags, else the file's `<kind>_cidrs` or `<kind>_cidr` (one or a
    list), else `default`; each an IPv4 network. InputError naming the flag otherwise."""
    raw: Any = list(flags) or data.get(f"{kind}_cidrs") or data.get(f"{kind}_cidr") or list(default)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise InputError(f"--{kind}-cidr", f"{raw!r} is not a list of IPv4 networks", "e.g. 203.0.113.0/24")
    out = []
    for c in raw:
        try:
            out.append(str(ipaddress.IPv4Network(str(c), strict=True)))
        except ValueError:
            raise InputError(f"--{kind}-cidr", f"{c!r} is not an IPv4 network", "e.g. 203.0.113.0/24") from None
    return tuple(out)


def spec_from_dict(data: Mapping[str, Any]) -> ClusterSpec:
    """Rebuild a spec stored by `ClusterSpec.to_dict` (already validated when stored)."""
    clouds = tuple(
        CloudSpec(cloud, int(v["masters"]), int(v["workers"]), dict(v["sizes"])) for cloud, v in data["clouds"].items()
    )
    return ClusterSpec(
        name=data["name"],
        region=data["region"],
        clouds=clouds,
        ssh_cidrs=tuple(data["ssh_cidrs"]),
        latency_threshold_ms=float(data["latency_threshold_ms"]),
        api_cidrs=tuple(data.get("api_cidrs", (DEFAULT_API_CIDR,))),  # stored before --api-cidr existed
        nodeport_cidrs=tuple(data.get("nodeport_cidrs", ())),
        kubernetes=_source_from_dict(data.get("kubernetes")),
        ingress=IngressSpec(**data["ingress"]) if data.get("ingress") is not None else None,
    )


def _source_from_dict(data: Mapping[str, str] | None) -> AptSource | None:
    if not data:
        return None
    from .cloudinit import AptSource

    return AptSource(data["apt_repository"], data["apt_key_fingerprint"], key_url=data.get("apt_key_url", ""),
                     key_text=data.get("apt_key_text", ""))


def with_counts(spec: ClusterSpec, cloud: str, masters: int, workers: int, sizes: Mapping[str, str]) -> ClusterSpec:
    """The spec with one cloud's counts changed (added if absent)."""
    others = [c for c in spec.clouds if c.cloud != cloud]
    new = CloudSpec(cloud, masters, workers, dict(sizes))
    ordered = sorted([*others, new], key=lambda c: CLOUDS.index(c.cloud))
    return replace(spec, clouds=tuple(ordered))
