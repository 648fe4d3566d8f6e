"""The pure parts of the sandbox's VM hosts: the image's cache key follows its recipe, a cached
image is used as it is, the kernel ELF comes out of a bzImage, and a guest's network-config
puts its public IP on its NIC with the pool's gateway. (tests/boot boots them for real.)"""

from __future__ import annotations

import ipaddress
import json
import lzma
from pathlib import Path

import pytest
import yaml

from provisioner.sandbox import vm_image
from provisioner.sandbox.vm_guest import gateway_of, mac_of, network_config


def test_the_cache_key_changes_with_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    key = vm_image.recipe_key()
    assert key == vm_image.recipe_key()
    monkeypatch.setattr(vm_image, "PACKAGES", (*vm_image.PACKAGES, "htop"))
    assert vm_image.recipe_key() != key
    monkeypatch.undo()
    monkeypatch.setattr(vm_image, "_HOOK", vm_image._HOOK + "true\n")
    assert vm_image.recipe_key() != key


def test_a_cached_image_is_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = vm_image.recipe_key()
    (tmp_path / key).mkdir()
    (tmp_path / key / "recipe.json").write_text(json.dumps({"build_s": 12.5}))
    monkeypatch.setattr(vm_image, "_build", lambda *a: pytest.fail("rebuilt a cached image"))
    image = vm_image.ensure_image(tmp_path)
    assert image.directory == tmp_path / key and image.build_seconds() == 12.5
    # an image of an older recipe beside it is left alone, and not used
    (tmp_path / "0000000000000000").mkdir()
    assert vm_image.ensure_image(tmp_path).key == key


def test_the_cache_can_be_shared_between_sandbox_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert vm_image.image_cache(tmp_path / "sandbox") == tmp_path / "sandbox" / "vm-images"
    monkeypatch.setenv(vm_image.CACHE_ENV, str(tmp_path / "shared"))
    assert vm_image.image_cache(tmp_path / "sandbox") == tmp_path / "shared"


def test_the_kernel_elf_is_taken_out_of_a_bzimage() -> None:
    elf = b"\x7fELF" + bytes(range(256)) * 64
    other = lzma.compress(b"not a kernel", format=lzma.FORMAT_XZ)
    bzimage = b"MZ setup code" + other + b"\x00" * 100 + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"trailer"
    assert vm_image.extract_vmlinux(bzimage) == elf
    with pytest.raises(vm_image.ImageError, match="no vmlinux"):
        vm_image.extract_vmlinux(b"MZ" + other)


def test_a_guest_gets_its_public_ip_on_its_nic() -> None:
    network = ipaddress.IPv4Network("198.18.1.0/24")
    mac = mac_of("g1234abcd")
    assert mac == mac_of("g1234abcd") != mac_of("g1234abce")
    assert mac.startswith("52:54:00:") and len(mac.split(":")) == 6
    config = yaml.safe_load(network_config(mac, "198.18.1.23", network))
    eth0 = config["ethernets"]["eth0"]
    assert config["version"] == 2
    assert eth0["match"] == {"macaddress": mac} and eth0["set-name"] == "eth0"
    assert eth0["addresses"] == ["198.18.1.23/24"] and eth0["gateway4"] == "198.18.1.1"
    assert gateway_of(network) == "198.18.1.1"
