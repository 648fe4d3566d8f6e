"""The same store on Azure Blob Storage, against Azurite (Microsoft's own emulator, from npm,
over HTTP on loopback) through azure-storage-blob: conditional writes as Blob Storage answers
them, the lease and its fencing, a cluster moved in and out with its secrets sealed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from provisioner.state import StateStore, open_store
from provisioner.state.lease import LeaseLostError
from provisioner.state.objects import Conflict
from provisioner.state.sealing import new_key_file
from provisioner.state.transfer import move

from .cluster import make_local_cluster

ROOT = Path(__file__).resolve().parents[2]
AZURITE = next((p for p in (os.environ.get("CAST_AZURITE"), str(ROOT / ".venv/azurite/node_modules/.bin/azurite-blob"),
                            shutil.which("azurite-blob")) if p and Path(p).exists()), None)
pytestmark = pytest.mark.skipif(AZURITE is None, reason="Azurite is not installed (scripts/setup.sh installs it "
                                                        "into .venv/azurite with npm)")
# Azurite's documented development account (public, the same in every Azurite)
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture(scope="module")
def azurite(tmp_path_factory) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    where = tmp_path_factory.mktemp("azurite")
    server = subprocess.Popen([str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location",
                               str(where), "--silent", "--skipApiVersionCheck"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
               f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def container(azurite, monkeypatch) -> str:
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    monkeypatch.setenv("CAST_LEASE_TTL", "2")
    name = f"cast-{os.urandom(5).hex()}"
    BlobServiceClient.from_connection_string(azurite).create_container(name)
    return f"azblob://{ACCOUNT}/{name}/team"


def test_conditional_writes_as_blob_storage_answers_them(container, tmp_path):
    objects = open_store(container, tmp_path / "home").objects
    first = objects.put("k", b"1", create=True)
    with pytest.raises(Conflict):
        objects.put("k", b"2", create=True)
    second = objects.put("k", b"3", replaces=first)
    with pytest.raises(Conflict):
        objects.put("k", b"4", replaces=first)
    assert objects.get("k", unless=second).data == b""  # not modified: nothing sent
    with pytest.raises(Conflict):
        objects.delete("k", replaces=first)
    objects.delete("k", replaces=second)
    assert objects.get("k") is None and objects.keys() == []


def test_a_cluster_moves_in_and_out_sealed_and_fenced(container, tmp_path):
    key = f"file://{new_key_file(tmp_path / 'team.key')}"
    made = make_local_cluster(tmp_path / "local", "demo")
    store = open_store(container, tmp_path / "home", key=key)
    move(StateStore(tmp_path / "local"), store, "demo", "state push", remote_first=True)
    uuid = made["uuid"]
    blobs = [store.objects.get(k).data for k in store.objects.keys("")]
    assert len(blobs) == 6 and not any(b"PRIVATE KEY" in b or made["token"].encode() in b for b in blobs)
    with store.lock("demo", "reconcile"):
        store.lease_of("demo")._stop.set()  # paused
        other = open_store(container, tmp_path / "other", key=key, lock_wait_s=10)
        with other.lock("demo", "reconcile"):
            with pytest.raises(LeaseLostError):
                store.journal(uuid, "aws", "vms", "begin")
            other.journal(uuid, "aws", "vms", "end", "by the new holder")
    back = move(open_store(container, tmp_path / "home", key=key), StateStore(tmp_path / "local"), "demo",
                "state pull", remote_first=True)
    assert back.secrets == 4
    local = StateStore(tmp_path / "local")
    assert local.read_secret(uuid, "kubeconfig") == made["secrets"]["kubeconfig"]
    assert local.last_journal(uuid, "aws", "vms") == ("end", "by the new holder")
    lease = json.loads(store.objects.get("clusters/demo/lease.json").data)
    assert lease["released"] and lease["token"] == 4
