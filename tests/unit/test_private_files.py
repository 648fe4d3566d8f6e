"""Files only the user may read: atomic 0600 writes that reuse nothing planted beside them, the
user's kubeconfig merged under kubectl's lock, symlinks handled by an explicit rule, and the
state store's SQLite side files 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from provisioner.errors import LockHeldError
from provisioner.kube import kubeadm
from provisioner.kube.kubeconfig import client_kubeconfig
from provisioner.kube.user_config import merge_into_user_config
from provisioner.private_files import UntrustedPathError, write_private_file
from provisioner.state import StateStore
from tests.kube.pki import make_pki

PKI = make_pki()
NEW = client_kubeconfig(PKI.admin_conf(), cluster="demo", server="https://198.18.0.2:6443",
                        ca_hash=kubeadm.ca_cert_hash(PKI.ca_pem))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _plant_world_readable(path: Path) -> Path:
    """The temporary name an older cast used, `.<name>.<pid>.tmp`, created 0666 by another user."""
    planted = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    planted.write_text("planted")
    os.chmod(planted, 0o666)
    return planted


def test_a_planted_world_readable_temp_file_does_not_make_the_result_readable(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    planted = _plant_world_readable(target)
    write_private_file(target, b"key material")
    assert target.read_bytes() == b"key material"
    assert _mode(target) == 0o600
    assert planted.read_text() == "planted"  # not reused
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, planted.name])  # no temp left


def test_merging_the_kubeconfig_past_a_planted_temp_file_leaves_it_0600(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\n")
    _plant_world_readable(config)
    merge_into_user_config(NEW, "demo", config)
    assert _mode(config) == 0o600
    assert yaml.safe_load(config.read_text())["users"][0]["user"]["client-key-data"] == PKI.key_data


def test_a_symlinked_kubeconfig_of_the_users_own_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "kubeconfig"
    real.write_text("apiVersion: v1\nkind: Config\n")
    link = tmp_path / "config"
    link.symlink_to(real)
    assert merge_into_user_config(NEW, "demo", link) == link
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert _mode(real) == 0o600
    assert [c["name"] for c in yaml.safe_load(real.read_text())["contexts"]] == ["demo"]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file owned by another user needs root")
def test_a_symlinked_kubeconfig_pointing_at_someone_elses_file_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.write_text("apiVersion: v1\nkind: Config\n")
    os.chown(theirs, 65534, 65534)
    link = tmp_path / "config"
    link.symlink_to(theirs)
    with pytest.raises(UntrustedPathError, match="not a file of yours"):
        merge_into_user_config(NEW, "demo", link)
    assert theirs.read_text() == "apiVersion: v1\nkind: Config\n"
    assert not (tmp_path / "config.lock").exists()


def test_a_held_kubectl_lock_refuses_the_merge_and_is_left_alone(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\n")
    lock = tmp_path / "config.lock"
    lock.touch()
    with pytest.raises(LockHeldError, match=r"config\.lock exists: kubectl") as caught:
        merge_into_user_config(NEW, "demo", config)
    assert caught.value.exit_code == 4
    assert config.read_text() == "apiVersion: v1\nkind: Config\n"
    assert lock.exists()
    lock.unlink()
    merge_into_user_config(NEW, "demo", config)
    assert not lock.exists()  # taken and released


def test_sqlite_wal_and_shm_files_are_0600_from_the_first_write(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    with store.transaction() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('probe', 'x')")
        side = {p.name: _mode(p) for p in store.root.iterdir() if p.name.startswith("state.db")}
    assert side == {"state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600}


def test_an_existing_0755_state_root_is_made_0700(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    os.chmod(root, 0o755)
    StateStore(root).create_cluster("u-1", "demo", "us-east", {})
    assert _mode(root) == 0o700
