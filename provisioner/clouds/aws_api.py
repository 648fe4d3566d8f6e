"""The AWS edge: one boto3 session and its clients per provider, and the mapping of every
SDK error onto provisioner.errors. Nothing outside this module handles a botocore type.

Throttling and 5xx are retried by botocore's standard retry mode (one Config, made here);
what is still failing after those retries becomes TransientError.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import (
    AuthError,
    CapacityError,
    CloudError,
    DependencyError,
    NotFoundError,
    TransientError,
)
from .api_log import hook_botocore

CLOUD = "aws"
MAX_ATTEMPTS = 10  # botocore's own attempts per call, first one included

_THROTTLING = {
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "ThrottledException",
    "RequestThrottled", "RequestThrottledException", "TooManyRequestsException",
    "EC2ThrottledException", "SlowDown", "PriorRequestNotComplete", "BandwidthLimitExceeded",
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "RequestTimeout",
    "RequestTimeoutException", "InsufficientInstanceCapacity.Retryable",
}
_CAPACITY = {
    "InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity", "InsufficientCapacityOnHost", "InstanceLimitExceeded",
    "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded", "Unsupported",
}
_DEPENDENCY = {"DependencyViolation", "InvalidGroup.InUse", "InvalidNetworkInterface.InUse",
               "VolumeInUse", "ResourceInUse", "IncorrectState", "IncorrectInstanceState"}
_NOT_FOUND = {"ParameterNotFound", "Gateway.NotAttached", "InvalidKeyPair.NotFound",
              "LoadBalancerNotFound", "TargetGroupNotFound", "ListenerNotFound", "NoSuchHostedZone",
              "NoSuchChange"}
_AUTH = {
    "AuthFailure", "UnauthorizedOperation", "InvalidClientTokenId", "UnrecognizedClientException",
    "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException", "RequestExpired",
    "AccessDenied", "AccessDeniedException", "OptInRequired", "Blocked", "MissingAuthenticationToken",
}

HOW_TO_FIX = (
    "Give cast AWS credentials through boto3's standard chain: set AWS_PROFILE (and run "
    "`aws sso login --profile NAME` for an SSO profile), or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys), or run `aws configure`"
)


def classify(code: str, status: int | None) -> type[CloudError]:
    """Our error class for an AWS error code (and HTTP status, when there is one)."""
    if code in _AUTH:
        return AuthError
    # Capacity first: EC2 sends InsufficientInstanceCapacity with HTTP 500.
    if code in _CAPACITY or (code.endswith("LimitExceeded") and code != "RequestLimitExceeded"):
        return CapacityError
    if code in _THROTTLING or (status is not None and status >= 500):
        return TransientError
    if code in _DEPENDENCY:
        return DependencyError
    if code in _NOT_FOUND or code.endswith(".NotFound") or code.endswith("NotFoundException"):
        return NotFoundError
    return CloudError


class AwsApi:
    """One session and its EC2 and SSM clients, made once and shared across threads (clients
    are thread-safe; the session is not, so it is used only while making them)."""

    def __init__(self, region: str, *, timeout_s: float | None = None):
        """With `timeout_s` (for a quick check such as `cast doctor`'s), every call is a single
        attempt that waits at most that long to connect and as long to read."""
        import boto3
        from botocore.config import Config

        self.region = region
        self.credential_source: str | None = None
        self.max_attempts = MAX_ATTEMPTS if timeout_s is None else 1
        retries: dict[str, Any] = (
            {"mode": "standard", "max_attempts": MAX_ATTEMPTS} if timeout_s is None
            else {"mode": "standard", "total_max_attempts": 1}
        )
        config = Config(
            region_name=region,
            retries=retries,
            connect_timeout=10 if timeout_s is None else timeout_s,
            read_timeout=60 if timeout_s is None else timeout_s,
            max_pool_connections=32,
        )
        self._config = config
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        with self.mapped("opening the AWS session"):
            self.session = boto3.session.Session(region_name=region)
            credentials = self.session.get_credentials()
            self.credential_source = credentials.method if credentials is not None else None
            self.ec2_client = self.session.client("ec2", config=config)
            self.ssm_client = self.session.client("ssm", config=config)
        hook_botocore(self.ec2_client)
        hook_botocore(self.ssm_client)

    def ec2(self, operation: str, *, what: str = "", size: str | None = None, **params: Any) -> Any:
        """Call one EC2 operation; SDK errors come out as our errors."""
        with self.mapped(what or operation, size=size):
            return getattr(self.ec2_client, operation)(**params)

    def ssm(self, operation: str, *, what: str = "", **params: Any) -> Any:
        """Call one SSM operation; SDK errors come out as our errors."""
        with self.mapped(what or operation):
            return getattr(self.ssm_client, operation)(**params)

    def call(self, service: str, operation: str, *, what: str = "", **params: Any) -> Any:
        """Call one operation of another service (elbv2, route53), its client made on first
        use; SDK errors come out as our errors."""
        with self._clients_lock:
            client = self._clients.get(service)
            if client is None:
                with self.mapped(f"opening the {service} client"):
                    client = self.session.client(service, config=self._config)
                hook_botocore(client)
                self._clients[service] = client
        with self.mapped(what or operation):
            return getattr(client, operation)(**params)

    def describe(self, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a describe call, following pages where the call has them."""
        with self.mapped(operation):
            if not self.ec2_client.can_paginate(operation):
                return list(getattr(self.ec2_client, operation)(**params)[key])
            items: list[dict[str, Any]] = []
            for page in self.ec2_client.get_paginator(operation).paginate(**params):
                items.extend(page[key])
            return items

    @contextmanager
    def mapped(self, what: str, *, size: str | None = None) -> Iterator[None]:
        """Run the body; turn any botocore or boto3 error into one of ours."""
        from botocore import exceptions as bx

        try:
            yield
        except bx.ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise self._from_code(what, str(error.get("Code", "")), str(error.get("Message", "")),
                                  status, size) from None
        except bx.WaiterError as exc:
            last = exc.last_response or {}
            error = last.get("Error") if isinstance(last, dict) else None
            if error:
                raise self._from_code(what, str(error.get("Code", "")),
                                      str(error.get("Message", "")), None, size) from None
            if "Max attempts exceeded" in str(exc.kwargs.get("reason", "")):
                raise TransientError(CLOUD, f"{what}: timed out waiting") from None
            raise CloudError(CLOUD, f"{what}: {exc.kwargs.get('reason', 'waiter failed')}") from None
        except (bx.NoCredentialsError, bx.PartialCredentialsError, bx.ProfileNotFound,
                bx.SSOError, bx.TokenRetrievalError, bx.CredentialRetrievalError) as exc:
            raise AuthError(CLOUD, f"{what}: {type(exc).__name__}: {self._auth_advice()}") from None
        except (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ReadTimeoutError,
                bx.ConnectTimeoutError) as exc:
            raise TransientError(CLOUD, f"{what}: {type(exc).__name__} after {self.max_attempts} "
                                        "attempts") from None
        except bx.BotoCoreError as exc:
            raise CloudError(CLOUD, f"{what}: {type(exc).__name__}: {exc}") from None

    def _from_code(self, what: str, code: str, message: str, status: int | None,
                   size: str | None) -> CloudError:
        kind = classify(code, status)
        if kind is AuthError:
            # AWS's own message may echo request details; the code says enough.
            return AuthError(CLOUD, f"{what}: {code}: {self._auth_advice()}")
        if kind is CapacityError:
            return CapacityError(
                CLOUD, f"{what}: no capacity or quota in region {self.region}"
                       f"{f' for instance type {size}' if size else ''}: {code}: {message}"
            )
        if kind is TransientError:
            return TransientError(CLOUD, f"{what}: {code or status} after {self.max_attempts} attempts: "
                                         f"{message}")
        return kind(CLOUD, f"{what}: {code}: {message}")

    def _auth_advice(self) -> str:
        if self.credential_source is None:
            tried = ("no credentials found (tried environment variables, shared credentials and "
                     "config files, SSO, container and instance metadata)")
        else:
            tried = f"the credentials from source '{self.credential_source}' were refused"
        return f"{tried}. {HOW_TO_FIX}."
