"""The emulator on loopback: how a provider knows its endpoint is one, and the bearer auth the
Azure-core based SDKs (azure-mgmt-*, pydo) send to it over plain http. Used only when an
endpoint override points at this machine."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit


def is_loopback(endpoint: str) -> bool:
    """True when the endpoint URL points at this machine (127.0.0.0/8, ::1, localhost)."""
    host = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def static_bearer(token: str) -> Any:
    """An azure-core policy that sends `token` as a bearer token without azure-core's
    https-only check. A SansIO policy: one instance can serve every client and thread (each
    pipeline wraps it in a runner of its own)."""
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class StaticBearer(SansIOHTTPPolicy):
        def on_request(self, request: Any) -> None:
            request.http_request.headers["Authorization"] = f"Bearer {token}"

    return StaticBearer()
