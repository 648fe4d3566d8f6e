"""Cloud DNS behind the ingress contract (balancing.DnsZone), through google-cloud-dns, the
official client: it takes an endpoint override (client_options' api_endpoint), so the sandbox's
GCP emulator serves it on the same CAST_GCP_ENDPOINT as compute. Credentials and project are
gcp_api's (a static token at loopback); every change is a `changes.create` (a record set is
replaced by deleting the old one and adding the new one in one change) waited on until `done`.
The SDK is imported lazily.
"""

from __future__ import annotations

from typing import Any

from ..errors import CloudError, InputError
from ..retry import retry_transient, wait_until
from .api_log import hook_requests_session
from .balancing import DnsZone, RecordSet, zone_for
from .gcp_api import CLOUD, GcpApi, map_error

DNS_SCOPES = ["https://www.googleapis.com/auth/ndev.clouddns.readwrite"]
CHANGE_TIMEOUT_S = 300.0


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _quoted(value: str) -> str:
    """A TXT value as Cloud DNS keeps it (a quoted character string)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquoted(value: str) -> str:
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


class Zone(DnsZone):
    """The project's public managed zone that holds `domain` (the longest dnsName that is a
    suffix of it)."""

    provider = "clouddns"

    def __init__(self, domain: str, *, transient_budget_s: float | None = None):
        self.domain = domain.rstrip(".").lower()
        self._budget = transient_budget_s
        self._api = GcpApi(transient_budget_s=transient_budget_s)
        self._client = self._make_client()
        zones = self._call("list managed zones", lambda: list(self._client.list_zones()))
        found = zone_for(self.domain, zones, name=lambda z: str(z.dns_name or ""))
        if found is None:
            raise InputError("ingress.domain", f"no Cloud DNS managed zone in project {self._api.project} holds "
                                               f"{self.domain} (provider clouddns)",
                             ", ".join(sorted(z.dns_name.rstrip(".") for z in zones)) or "none: create the zone")
        self.zone: Any = found

    def _make_client(self) -> Any:
        from google.cloud import dns  # type: ignore[attr-defined]

        credentials = self._api.credentials
        if not self._api.sandbox and hasattr(credentials, "with_scopes"):
            credentials = credentials.with_scopes(DNS_SCOPES)
        options = {"api_endpoint": self._api.endpoint} if self._api.endpoint else None
        client = dns.Client(project=self._api.project, credentials=credentials, client_options=options)
        hook_requests_session(client._http)  # the AuthorizedSession has no public accessor
        return client

    def _call(self, what: str, fn: Any) -> Any:
        def once() -> Any:
            try:
                return fn()
            except CloudError:
                raise
            except Exception as exc:
                mapped = map_error(exc, what)
                if type(mapped) is CloudError and not _is_sdk_error(exc):
                    raise
                raise mapped from None

        return retry_transient(once, budget_s=self._budget, what=f"{CLOUD} {what}")

    # --- the contract ------------------------------------------------------------------

    def record_sets(self, name: str) -> list[RecordSet]:
        fqdn = _fqdn(name)
        found = self._call(f"list record sets of zone {self.zone.name}",
                           lambda: list(self.zone.list_resource_record_sets()))
        return [RecordSet(name=r.name.rstrip("."), type=r.record_type, ttl=int(r.ttl),
                          values=tuple(_unquoted(v) if r.record_type == "TXT" else v for v in r.rrdatas))
                for r in found if r.name.lower() == fqdn]

    def upsert(self, record: RecordSet) -> None:
        old = next((r for r in self.record_sets(record.name) if r.type == record.type), None)
        if old is not None and sorted(old.values) == sorted(record.values) and old.ttl == record.ttl:
            return
        changes = self.zone.changes()
        if old is not None:
            changes.delete_record_set(self._sdk_record(old))
        changes.add_record_set(self._sdk_record(record))
        self._apply(changes, f"set {record.type} {record.name}")

    def delete(self, record: RecordSet) -> None:
        old = next((r for r in self.record_sets(record.name) if r.type == record.type), None)
        if old is None:
            return
        changes = self.zone.changes()
        changes.delete_record_set(self._sdk_record(old))
        self._apply(changes, f"delete {record.type} {record.name}")

    # --- helpers -----------------------------------------------------------------------

    def _sdk_record(self, record: RecordSet) -> Any:
        values = [_quoted(v) if record.type == "TXT" else v for v in record.values]
        return self.zone.resource_record_set(_fqdn(record.name), record.type, record.ttl, values)

    def _apply(self, changes: Any, what: str) -> None:
        """Send one change and block until Cloud DNS says it is done."""
        self._call(what, changes.create)
        if changes.status == "done":
            return

        def done() -> bool:
            self._call(f"wait for {what}", changes.reload)
            return bool(changes.status == "done")

        wait_until(done, what=what, timeout_s=CHANGE_TIMEOUT_S, initial=0.05, maximum=2.0)


def _is_sdk_error(exc: Exception) -> bool:
    module = type(exc).__module__
    return module.startswith(("google.", "requests")) or isinstance(exc, ConnectionError | TimeoutError)
