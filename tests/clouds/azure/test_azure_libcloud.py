"""libcloud's Azure ARM driver, a client nobody here wrote, creates, lists, gets and destroys a VM
against the Azure emulator, and gets ARM's error for a size that does not exist.

The driver logs in to Azure AD on port 443 over TLS whatever its settings say (its
cloud_environment moves the host, not the port or the scheme), so the test serves the client
credentials grant on 127.0.0.1:443 with a throw-away certificate that libcloud is told to trust
(libcloud.security.CA_CERTS_PATH, its documented setting). Binding port 443 needs root."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import os
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner.sandbox.azure_emulator import AzureEmulator

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="libcloud logs in on port 443, which only root may serve; "
                                                          "CI runs this as root")
TOKEN = "libcloud-bearer"
SUB = "00000000-0000-0000-0000-000000000000"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNhc3QtdGVzdC1rZXktbm90LXJlYWwtYXQtYWxs libcloud"


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "login.pem", directory / "login.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _Login(http.server.BaseHTTPRequestHandler):
    """Azure AD's token endpoint, as far as the client credentials grant goes."""

    grants: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        form = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.grants.append(form)
        body = json.dumps({"token_type": "Bearer", "access_token": TOKEN,
                           "expires_on": str(int(time.time()) + 3600)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def driver(tmp_path: Path) -> Iterator[tuple[object, AzureEmulator]]:
    import libcloud.security
    from libcloud.compute.providers import get_driver
    from libcloud.compute.types import Provider

    cert_file, key_file = _certificate(tmp_path)
    try:
        login = http.server.ThreadingHTTPServer(("127.0.0.1", 443), _Login)
    except OSError as exc:
        pytest.skip(f"127.0.0.1:443 is not free here ({exc.strerror})")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    login.socket = context.wrap_socket(login.socket, server_side=True)
    threading.Thread(target=login.serve_forever, daemon=True).start()
    emulator = AzureEmulator(token=TOKEN)
    emulator.start()
    saved = libcloud.security.CA_CERTS_PATH
    libcloud.security.CA_CERTS_PATH = str(cert_file)
    try:
        port = int(emulator.url.rsplit(":", 1)[1])
        environment = {"resourceManagerEndpointUrl": f"http://127.0.0.1:{port}/",
                       "activeDirectoryEndpointUrl": "https://127.0.0.1",
                       "activeDirectoryResourceId": "https://management.core.windows.net/",
                       "storageEndpointSuffix": "core.windows.net"}
        azure = get_driver(Provider.AZURE_ARM)(tenant_id="tenant", subscription_id=SUB, key="client-id",
                                                secret="client-secret", cloud_environment=environment)
        # the resource manager endpoint over plain http on the emulator's port (public attributes)
        connection = azure.connection
        connection.secure, connection.host, connection.port = False, "127.0.0.1", port
        connection.connect()
        yield azure, emulator
    finally:
        libcloud.security.CA_CERTS_PATH = saved
        emulator.stop()
        login.shutdown()
        login.server_close()


def _arm(emulator: AzureEmulator, method: str, path: str, body: object) -> None:
    request = urllib.request.Request(emulator.url + path, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    urllib.request.urlopen(request, timeout=10).close()


def test_libclouds_azure_driver_creates_lists_gets_and_destroys_a_vm(driver) -> None:
    from libcloud.common.exceptions import BaseHTTPError
    from libcloud.compute.base import NodeAuthSSHKey, NodeSize
    from libcloud.compute.drivers.azure_arm import AzureImage

    azure, emulator = driver
    assert any("client_credentials" in grant for grant in _Login.grants)  # it logged in, then used the token
    location = next(loc for loc in azure.list_locations() if loc.id == "germanywestcentral")
    size = next(s for s in azure.list_sizes(location) if s.id == "Standard_B2s")
    # libcloud has no resource group or VNet create: made as another client would
    group = f"/subscriptions/{SUB}/resourcegroups/lc"
    _arm(emulator, "PUT", f"{group}?api-version=2025-04-01", {"location": location.id})
    _arm(emulator, "PUT", f"{group}/providers/Microsoft.Network/virtualNetworks/lcnet?api-version=2024-10-01",
         {"location": location.id, "properties": {"addressSpace": {"addressPrefixes": ["10.30.0.0/16"]},
          "subnets": [{"name": "default", "properties": {"addressPrefix": "10.30.0.0/24"}}]}})
    network = next(n for n in azure.ex_list_networks() if n.name == "lcnet")
    subnet = azure.ex_list_subnets(network)[0]
    public_ip = azure.ex_create_public_ip("lcip", "lc", location)
    nic = azure.ex_create_network_interface("lcnic", subnet, "lc", location=location, public_ip=public_ip)
    image = AzureImage("latest", "server", "ubuntu-24_04-lts", "Canonical", location.id, azure)

    # libcloud sends "disablePasswordAuthentication": "true" (a string), which ARM accepts
    node = azure.create_node("lcvm", size, image, NodeAuthSSHKey(PUBLIC_KEY), ex_resource_group="lc",
                             location=location, ex_nic=nic, ex_use_managed_disks=True, ex_user_name="azureuser")
    assert node.id.endswith("/resourceGroups/lc/providers/Microsoft.Compute/virtualMachines/lcvm")
    assert [n.name for n in azure.list_nodes(ex_resource_group="lc")] == ["lcvm"]
    assert azure.ex_get_node(node.id).name == "lcvm"

    nope = NodeSize("Standard_Nope", "nope", 0, 0, 0, 0, azure)
    with pytest.raises(BaseHTTPError) as refused:
        azure.create_node("bad", nope, image, NodeAuthSSHKey(PUBLIC_KEY), ex_resource_group="lc",
                          location=location, ex_nic=nic, ex_use_managed_disks=True)
    assert "InvalidParameter" in str(refused.value) and "Standard_Nope" in str(refused.value)

    assert azure.destroy_node(node, ex_destroy_nic=False, ex_destroy_vhd=False) is True
    assert azure.list_nodes(ex_resource_group="lc") == []
