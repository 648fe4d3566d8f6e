"""SSH key pairs made by cast: the cluster's client key and each node's host key (ed25519)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    """An ed25519 key pair. `private` is a secret: OpenSSH PEM, never printed or logged."""

    private: bytes
    public: str  # "ssh-ed25519 AAAA... comment"

    def __repr__(self) -> str:  # keep the private half out of tracebacks and logs
        return f"KeyPair(public={self.public!r})"


def new_ed25519(comment: str) -> KeyPair:
    """A fresh ed25519 key pair with `comment` on the public line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return KeyPair(private=private, public=f"{public.decode()} {comment}")


def public_of(private: bytes, comment: str) -> str:
    """The public line of an OpenSSH private key."""
    key = serialization.load_ssh_private_key(private, password=None)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{public.decode()} {comment}"


def md5_fingerprint(public_line: str) -> str:
    """The MD5 fingerprint of an OpenSSH public key line, colon-separated hex of the key blob
    (what DigitalOcean shows for a key)."""
    parts = public_line.split()
    try:
        blob = base64.b64decode(parts[1], validate=True) if len(parts) > 1 else public_line.encode()
    except (binascii.Error, ValueError):
        blob = public_line.encode()
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
