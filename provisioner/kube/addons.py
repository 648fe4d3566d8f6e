"""The cluster side of ingress, applied by the first master after the pod network: the ingress
controller (ingress_nginx) and the certificate manager (cert_manager), with a ClusterIssuer for
Let's Encrypt when the user gave an e-mail address. Each is a pinned manifest, checked by SHA-256,
applied through a kustomization, as flannel is (cni)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from . import cert_manager, ingress_nginx, paths

# an address ACME takes as a contact: one line, no spaces, a local part and a dotted domain
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class IngressSettings:
    """What the cluster side of ingress needs from the spec: the ACME account's e-mail, or None
    (no ClusterIssuer: the user brings certificates). ValueError on an address that is not one."""

    email: str | None = None
    # load balancers' addresses the controller's Service takes too (balancing.LoadBalancing.keeps_port)
    external_ips: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.email is not None and not _EMAIL.match(self.email):
            raise ValueError(f"not an e-mail address: {self.email!r}")
        for address in self.external_ips:
            ipaddress.IPv4Address(address)  # ValueError: not one


@dataclass(frozen=True)
class AddonFiles:
    """What the first master needs to install the add-ons: its directories (made 0700), the
    files (path -> text, all public, mode 0644) and the commands run after the pod network's."""

    directories: tuple[str, ...]
    files: tuple[tuple[str, str], ...]
    commands: tuple[str, ...]


def addon_files(kubeconfig: str, settings: IngressSettings) -> AddonFiles:
    """ingress-nginx, then cert-manager (and its issuer), with the admin `kubeconfig`."""
    return AddonFiles(
        directories=(paths.INGRESS_NGINX_DIR, paths.CERT_MANAGER_DIR),
        files=ingress_nginx.files(settings.external_ips) + cert_manager.files(settings.email),
        commands=ingress_nginx.commands(kubeconfig) + cert_manager.commands(kubeconfig, settings.email),
    )
