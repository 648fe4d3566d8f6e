"""The join material: fresh tokens and certificate keys of kubeadm's forms, and the CA pin
computed as kubeadm computes it (checked against two independent computations)."""

from __future__ import annotations

import datetime
import hashlib
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from provisioner.kube import kubeadm


def test_fresh_tokens_have_kubeadms_form_and_differ() -> None:
    tokens = {kubeadm.new_bootstrap_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(kubeadm.TOKEN_RE.match(t) for t in tokens)
    assert kubeadm.token_id("abcdef.0123456789abcdef") == "abcdef"


def test_fresh_certificate_keys_are_32_random_bytes_in_hex() -> None:
    keys = {kubeadm.new_certificate_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(bytes.fromhex(k)) == 32 and kubeadm.CERTIFICATE_KEY_RE.match(k) for k in keys)


def _ca(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private_key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )


def _der_element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, content start, end) of the DER element at `offset`."""
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(data[start:start + size], "big")
        start += size
    return tag, start, start + length


def _raw_spki(certificate_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo bytes exactly as they sit in the certificate (RFC 5280:
    tbsCertificate = [0] version, serial, signature, issuer, validity, subject, SPKI)."""
    _, cert_start, _ = _der_element(certificate_der, 0)
    _, position, _ = _der_element(certificate_der, cert_start)  # into tbsCertificate
    for _ in range(6):
        _, _, position = _der_element(certificate_der, position)
    tag, _, end = _der_element(certificate_der, position)
    assert tag == 0x30
    return certificate_der[position:end]


@pytest.fixture(scope="module", params=["rsa", "ec"])
def ca_pem(request: pytest.FixtureRequest) -> bytes:
    key = rsa.generate_private_key(65537, 2048) if request.param == "rsa" else ec.generate_private_key(ec.SECP256R1())
    return _ca(key).public_bytes(serialization.Encoding.PEM)


def test_ca_hash_is_sha256_of_the_certificates_spki(ca_pem: bytes) -> None:
    der = x509.load_pem_x509_certificate(ca_pem).public_bytes(serialization.Encoding.DER)
    expected = "sha256:" + hashlib.sha256(_raw_spki(der)).hexdigest()
    assert kubeadm.ca_cert_hash(ca_pem) == expected
    assert kubeadm.CA_HASH_RE.match(expected)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_ca_hash_matches_the_openssl_recipe_of_the_kubeadm_docs(ca_pem: bytes) -> None:
    public = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=ca_pem, capture_output=True, check=True)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=public.stdout,
                         capture_output=True, check=True)
    assert kubeadm.ca_cert_hash(ca_pem) == "sha256:" + hashlib.sha256(der.stdout).hexdigest()


def test_ca_hash_refuses_what_is_not_a_certificate() -> None:
    with pytest.raises(ValueError):
        kubeadm.ca_cert_hash(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(("given", "expected"), [("v1.36.2", "v1.36.2"), ("1.36.0", "v1.36.0")])
def test_version_takes_the_boot_markers_form(given: str, expected: str) -> None:
    assert kubeadm.check_version(given) == expected


def test_cert_sans_name_each_address_once_masters_by_name() -> None:
    masters = [kubeadm.KubeNode("b", "master", "10.4.0.2", "198.18.0.2"),
               kubeadm.KubeNode("a", "master", "10.4.0.1", "198.18.0.1")]
    assert kubeadm.cert_sans("demo", masters) == [
        "api.demo.cast.internal", "127.0.0.1", "198.18.0.1", "10.4.0.1", "198.18.0.2", "10.4.0.2"]


@pytest.mark.parametrize(("public_ip", "url"), [("198.18.0.10", "https://198.18.0.10:6443"),
                                                ("2001:db8::1", "https://[2001:db8::1]:6443")])
def test_public_api_url_of_a_master(public_ip: str, url: str) -> None:
    assert kubeadm.public_api_url(kubeadm.KubeNode("m", "master", "10.4.0.1", public_ip)) == url
