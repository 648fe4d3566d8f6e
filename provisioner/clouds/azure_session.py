"""Reaching Azure: credentials, the subscription, the endpoint, per-thread SDK clients, waiting
on long-running operations, and mapping SDK errors onto cast's.

Credentials are azure-identity's DefaultAzureCredential and AZURE_SUBSCRIPTION_ID. With
CAST_AZURE_ENDPOINT pointing at loopback (the emulator) and only then, a fake credential and
an auth policy that lets the SDK send its bearer token over plain http are used, with a
short polling interval.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..errors import (
    AuthError,
    CapacityError,
    CloudError,
    DependencyError,
    NotFoundError,
    TransientError,
)
from ..retry import DeadlineError
from .api_log import azure_core_policy
from .loopback import is_loopback, static_bearer

CLOUD = "azure"
ENDPOINT_ENV = "CAST_AZURE_ENDPOINT"
SUBSCRIPTION_ENV = "AZURE_SUBSCRIPTION_ID"
SANDBOX_TOKEN_ENV = "CAST_AZURE_TOKEN"  # the bearer sent to a loopback endpoint (default "emulator")
EMULATOR_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
LRO_TIMEOUT_S = 1800.0
MIN_POLL_GAP_S, MAX_POLL_GAP_S = 0.05, 5.0  # between two polls of one operation

CAPACITY_CODES = {"quotaexceeded", "operationnotallowed", "skunotavailable", "allocationfailed",
                  "zonalallocationfailed", "overconstrainedallocationrequest"}
DEPENDENCY_CODES = {"nicinuse", "publicipaddresscannotbedeleted", "anotheroperationinprogress"}
NOT_FOUND_CODES = {"resourcenotfound", "resourcegroupnotfound", "notfound", "parentresourcenotfound"}
TRANSIENT_CODES = {"toomanyrequests", "retryableerror", "internalservererror", "serviceunavailable"}

CREDENTIAL_HELP = (
    "DefaultAzureCredential tried, in order: environment variables (AZURE_TENANT_ID, AZURE_CLIENT_ID "
    "and AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH), workload identity, managed identity, "
    "the shared token cache, the Azure CLI, Azure PowerShell and the Azure Developer CLI. Fix: run "
    "`az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for a service principal."
)

T = TypeVar("T")



_MODEL_BASES = ("azure.mgmt.compute._utils.model_base", "azure.mgmt.network._utils.model_base",
                "azure.mgmt.resource.resources._utils.model_base")
_models_guarded = threading.Lock()
# The compute and network SDKs are imported by Cloud.finish_opening in the engine's thread,
# except where a command left them out (delete-cluster): their first import then happens in
# whichever thread needs them first, one thread at a time.
_late_imports = threading.Lock()


def serialize_first_model_use() -> None:
    """Make the SDK models' first use per class thread-safe. A model class computes its field
    table on its first instantiation, setting class attributes while reading the __dict__ of
    its class hierarchy: two threads doing that at once (parallel calls deserializing the same
    kind of resource) fail with "dictionary changed size during iteration". This wraps each
    model base's __new__ so that the first instantiation of a class holds a lock; later ones
    take no lock. Idempotent; a model base without that table, or not imported yet (an SDK
    whose client is not made yet: called again as each client is made), is left alone."""
    import sys

    with _models_guarded:
        for module_name in _MODEL_BASES:
            model = getattr(sys.modules.get(module_name), "Model", None)
            calculated = getattr(model, "_calculated", None)
            if model is None or not isinstance(calculated, set) or getattr(model, "_cast_guarded", False):
                continue
            original = model.__new__
            first_use = threading.Lock()

            def guarded_new(cls: Any, *args: Any, _original: Any = original, _lock: Any = first_use,
                            _calculated: set[str] = calculated, **kwargs: Any) -> Any:
                if f"{cls.__module__}.{cls.__qualname__}" in _calculated:
                    return _original(cls, *args, **kwargs)
                with _lock:
                    return _original(cls, *args, **kwargs)

            model.__new__ = guarded_new
            model._cast_guarded = True


class AzureSession:
    """The subscription, the credential and the endpoint; SDK clients made per thread."""

    def __init__(self, subscription_id: str, endpoint: str | None, credential: Any, client_kwargs: dict[str, Any]):
        serialize_first_model_use()
        self.subscription_id = subscription_id
        self.endpoint = endpoint
        self._credential = credential
        self._kwargs = client_kwargs
        self._local = threading.local()
        self._api_log = azure_core_policy(CLOUD)

    @classmethod
    def from_env(cls, **client_options: Any) -> AzureSession:
        """The session the environment describes; `client_options` go to every SDK client
        (e.g. retry_total, connection_timeout, read_timeout). Raises AuthError when the
        subscription is not set (outside the emulator)."""
        endpoint = os.environ.get(ENDPOINT_ENV) or None
        subscription = os.environ.get(SUBSCRIPTION_ENV, "").strip()
        if uses_loopback():
            credential, kwargs = _loopback_auth()
            return cls(subscription or EMULATOR_SUBSCRIPTION, endpoint, credential, {**kwargs, **client_options})
        if not subscription:
            raise AuthError(CLOUD, f"{SUBSCRIPTION_ENV} is not set. Set it to the subscription cast should use "
                                   "(`az account show --query id -o tsv` prints the current one).")
        from azure.identity import DefaultAzureCredential

        return cls(subscription, endpoint, DefaultAzureCredential(), dict(client_options))

    def put_polling(self) -> Any:
        """The polling for a PUT whose result the caller does not read: done when the cloud's
        Azure-AsyncOperation says Succeeded, without the SDK's final GET of the resource (one
        call less per resource; the caller knows the resource's id from its name)."""
        from azure.core.polling.base_polling import LocationPolling, StatusCheckPolling
        from azure.mgmt.core.polling.arm_polling import ARMPolling, AzureAsyncOperationPolling, BodyContentPolling

        class WithoutFinalGet(AzureAsyncOperationPolling):
            def get_final_get_url(self, pipeline_response: Any) -> str | None:
                return None

        class FirstLookAfterHint(ARMPolling):
            """The SDK polls once at once, then every Retry-After: this waits the first
            answer's Retry-After before that first poll (one call less where the hint is good)."""

            hint = 0.0
            cast_last_poll = 0.0
            cast_gap = MIN_POLL_GAP_S

            def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
                super().initialize(client, initial_response, deserialization_callback)
                self.hint = _retry_after(initial_response) or 0.0

            def run(self) -> None:
                if not self.finished():
                    time.sleep(min(self.hint, 60.0))
                super().run()

            def update_status(self) -> None:
                # Retry-After 0 while work remains (under a second left, in whole seconds)
                # would have the SDK poll back to back: never faster than a doubling gap.
                wait = self.cast_last_poll + self.cast_gap - time.monotonic()
                if self.cast_last_poll and wait > 0:
                    time.sleep(wait)
                    self.cast_gap = min(2 * self.cast_gap, MAX_POLL_GAP_S)
                super().update_status()
                self.cast_last_poll = time.monotonic()

        interval = float(self._kwargs.get("polling_interval", 30))  # Retry-After takes precedence
        return FirstLookAfterHint(interval, lro_algorithms=[WithoutFinalGet(), LocationPolling(), BodyContentPolling(),
                                                            StatusCheckPolling()])

    def hint_polling(self) -> Any:
        """A polling method that does not poll: the begin_* call returns after its first
        answer, and the method's `retry_after` keeps that answer's Retry-After (seconds, None
        without one: ARM's estimate of when the operation is worth a look)."""
        return _hint_polling_class()()

    def _client(self, key: str, factory: Callable[..., T]) -> T:
        client = getattr(self._local, key, None)
        if client is None:
            kwargs = dict(self._kwargs)
            kwargs["per_retry_policies"] = [self._api_log]
            if self.endpoint:
                kwargs["base_url"] = self.endpoint
            client = factory(self._credential, self.subscription_id, **kwargs)
            serialize_first_model_use()  # the client's SDK is imported: its models are guarded before use
            setattr(self._local, key, client)
        return client

    @property
    def resources(self) -> Any:
        """This thread's ResourceManagementClient."""
        from azure.mgmt.resource.resources import ResourceManagementClient

        return self._client("resources", ResourceManagementClient)

    @property
    def network(self) -> Any:
        """This thread's NetworkManagementClient."""
        with _late_imports:
            from azure.mgmt.network import NetworkManagementClient

        return self._client("network", NetworkManagementClient)

    @property
    def dns(self) -> Any:
        """This thread's DnsManagementClient (azure-mgmt-dns)."""
        from azure.mgmt.dns import DnsManagementClient

        return self._client("dns", DnsManagementClient)

    @property
    def compute(self) -> Any:
        """This thread's ComputeManagementClient."""
        with _late_imports:
            from azure.mgmt.compute import ComputeManagementClient

        return self._client("compute", ComputeManagementClient)


