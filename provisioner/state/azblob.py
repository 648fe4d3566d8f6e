"""Azure Blob Storage as an ObjectStore (`azblob://ACCOUNT/CONTAINER/PREFIX`), through
azure-storage-blob. Credentials: AZURE_STORAGE_CONNECTION_STRING when set (it also names the
endpoint: this is how Azurite and sovereign clouds are reached), else azure-identity's
DefaultAzureCredential against https://ACCOUNT.blob.core.windows.net.

Conditional writes are Blob Storage's own ETag conditions: Put Blob with If-None-Match: *
(overwrite=False) or If-Match (MatchConditions.IfNotModified), Delete Blob with If-Match.
"""

from __future__ import annotations

import os
from typing import Any

from .objects import Blob, Conflict, StoreUnavailable


class AzureBlobStore:
    """The blobs under `azblob://account/container/prefix`."""

    def __init__(self, account: str, container: str, prefix: str = "", client: Any = None):
        self.account = account
        self.container = container
        self.prefix = prefix.strip("/")
        self._client = client

    @property
    def url(self) -> str:
        base = f"azblob://{self.account}/{self.container}"
        return f"{base}/{self.prefix}" if self.prefix else base

    @property
    def client(self) -> Any:
        """The container's client (azure.storage.blob.ContainerClient)."""
        if self._client is None:
            from azure.storage.blob import BlobServiceClient

            connection = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
            if connection:
                service = BlobServiceClient.from_connection_string(connection)
            else:
                from azure.identity import DefaultAzureCredential

                service = BlobServiceClient(f"https://{self.account}.blob.core.windows.net",
                                            credential=DefaultAzureCredential())
            self._client = service.get_container_client(self.container)
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _unavailable(self, exc: Exception, what: str) -> StoreUnavailable:
        code = getattr(exc, "error_code", None) or getattr(exc, "status_code", None) or type(exc).__name__
        return StoreUnavailable(f"{self.url}: {what}: {code}")

    def get(self, key: str, *, unless: str | None = None) -> Blob | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, ResourceNotFoundError, ResourceNotModifiedError

        args: dict[str, Any] = {"etag": unless, "match_condition": MatchConditions.IfModified} if unless else {}
        try:
            download = self.client.get_blob_client(self._key(key)).download_blob(**args)
            return Blob(download.readall(), str(download.properties.etag))
        except ResourceNotModifiedError:
            return Blob(b"", unless or "")
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            if unless and getattr(exc, "status_code", None) == 304:  # azure-core names it a condition not met
                return Blob(b"", unless)
            raise self._unavailable(exc, f"reading {key}") from None

    def put(self, key: str, data: bytes, *, replaces: str | None = None, create: bool = False) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            AzureError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )

        args: dict[str, Any] = {"overwrite": not create}
        if replaces and not create:
            args.update(etag=replaces, match_condition=MatchConditions.IfNotModified)
        try:
            reply = self.client.get_blob_client(self._key(key)).upload_blob(data, **args)
            return str(reply["etag"])
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            raise Conflict(f"{self.url}: writing {key}: written by someone else meanwhile") from None
        except AzureError as exc:
            if getattr(exc, "status_code", None) in (409, 412):
                raise Conflict(f"{self.url}: writing {key}: written by someone else meanwhile") from None
            raise self._unavailable(exc, f"writing {key}") from None

    def delete(self, key: str, *, replaces: str | None = None) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, ResourceModifiedError, ResourceNotFoundError

        args: dict[str, Any] = {"etag": replaces, "match_condition": MatchConditions.IfNotModified} if replaces else {}
        try:
            self.client.get_blob_client(self._key(key)).delete_blob(**args)
        except ResourceNotFoundError:
            return
        except ResourceModifiedError:
            raise Conflict(f"{self.url}: deleting {key}: written by someone else meanwhile") from None
        except AzureError as exc:
            raise self._unavailable(exc, f"deleting {key}") from None

    def keys(self, prefix: str = "") -> list[str]:
        from azure.core.exceptions import AzureError

        base = self._key("")
        try:
            return sorted(b.name[len(base):] for b in self.client.list_blobs(name_starts_with=self._key(prefix)))
        except AzureError as exc:
            raise self._unavailable(exc, f"listing {prefix or '/'}") from None
