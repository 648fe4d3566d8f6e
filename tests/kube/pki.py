"""A throwaway cluster PKI for kubeconfig tests: a CA, a client certificate it issued and the
client's key, as kubeadm's admin.conf carries them (base64 of PEM)."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @property
    def ca_data(self) -> str:
        return base64.b64encode(self.ca_pem).decode()

    @property
    def cert_data(self) -> str:
        return base64.b64encode(self.cert_pem).decode()

    @property
    def key_data(self) -> str:
        return base64.b64encode(self.key_pem).decode()

    def admin_conf(self, *, user_extra: str = "", cluster_extra: str = "") -> str:
        """kubeadm's admin.conf; `user_extra` / `cluster_extra` are more YAML lines (indented
        four spaces) in the user's / cluster's fields."""
        return (
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n- cluster:\n"
            f"    certificate-authority-data: {self.ca_data}\n"
            "    server: https://api.demo.cast.internal:6443\n"
            f"{cluster_extra}"
            "  name: kubernetes\n"
            "contexts:\n- context:\n    cluster: kubernetes\n    user: kubernetes-admin\n"
            "  name: kubernetes-admin@kubernetes\n"
            "current-context: kubernetes-admin@kubernetes\n"
            "users:\n- name: kubernetes-admin\n  user:\n"
            f"    client-certificate-data: {self.cert_data}\n"
            f"    client-key-data: {self.key_data}\n"
            f"{user_extra}"
        )


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_pki(common_name: str = "kubernetes") -> Pki:
    """A fresh CA named `common_name` and an admin client certificate it signed."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("kubernetes-admin")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return Pki(ca.public_bytes(pem), cert.public_bytes(pem),
               key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
