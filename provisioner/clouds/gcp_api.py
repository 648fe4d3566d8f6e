"""Talking to the compute v1 API: credentials, project, clients, error mapping, operations.

google-cloud-compute is imported lazily (inside functions). Every call goes through
`GcpApi.call`, which maps SDK errors to provisioner.errors and retries TransientError with
backoff (the SDK's own retry is switched off so there is one retry policy with one budget).
Mutations use the `*_unary` methods and wait on the returned operation with our own
operation clients, built with the same endpoint: the SDK's ExtendedOperation polls through
clients that ignore client_options (SDK-NOTES section 2, fix 3).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import (
    AuthError,
    CapacityError,
    CloudError,
    DependencyError,
    NotFoundError,
    TransientError,
)
from ..retry import DeadlineError, backoff_delays, retry_transient
from . import gcp_sdk
from .api_log import hook_requests_session
from .loopback import is_loopback

T = TypeVar("T")
CLOUD = "gcp"
ENDPOINT_ENV = "CAST_GCP_ENDPOINT"
SANDBOX_TOKEN_ENV = "CAST_GCP_TOKEN"  # the bearer sent to a loopback endpoint (default "sandbox")
PROJECT_ENVS = ("CAST_GCP_PROJECT", "GOOGLE_CLOUD_PROJECT")
SANDBOX_PROJECT = "cast-sandbox"
SCOPES = ["https://www.googleapis.com/auth/compute"]
CAPACITY_CODES = {"QUOTA_EXCEEDED", "ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"}
IN_USE = {"resourceInUseByAnotherResource", "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE"}
THROTTLED = {"rateLimitExceeded", "userRateLimitExceeded"}
CALL_TIMEOUT_S = 60.0


class AlreadyExistsError(CloudError):
    """A create found the name taken (HTTP 409); the caller decides whether that is fine."""



def _reasons(exc: Any) -> set[str]:
    return {e.get("reason", "") for e in (getattr(exc, "errors", None) or []) if isinstance(e, dict)}


def map_error(exc: Exception, what: str, capacity_hint: str = "") -> CloudError:
    """Our error for an SDK exception raised while doing `what` (e.g. "create network x")."""
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    message = getattr(exc, "message", None) or str(exc)
    reasons = _reasons(exc)
    if isinstance(exc, gexc.Forbidden) and reasons & {"quotaExceeded"}:
        return CapacityError(CLOUD, f"{what}: quota exceeded in {capacity_hint}: {message}")
    if isinstance(exc, gexc.TooManyRequests | gexc.ServiceUnavailable | gexc.InternalServerError
                  | gexc.BadGateway | gexc.GatewayTimeout | gexc.DeadlineExceeded) or reasons & THROTTLED:
        return TransientError(CLOUD, f"{what}: {message}")
    if isinstance(exc, gexc.NotFound):
        return NotFoundError(CLOUD, f"{what}: {message}")
    if isinstance(exc, gexc.Conflict):
        return AlreadyExistsError(CLOUD, f"{what}: {message}")
    if reasons & IN_USE:
        return DependencyError(CLOUD, f"{what}: {message}")
    if isinstance(exc, gexc.Unauthorized | gexc.Forbidden | auth_exc.GoogleAuthError):
        return AuthError(CLOUD, f"{what}: not authorised ({message}). Check the application-default "
                                "credentials (gcloud auth application-default login, or "
                                "GOOGLE_APPLICATION_CREDENTIALS) and the project's IAM roles.")
    if isinstance(exc, ConnectionError | TimeoutError) or type(exc).__module__.startswith("requests"):
        return TransientError(CLOUD, f"{what}: {type(exc).__name__}")
    return CloudError(CLOUD, f"{what}: {message}")


def operation_error(op: Any, what: str, capacity_hint: str) -> CloudError | None:
    """Our error for a DONE operation that failed, or None when it succeeded."""
    errors = list(op.error.errors) if op.error else []
    if not errors and not op.http_error_status_code:
        return None
    codes = {e.code for e in errors}
    text = "; ".join(e.message for e in errors) or op.http_error_message
    if codes & CAPACITY_CODES:
        return CapacityError(CLOUD, f"{what}: no capacity or quota in {capacity_hint}: {text}")
    if codes & IN_USE:
        return DependencyError(CLOUD, f"{what}: {text}")
    if "RESOURCE_NOT_FOUND" in codes or op.http_error_status_code == 404:
        return NotFoundError(CLOUD, f"{what}: {text}")
    if "RESOURCE_ALREADY_EXISTS" in codes or op.http_error_status_code == 409:
        return AlreadyExistsError(CLOUD, f"{what}: {text}")
    return CloudError(CLOUD, f"{what}: {text}")


class GcpApi:
    """The project, the credentials and per-thread compute clients."""

    def __init__(self, *, transient_budget_s: float | None = None, op_timeout_s: float = 600.0):
        gcp_sdk.install()  # idempotent; for callers that did not come through the registry
        self.transient_budget_s = transient_budget_s
        self.op_timeout_s = op_timeout_s
        self.endpoint = os.environ.get(ENDPOINT_ENV) or None
        self.sandbox = bool(self.endpoint and is_loopback(self.endpoint))
        self.credentials, self.project, self.credential_source = self._credentials()
        self._local = threading.local()

    def _credentials(self) -> tuple[Any, str, str]:
        project = next((os.environ[k] for k in PROJECT_ENVS if os.environ.get(k)), None)
        if self.sandbox:
            # The emulator wants a bearer like the real API (AnonymousCredentials send none):
            # a static token with no expiry and nothing to refresh it from.
            from google.oauth2.credentials import Credentials

            token = os.environ.get(SANDBOX_TOKEN_ENV) or "sandbox"
            return (Credentials(token=token), project or SANDBOX_PROJECT,
                    f"a static sandbox token ({ENDPOINT_ENV} is loopback)")
        import google.auth
        from google.auth import exceptions as auth_exc

        try:
            credentials, default_project = google.auth.default(scopes=SCOPES)
        except auth_exc.GoogleAuthError as exc:
            raise AuthError(CLOUD, f"no Google application-default credentials ({exc.__class__.__name__}). "
                                   "Run `gcloud auth application-default login` or set "
                                   "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file.") from None
        project = project or default_project
        if not project:
            raise AuthError(CLOUD, "no GCP project: set CAST_GCP_PROJECT (or GOOGLE_CLOUD_PROJECT), "
                                   "or use credentials that name a project.")
        return credentials, project, "application-default credentials"

    def client(self, kind: str) -> Any:
        """This thread's client of `kind` (e.g. "InstancesClient"); clients are not shared
        across threads."""
        cache: dict[str, Any] = self._local.__dict__.setdefault("clients", {})
        if kind not in cache:
            from google.cloud import compute_v1

            options = {"api_endpoint": self.endpoint} if self.endpoint else None
            cache[kind] = getattr(compute_v1, kind)(credentials=self.credentials, transport="rest",
                                                     client_options=options)
            # The REST transport's AuthorizedSession (a requests Session) has no public accessor.
            hook_requests_session(cache[kind].transport._session)
        return cache[kind]

    def call(self, what: str, fn: Callable[..., T], *args: Any, capacity_hint: str = "", **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` with errors mapped and TransientError retried within budget."""

        def once() -> T:
            try:
                return fn(*args, retry=None, timeout=CALL_TIMEOUT_S, **kwargs)
            except Exception as exc:
                if isinstance(exc, CloudError):
                    raise
                raise map_error(exc, what, capacity_hint) from None

        return retry_transient(once, budget_s=self.transient_budget_s, what=f"{CLOUD} {what}")

    def wait(self, op: Any, what: str, capacity_hint: str = "") -> Any:
        """Block until `op` is DONE (the API's own blocking `wait`, called again until the
        deadline) and return it; raise our error if it failed."""
        from google.cloud import compute_v1

        done = compute_v1.Operation.Status.DONE
        deadline = time.monotonic() + self.op_timeout_s
        delays = backoff_delays(0.05, 2.0)
        while op.status != done:
            if time.monotonic() > deadline:
                raise DeadlineError(f"timed out after {self.op_timeout_s:.0f}s waiting for {what}")
            if op.zone:
                op = self.call(f"wait for {what}", self.client("ZoneOperationsClient").wait,
                               project=self.project, zone=op.zone.rsplit("/", 1)[1], operation=op.name)
            elif op.region:
                op = self.call(f"wait for {what}", self.client("RegionOperationsClient").wait,
                               project=self.project, region=op.region.rsplit("/", 1)[1], operation=op.name)
            else:
                op = self.call(f"wait for {what}", self.client("GlobalOperationsClient").wait,
                               project=self.project, operation=op.name)
            if op.status != done:
                time.sleep(next(delays))  # wait returned early (its own ~2 min cap): back off
        failure = operation_error(op, what, capacity_hint)
        if failure:
            raise failure
        return op

    def mutate(self, what: str, fn: Callable[..., Any], request: Any, capacity_hint: str = "") -> Any:
        """Send a mutation (`fn(request=...)`, a `*_unary` method) with a fresh requestId so a
        retry after a transient error cannot run it twice, wait for its operation and return
        it (DONE; its target_id and target_link name what it made)."""
        import uuid

        if hasattr(request, "request_id"):
            request.request_id = str(uuid.uuid4())
        op = self.call(what, fn, request=request, capacity_hint=capacity_hint)
        return self.wait(op, what, capacity_hint)

    def list_all(self, what: str, fn: Callable[..., Any], request: Any) -> list[Any]:
        """Every item of a paged list (all pages fetched inside one retried call)."""

        def once() -> list[Any]:
            try:
                return list(fn(request=request, retry=None, timeout=CALL_TIMEOUT_S))
            except Exception as exc:
                if isinstance(exc, CloudError):
                    raise
                raise map_error(exc, what) from None

        return retry_transient(once, budget_s=self.transient_budget_s, what=f"{CLOUD} {what}")


class UsesGcpApi:
    """A part of the GCP provider that talks to Compute Engine through one GcpApi, made on
    first use (so constructing it needs no credentials). `transient_budget_s` None: the
    default retry budget (retry.retry_budget_s)."""

    transient_budget_s: float | None = None
    _api: GcpApi | None = None
    _api_lock = threading.Lock()  # guards only the first making, for every instance

    @property
    def api(self) -> GcpApi:
        """The connection, made on first use."""
        with self._api_lock:
            if self._api is None:
                self._api = GcpApi(transient_budget_s=self.transient_budget_s)
            return self._api
