"""S3 (and S3-compatible stores) as an ObjectStore, through boto3 and its standard chain:
credentials from the environment, profile, SSO or instance role; the endpoint from
AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) for MinIO, Ceph, R2 and moto; retries in botocore's
standard mode (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE override it).

Conditional writes are S3's own: PutObject with If-None-Match: * or If-Match: <ETag>, and
DeleteObject with If-Match (AWS S3 since 2024; moto 5.2 implements all three).
"""

from __future__ import annotations

import os
from typing import Any

from .objects import Blob, Conflict, StoreUnavailable

CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


def aws_client(service: str) -> Any:
    """A boto3 client of `service` on the standard chain: region from AWS_REGION or
    AWS_DEFAULT_REGION (else us-east-1), botocore's retry mode (AWS_RETRY_MODE, default
    standard), short connect and read timeouts: a state write must not hang a command."""
    import boto3
    from botocore.config import Config

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(retries={"mode": os.environ.get("AWS_RETRY_MODE", "standard")},
                    connect_timeout=5, read_timeout=20)
    return boto3.client(service, region_name=region, config=config)


class S3Store:
    """The objects under `s3://bucket/prefix`."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client("s3")
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, exc: Exception, what: str) -> Exception:
        """Our error for a botocore one: Conflict, or StoreUnavailable naming the bucket."""
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in CONFLICT_CODES or status in ("412", "409"):
                return Conflict(f"{self.url}: {what}: written by someone else meanwhile")
            hint = " (check the credentials: AWS_PROFILE, AWS_ACCESS_KEY_ID)" if status in ("401", "403") else ""
            return StoreUnavailable(f"{self.url}: {what}: {code or status}{hint}")
        return StoreUnavailable(f"{self.url}: {what}: {type(exc).__name__} (is AWS_ENDPOINT_URL right?)")

    def get(self, key: str, *, unless: str | None = None) -> Blob | None:
        from botocore.exceptions import BotoCoreError, ClientError

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if unless:
            args["IfNoneMatch"] = unless
        try:
            reply = self.client.get_object(**args)
            return Blob(reply["Body"].read(), reply["ETag"])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if unless and (status == 304 or code == "304"):
                return Blob(b"", unless)
            if code in MISSING_CODES or status == 404:
                return None
            raise self._fail(exc, f"reading {key}") from None
        except BotoCoreError as exc:
            raise self._fail(exc, f"reading {key}") from None

    def put(self, key: str, data: bytes, *, replaces: str | None = None, create: bool = False) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": data}
        if create:
            args["IfNoneMatch"] = "*"
        elif replaces:
            args["IfMatch"] = replaces
        try:
            return str(self.client.put_object(**args)["ETag"])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if replaces and code in MISSING_CODES:  # If-Match on an object deleted meanwhile
                raise Conflict(f"{self.url}: writing {key}: deleted by someone else meanwhile") from None
            raise self._fail(exc, f"writing {key}") from None
        except BotoCoreError as exc:
            raise self._fail(exc, f"writing {key}") from None

    def delete(self, key: str, *, replaces: str | None = None) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if replaces:
            args["IfMatch"] = replaces
        try:
            self.client.delete_object(**args)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in MISSING_CODES:
                return
            raise self._fail(exc, f"deleting {key}") from None
        except BotoCoreError as exc:
            raise self._fail(exc, f"deleting {key}") from None

    def keys(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        base = self._key("")
        found: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self._key(prefix)):
                found.extend(o["Key"][len(base):] for o in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, f"listing {prefix or '/'}") from None
        return sorted(found)