@functools.cache
def _hint_polling_class() -> type:
    from azure.core.polling import NoPolling

    class KeepRetryAfter(NoPolling):
        retry_after: float | None = None

        def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
            super().initialize(client, initial_response, deserialization_callback)
            self.retry_after = _retry_after(initial_response)

    return KeepRetryAfter


def _retry_after(pipeline_response: Any) -> float | None:
    """A response's Retry-After in seconds (None without one, or for an HTTP date)."""
    value = pipeline_response.http_response.headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def uses_loopback() -> bool:
    """True when CAST_AZURE_ENDPOINT points at loopback (the emulator): no azure-identity then."""
    endpoint = os.environ.get(ENDPOINT_ENV) or None
    return bool(endpoint and is_loopback(endpoint))


def _loopback_auth() -> tuple[Any, dict[str, Any]]:
    """A fake credential and the client settings for the emulator on loopback."""
    from azure.core.credentials import AccessToken

    token = os.environ.get(SANDBOX_TOKEN_ENV) or "emulator"

    class FakeCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(token, int(time.time()) + 3600)

    return FakeCredential(), {"authentication_policy": static_bearer(token), "polling_interval": 0.02}


# --- errors --------------------------------------------------------------------------


@contextmanager
def mapped_errors(what: str, *, region: str | None = None, size: str | None = None) -> Iterator[None]:
    """Run the block, turning SDK exceptions into cast's (see `map_error`)."""
    try:
        yield
    except CloudError:
        raise
    except Exception as exc:  # only azure exceptions are mapped; others pass through
        mapped = map_error(exc, what, region=region, size=size)
        if mapped is None:
            raise
        raise mapped from None


