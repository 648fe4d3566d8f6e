"""Secrets sealed on the client before they reach a bucket: envelope encryption.

Each secret gets a fresh 256-bit data key; the secret is encrypted with AES-GCM under it
(the cluster's UUID and the secret's name are the associated data, so a sealed secret cannot
be moved to another name or cluster unnoticed), and the data key is kept only wrapped by the
key-encryption key: an AWS KMS key (`kms://alias/NAME`, `kms://<key id or ARN>`, through
boto3's standard chain and AWS_ENDPOINT_URL) or a local 32-byte key file (`file://PATH`,
wrapped with AES key wrap, RFC 3394) for teams without KMS. What is stored names the key that
wrapped it (never the key itself); without that key nothing in it can be read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

from ..errors import CastError, InputError
from .objects import StoreUnavailable

FORMAT = "cast-sealed-1"
KEY_BYTES = 32


class SealError(CastError):
    """A sealed secret cannot be opened: the wrong key, a key cast cannot use, or a changed blob."""

    exit_code = 4


class Keyring(Protocol):
    """Wraps and unwraps data keys under one key-encryption key."""

    @property
    def name(self) -> str:
        """What names the key in a sealed blob: `kms://alias/x`, `file:<fingerprint>`."""
        ...

    def new_data_key(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        """A fresh data key: (the key, the key wrapped)."""
        ...

    def unwrap(self, wrapped: bytes, context: dict[str, str]) -> bytes:
        """The data key of `wrapped`; SealError when this key did not wrap it."""
        ...


class KmsKeyring:
    """An AWS KMS key: GenerateDataKey and Decrypt, bound to the secret by the encryption context."""

    def __init__(self, key_id: str, client: Any = None):
        self.key_id = key_id
        self._client = client

    @property
    def name(self) -> str:
        return f"kms://{self.key_id}"

    @property
    def client(self) -> Any:
        if self._client is None:
            from .s3 import aws_client

            self._client = aws_client("kms")
        return self._client

    def _call(self, what: str, **args: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, what)(**args)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if status >= 500 or status == 429 or "Throttl" in code or code in ("SlowDown", "LimitExceededException"):
                raise StoreUnavailable(f"{self.name}: {what}: {code or status} (retried; run again)") from None
            raise SealError(f"{self.name}: {what}: {code}") from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"{self.name}: {what}: {type(exc).__name__} (is AWS_ENDPOINT_URL right?)") from None

    def new_data_key(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        reply = self._call("generate_data_key", KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=context)
        return reply["Plaintext"], reply["CiphertextBlob"]

    def unwrap(self, wrapped: bytes, context: dict[str, str]) -> bytes:
        args: dict[str, Any] = {"CiphertextBlob": wrapped, "EncryptionContext": context}
        if not self.key_id.startswith("alias/"):
            args["KeyId"] = self.key_id  # KMS refuses a blob that another key wrapped
        return bytes(self._call("decrypt", **args)["Plaintext"])


class FileKeyring:
    """A 32-byte key in a local file of this user's (raw or base64), e.g. made by `cast state new-key`."""

    def __init__(self, path: Path):
        from ..private_files import read_private_file

        self.path = path
        raw = read_private_file(path)
        if raw is None:
            raise InputError("--state-key", f"{path} does not exist", "kms://alias/NAME or file://PATH")
        key = raw if len(raw) == KEY_BYTES else _b64(raw.strip())
        if key is None or len(key) != KEY_BYTES:
            raise InputError("--state-key", f"{path} does not hold a {KEY_BYTES}-byte key",
                             "a file made by `cast state new-key FILE`")
        self._key = key

    @property
    def name(self) -> str:
        return "file:" + hashlib.sha256(b"cast-key-id:" + self._key).hexdigest()[:16]

    def new_data_key(self, context: dict[str, str]) -> tuple[bytes, bytes]:
        from cryptography.hazmat.primitives.keywrap import aes_key_wrap

        key = os.urandom(KEY_BYTES)
        return key, aes_key_wrap(self._key, key)

    def unwrap(self, wrapped: bytes, context: dict[str, str]) -> bytes:
        from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

        try:
            return aes_key_unwrap(self._key, wrapped)
        except InvalidUnwrap:
            raise SealError(f"{self.path}: this key did not wrap the secret") from None


def _b64(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def new_key_file(path: Path) -> Path:
    """Write a fresh random key-encryption key to `path` (mode 0600, base64); refuses to overwrite."""
    from ..private_files import create_private_file, write_private_file

    if path.exists():
        raise InputError("FILE", f"{path} exists; cast never overwrites a key", "a new path")
    create_private_file(path)
    return write_private_file(path, base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")


def open_keyring(spec: str) -> Keyring:
    """The keyring a `--state-key` names: `kms://alias/NAME` (or a key id or ARN) or `file://PATH`."""
    if spec.startswith("kms://") and len(spec) > len("kms://"):
        return KmsKeyring(spec[len("kms://"):])
    if spec.startswith("file://") and len(spec) > len("file://"):
        return FileKeyring(Path(spec[len("file://"):]).expanduser())
    raise InputError("--state-key", f"{spec!r} names no key", "kms://alias/NAME, kms://KEY-ID or file://PATH")


def seal(keyring: Keyring, cluster_uuid: str, name: str, secret: bytes) -> bytes:
    """The sealed form of `secret`: JSON naming the key, the wrapped data key, nonce and ciphertext."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    context = {"cast-cluster": cluster_uuid, "cast-secret": name}
    key, wrapped = keyring.new_data_key(context)
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, secret, _aad(cluster_uuid, name))
    return json.dumps({
        "format": FORMAT, "key": keyring.name,
        "wrapped": base64.b64encode(wrapped).decode(), "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }).encode()


def unseal(keyring: Keyring, cluster_uuid: str, name: str, sealed: bytes) -> bytes:
    """The secret inside `sealed`; SealError when it was sealed by another key, for another
    secret, or changed since."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        blob = json.loads(sealed)
        if blob.get("format") != FORMAT:
            raise ValueError("format")
        wrapped, nonce, ciphertext = (base64.b64decode(blob[k]) for k in ("wrapped", "nonce", "ciphertext"))
    except (ValueError, KeyError, TypeError):
        raise SealError(f"secret {name}: not a sealed secret cast wrote") from None
    if blob["key"] != keyring.name and not (blob["key"].startswith("kms://") and keyring.name.startswith("kms://")):
        raise SealError(f"secret {name} was sealed with {blob['key']}, not {keyring.name}: pass that --state-key")
    key = keyring.unwrap(wrapped, {"cast-cluster": cluster_uuid, "cast-secret": name})
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, _aad(cluster_uuid, name))
    except InvalidTag:
        raise SealError(f"secret {name}: does not open with its key (changed, or moved from another secret)") from None


def _aad(cluster_uuid: str, name: str) -> bytes:
    return f"cast-secret:{cluster_uuid}:{name}".encode()
