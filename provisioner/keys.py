"""SSH key pairs made by cast: the cluster's client key and each node's host key (ed25519)."""

from __future__ import annotations

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