def map_error(exc: BaseException, what: str, *, region: str | None = None,
              size: str | None = None) -> CloudError | None:
    """The cast error for an azure-core exception (None for anything else). 429 and 5xx have
    already been retried by azure-core's RetryPolicy (which honours Retry-After)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ClientAuthenticationError):
        return AuthError(CLOUD, f"{what}: not authenticated. {CREDENTIAL_HELP}")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TransientError(CLOUD, f"{what}: the request did not complete ({type(exc).__name__})")
    if not isinstance(exc, HttpResponseError):
        return None
    status = exc.status_code or 0
    codes = _codes(exc)
    message = _message(exc)
    if isinstance(exc, ResourceNotFoundError) or codes & NOT_FOUND_CODES or status == 404:
        return NotFoundError(CLOUD, f"{what}: not found ({message})")
    if codes & CAPACITY_CODES:
        return CapacityError(CLOUD, f"{what}: out of quota or capacity in region {region or '?'} for VM size "
                                    f"{size or '?'}: {message}")
    if codes & DEPENDENCY_CODES or any(c.startswith("inuse") or c.endswith("inuse") for c in codes):
        return DependencyError(CLOUD, f"{what}: still in use ({message})")
    if status == 429 or status >= 500 or codes & TRANSIENT_CODES:
        return TransientError(CLOUD, f"{what}: the service kept refusing (HTTP {status}) after retries: {message}")
    if status in (401, 403):
        return AuthError(CLOUD, f"{what}: access denied ({message}). {CREDENTIAL_HELP}")
    return CloudError(CLOUD, f"{what}: {message}")


def _codes(exc: Any) -> set[str]:
    codes = set()
    error = getattr(exc, "error", None)
    if error is not None:
        if error.code:
            codes.add(str(error.code).lower())
        for detail in getattr(error, "details", None) or []:
            if getattr(detail, "code", None):
                codes.add(str(detail.code).lower())
    return codes


def _message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    if error is not None and error.code:
        return f"{error.code}: {error.message}"[:400]
    return (str(getattr(exc, "reason", "") or exc).splitlines() or ["?"])[0][:400]


def wait_for(poller: Any, what: str, timeout_s: float = LRO_TIMEOUT_S) -> Any:
    """Block on a long-running operation's poller (the SDK polls with the server's Retry-After)
    and return its result. Raises DeadlineError after `timeout_s`."""
    result = poller.result(timeout=timeout_s)
    if not poller.done():
        raise DeadlineError(f"timed out after {timeout_s:.0f}s waiting for {what}")
    return result
