"""The one door to DigitalOcean's API: pydo, with its quirks kept in here.

- Credentials: DIGITALOCEAN_TOKEN. Endpoint: CAST_DIGITALOCEAN_ENDPOINT (default the real
  API). pydo (azure-core) refuses a bearer token over plain http; a static bearer policy
  replaces that check only when the endpoint is on loopback (the sandbox, the tests).
- pydo returns some error bodies (a GET of a missing resource) instead of raising, returns
  raw dicts and leaves paging to the caller: `call` looks at the HTTP status of every reply,
  `pages` follows `links.pages.next`.
- Errors map to ours: 429 and 5xx are retried here with backoff honouring Retry-After and
  then raised as TransientError; 401/403 AuthError; 404 NotFoundError; other 4xx CloudError
  (callers refine 422s they understand, such as the droplet limit).
- One pydo client per thread (work runs in bounded pools).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .. import logs
from ..errors import AuthError, CloudError, NotFoundError, TransientError
from ..retry import backoff_delays, retry_budget_s
from .api_log import azure_core_policy
from .loopback import is_loopback, static_bearer

CLOUD = "digitalocean"
TOKEN_ENV = "DIGITALOCEAN_TOKEN"
ENDPOINT_ENV = "CAST_DIGITALOCEAN_ENDPOINT"
DEFAULT_ENDPOINT = "https://api.digitalocean.com"
PER_PAGE = 200  # the API's maximum: fewest calls per listing


class ApiError(CloudError):
    """A refused call that callers may refine (a 422 or a 403 they understand)."""

    def __init__(self, status: int, error_id: str, detail: str, what: str):
        self.status, self.error_id, self.detail = status, error_id, detail
        super().__init__(CLOUD, f"{what}: HTTP {status} {error_id}: {detail}")


class DoApi:
    """DigitalOcean's API for one cast process. Counts the calls it makes (`calls`)."""

    transient_budget_s: float | None = None  # None: retry.retry_budget_s()
    retry_initial_s = 0.5
    retry_max_s = 10.0

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self.calls = 0
        self.endpoint = os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT

    def _token(self) -> str:
        token = os.environ.get(TOKEN_ENV)
        if not token:
            raise AuthError(
                CLOUD,
                f"{TOKEN_ENV} is not set: create a personal access token in the DigitalOcean control "
                f"panel (API > Tokens, read and write) and export it as {TOKEN_ENV}",
            )
        return token

    def client(self) -> Any:
        """This thread's pydo client, made on first use."""
        client = getattr(self._local, "client", None)
        if client is None:
            import pydo

            token = self._token()
            kwargs: dict[str, Any] = {"endpoint": self.endpoint, "retry_total": 0,
                                      "per_retry_policies": [azure_core_policy(CLOUD)]}
            if is_loopback(self.endpoint):
                kwargs["authentication_policy"] = static_bearer(token)
            client = pydo.Client(token=token, **kwargs)
            self._local.client = client
        return client

    def call(self, what: str, operation: Callable[[Any], Callable[..., Any]], *args: Any, **kwargs: Any) -> Any:
        """Run `operation(client)(*args, **kwargs)` and return the reply body (None for 204).
        `what` names the call in errors. Retries 429/5xx and connection failures."""
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        deadline = time.monotonic() + (
            retry_budget_s() if self.transient_budget_s is None else self.transient_budget_s
        )
        attempt = 1
        for delay in backoff_delays(self.retry_initial_s, self.retry_max_s):
            retry_after, status = 0.0, 0
            with self._lock:
                self.calls += 1
            try:
                status, body, headers = operation(self.client())(*args, cls=_raw, **kwargs)
            except HttpResponseError as exc:
                response = exc.response
                status = exc.status_code or 0
                body = _json_or_none(response)
                headers = dict(getattr(response, "headers", None) or {})
            except (ServiceRequestError, ServiceResponseError) as exc:
                reason = f"{what}: no answer from {self.endpoint} ({type(exc).__name__})"
                error: CloudError = TransientError(CLOUD, reason)
            else:
                if status < 400:
                    return body
            if status:
                error = _map(status, body, what)
                retry_after = _retry_after(headers)
            if not isinstance(error, TransientError) or time.monotonic() + max(delay, retry_after) > deadline:
                raise error
            attempt += 1
            logs.retry(f"{CLOUD} {what}", str(error), max(delay, retry_after), attempt)
            time.sleep(max(delay, retry_after))
        raise AssertionError("unreachable")

    def pages(
        self, what: str, operation: Callable[[Any], Callable[..., Any]], key: str, **params: Any
    ) -> Iterator[Any]:
        """Every item under `key` of a paged listing, one call per page of PER_PAGE."""
        page = 1
        while True:
            body = self.call(what, operation, per_page=PER_PAGE, page=page, **params) or {}
            yield from body.get(key) or []
            if not ((body.get("links") or {}).get("pages") or {}).get("next"):
                return
            page += 1


def _raw(pipeline_response: Any, body: Any, headers: Any) -> tuple[int, Any, dict[str, str]]:
    response = pipeline_response.http_response
    return response.status_code, body, dict(response.headers)


def _json_or_none(response: Any) -> Any:
    try:
        return response.json() if response is not None else None
    except ValueError:
        return None


def _retry_after(headers: dict[str, str]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return 0.0
    return 0.0


def _map(status: int, body: Any, what: str) -> CloudError:
    error_id = str((body or {}).get("id", "")) if isinstance(body, dict) else ""
    detail = str((body or {}).get("message", "")) if isinstance(body, dict) else ""
    if status == 429 or status >= 500:
        return TransientError(CLOUD, f"{what}: HTTP {status} {error_id or ''} {detail}".rstrip())
    if status == 401:
        return AuthError(
            CLOUD,
            f"{what}: the token in {TOKEN_ENV} was refused (HTTP 401): check that it is current and "
            "has read and write scope",
        )
    if status == 403:
        return AuthError(CLOUD, f"{what}: refused (HTTP 403): {detail or 'the token lacks the needed scope'}")
    if status == 404:
        return NotFoundError(CLOUD, f"{what}: not found")
    return ApiError(status, error_id, detail, what)
