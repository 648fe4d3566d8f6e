"""The spec's ingress section (`--ingress`, `--ingress-domain`, `--dns-provider`,
`--acme-email`, or `ingress:` in the cluster file): validated, or InputError (exit 2) naming
the field and what is allowed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InputError


@dataclass(frozen=True)
class IngressSpec:
    """Ingress: a load balancer per cloud with workers; with a `domain`, an A record set there
    holding every load balancer's address, in the user's zone on DNS `dns_provider` (None: cast
    prints the records to create); `email` for the ACME ClusterIssuer."""

    domain: str | None = None
    dns_provider: str | None = None
    email: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "dns_provider": self.dns_provider, "email": self.email}


DOMAIN_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
NO_DNS = "none"


def dns_provider_names() -> tuple[str, ...]:
    """The DNS providers `--dns-provider` takes (and `none`)."""
    from .clouds.balancing import DNS_PROVIDERS  # light: no SDK

    return (*DNS_PROVIDERS, NO_DNS)


def ingress_from(data: Mapping[str, Any], source: str, flag: bool, domain: Any, provider: Any,
             email: Any) -> IngressSpec | None:
    """The ingress spec from `--ingress`, `--ingress-domain`, `--dns-provider` and `--acme-email`
    (any of them turns ingress on), else the file's `ingress:` (true, or a mapping of domain,
    dns_provider and email); None when neither asks for it."""
    raw = data.get("ingress")
    if raw is True or raw is None or raw is False:
        body: dict[str, Any] = {}
    elif isinstance(raw, dict):
        extra = sorted(set(map(str, raw)) - {"domain", "dns_provider", "email"})
        if extra:
            raise InputError(f"{source}: ingress.{extra[0]}", "unknown key", "domain, dns_provider, email")
        body = dict(raw)
    else:
        raise InputError(f"{source}: ingress", f"{raw!r} is not true or a mapping", "true, or domain, dns_provider, "
                                                                                     "email")
    wanted = flag or any(v is not None for v in (domain, provider, email)) or raw is True or isinstance(raw, dict)
    if not wanted:
        return None
    domain = domain if domain is not None else body.get("domain")
    provider = provider if provider is not None else body.get("dns_provider")
    email = email if email is not None else body.get("email")
    if domain is not None:
        domain = _domain(domain)
    providers = dns_provider_names()
    if provider is not None:
        if not isinstance(provider, str) or provider.strip().lower() not in providers:
            raise InputError("--dns-provider", f"unknown DNS provider {provider!r}", ", ".join(providers))
        provider = provider.strip().lower()
        if provider == NO_DNS:
            provider = None
        elif domain is None:
            raise InputError("--dns-provider", f"{provider} needs a domain to hold the records",
                             "--ingress-domain, e.g. apps.example.com")
    if email is not None:
        if not isinstance(email, str) or not EMAIL_RE.fullmatch(email.strip()):
            raise InputError("--acme-email", f"{email!r} is not an e-mail address", "e.g. ops@example.com")
        email = email.strip()
    return IngressSpec(domain=domain, dns_provider=provider, email=email)


def _domain(value: Any) -> str:
    """A fully qualified DNS name of two or more labels, lowercase, without the trailing dot."""
    allowed = "a DNS name of two or more labels of letters, digits and '-', e.g. apps.example.com"
    if not isinstance(value, str) or not value.strip():
        raise InputError("--ingress-domain", f"{value!r} is not a DNS name", allowed)
    name = value.strip().lower().removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(DOMAIN_LABEL_RE.fullmatch(label) for label in labels) \
            or labels[-1].isdigit():
        raise InputError("--ingress-domain", f"{value!r} is not a DNS name", allowed)
    return name
