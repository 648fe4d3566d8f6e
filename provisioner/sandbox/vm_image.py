"""The guest image the sandbox's VM hosts boot: Debian 12 built from Debian packages alone
(mmdebstrap), with cloud-init, sshd, kernel WireGuard and the packages cast's cloud-init
installs (no mirror is reachable from the sandbox's network), made once and cached.

The cache key is a hash of the recipe (suite, mirrors, packages, hooks, disk size): change
any of it and the next `ensure_image` builds a new image beside the old one. An image is a
folder holding `base.qcow2` (an ext4 filesystem filling the whole disk: `root=/dev/vda`, no
partition table), the kernel as an uncompressed ELF (`vmlinux`: QEMU boots it through PVH,
skipping the firmware and the decompressor, seconds under emulation) and `initrd.img`.
Every VM gets a copy-on-write overlay of `base.qcow2` (`overlay`); the base is never written.

Building needs root, mmdebstrap, mke2fs and qemu-img, and the Debian mirror: about two minutes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import CastError

SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# What a cloud image has that `--variant=apt` lacks, and what cast's cloud-init asks for.
PACKAGES = (
    # the system: init, devices, the network, cloud-init and sshd
    "systemd", "systemd-sysv", "udev", "dbus", "kmod", "procps", "e2fsprogs", "locales", "sudo",
    "netbase", "iproute2", "cloud-init", "openssh-server", "linux-image-amd64", "initramfs-tools",
    "zstd",
    # templates/cloud-init/base.yaml.j2's packages: the sandbox's network reaches no mirror,
    # so they are in the image (a real cloud's apt-get installs them at boot)
    "wireguard-tools", "iputils-ping", "nftables", "containerd", "apt-transport-https",
    "ca-certificates", "curl", "gpg",
)
# Documentation, and kernel modules a VM on QEMU's virtio devices never loads (Debian 12's
# kernel package installs them under /lib/modules).
_EXCLUDED = (
    "/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*",
    *(f"/lib/modules/*/kernel/{tree}/*" for tree in (
        "drivers/gpu", "drivers/media", "drivers/net/wireless", "drivers/infiniband", "drivers/staging",
        "drivers/scsi", "drivers/usb", "drivers/bluetooth", "drivers/iio", "drivers/hid", "sound")),
)
INITRD_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "ext4")
SWAP_LABEL = "cast-swap"  # each VM gets a small swap disk with this label (vm_guest.py)
DISK_SIZE = "2G"
# Run in the finished root ($1): what a cloud image does differently from a bare debootstrap.
_HOOK = f"""set -e
root="$1"
# each VM's host keys are the ones cast gives it (cloud-init's ssh_keys): none built in
rm -f "$root"/etc/ssh/ssh_host_*
# each VM makes its own machine id at first boot
: > "$root/etc/machine-id"
# mmdebstrap copies this machine's resolver; the sandbox's network has none, and a resolver
# that never answers makes every offline download wait for its timeouts
printf '# no resolver on the sandbox network\\n' > "$root/etc/resolv.conf"
printf 'datasource_list: [ NoCloud, None ]\\n' > "$root/etc/cloud/cloud.cfg.d/90-cast-datasource.cfg"
printf 'LANG=en_US.UTF-8\\n' > "$root/etc/default/locale"
printf 'en_US.UTF-8 UTF-8\\n' > "$root/etc/locale.gen"
chroot "$root" locale-gen
printf '/dev/vda / ext4 rw,discard,errors=remount-ro 0 1\\nLABEL={SWAP_LABEL} none swap sw,nofail 0 0\\n' \\
    > "$root/etc/fstab"
# cloud-init writes a systemd-networkd file for the seed's network-config: Debian does not
# enable networkd; wait-online only delays boot on a static address
chroot "$root" systemctl enable systemd-networkd.service
chroot "$root" systemctl mask systemd-networkd-wait-online.service e2scrub_reap.service
chroot "$root" systemctl disable apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer || true
# offline: a failing download fails at once instead of backing off (the templates' retries)
printf 'Acquire::Retries::Delay "false";\\n' > "$root/etc/apt/apt.conf.d/80-cast-sandbox"
printf 'retry-max-time = 1\\n' > "$root/root/.curlrc"
printf 'MODULES=list\\n' > "$root/etc/initramfs-tools/conf.d/cast"
printf '%s\\n' {' '.join(INITRD_MODULES)} > "$root/etc/initramfs-tools/modules"
chroot "$root" update-initramfs -u -k all
chroot "$root" dpkg-query -W -f '${{Package}} ${{Version}}\\n' > "$root/.packages.txt"
"""
RECIPE_VERSION = 1  # bump when the build itself (not the recipe above) changes what it makes


class ImageError(CastError):
    """The guest image could not be built; the message says which step and why."""


@dataclass(frozen=True)
class GuestImage:
    """A built image: its folder, its recipe's key, what it holds."""

    directory: Path
    key: str

    @property
    def disk(self) -> Path:
        return self.directory / "base.qcow2"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinux"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    def packages(self) -> dict[str, str]:
        """Package name -> version, as installed in the image."""
        lines = (self.directory / "packages.txt").read_text().splitlines()
        return dict(line.split(" ", 1) for line in lines if " " in line)

    def build_seconds(self) -> float:
        return float(json.loads((self.directory / "recipe.json").read_text())["build_s"])


def recipe() -> dict[str, object]:
    """Everything the image is made from: what its cache key hashes."""
    return {"version": RECIPE_VERSION, "suite": SUITE, "mirrors": list(MIRRORS), "packages": sorted(PACKAGES),
            "excluded": list(_EXCLUDED), "hook": _HOOK, "disk": DISK_SIZE}


def recipe_key() -> str:
    """The first 16 hex digits of the recipe's SHA-256."""
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


CACHE_ENV = "CAST_VM_IMAGE_CACHE"


def image_cache(sandbox_directory: Path) -> Path:
    """Where the images of a sandbox directory are cached: `vm-images` in it, or the folder
    $CAST_VM_IMAGE_CACHE names (one cache for many sandbox directories, as tests have)."""
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else sandbox_directory / "vm-images"


def ensure_image(cache: Path, log: Path | None = None) -> GuestImage:
    """The image for the current recipe under `cache`, built first when it is not there
    (another process building it is waited for: a file lock). Older recipes' images are left
    alone. `log`: where mmdebstrap's output goes (default: beside the image). Raises ImageError."""
    key = recipe_key()
    image = GuestImage(cache / key, key)
    if (image.directory / "recipe.json").exists():
        return image
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(cache / f"{key}.lock"):
        if not (image.directory / "recipe.json").exists():
            _build(image, log or cache / f"{key}.log")
    return image


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def missing_tools() -> list[str]:
    """The programs a build needs that this machine lacks."""
    return [t for t in ("mmdebstrap", "mke2fs", "qemu-img") if shutil.which(t) is None]


def _run(step: str, args: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(args)}\n".encode())
        out.flush()
        done = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise ImageError(f"guest image: {step} failed (exit {done.returncode}); see {log}:\n" + "\n".join(tail))


def _build(image: GuestImage, log: Path) -> None:
    missing = missing_tools()
    if missing:
        raise ImageError(f"guest image: {', '.join(missing)} not installed (scripts/setup.sh installs them)")
    started = time.monotonic()
    work = image.directory.with_name(image.key + ".build")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    root = work / "root"
    log.write_text("")
    try:
        hook = work / "hook.sh"
        hook.write_text(_HOOK)
        _run("mmdebstrap", [
            "mmdebstrap", "--mode=root", "--variant=apt", "--format=directory",
            f"--include={','.join(PACKAGES)}",
            *(f"--dpkgopt=path-exclude={p}" for p in _EXCLUDED),
            "--dpkgopt=path-include=/usr/share/locale/locale.alias",
            f"--customize-hook=sh {hook} \"$1\"",
            SUITE, str(root), *MIRRORS], log)
        (work / "packages.txt").write_bytes((root / ".packages.txt").read_bytes())
        (root / ".packages.txt").unlink()
        boot = root / "boot"
        vmlinuz = max(boot.glob("vmlinuz-*"))
        (work / "vmlinux").write_bytes(extract_vmlinux(vmlinuz.read_bytes()))
        shutil.copyfile(max(boot.glob("initrd.img-*")), work / "initrd.img")
        raw = work / "disk.raw"
        _run("mke2fs", ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "cast-root", "-d", str(root), str(raw),
                        DISK_SIZE], log)
        _run("qemu-img", ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(work / "base.qcow2")],
             log)
        raw.unlink()
        shutil.rmtree(root)
        hook.unlink()
        meta = {"recipe": recipe(), "built_at": time.time(), "build_s": round(time.monotonic() - started, 1)}
        (work / "recipe.json").write_text(json.dumps(meta, indent=1))
        os.replace(work, image.directory)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


_XZ_MAGIC = b"\xfd7zXZ\x00"
_ELF_MAGIC = b"\x7fELF"


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The kernel ELF inside an xz-compressed bzImage (Debian's amd64 kernels): the first xz
    stream that decompresses to an ELF file. Raises ImageError when there is none."""
    start = bzimage.find(_XZ_MAGIC)
    while start >= 0:
        with contextlib.suppress(lzma.LZMAError):
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[start:])
            if elf.startswith(_ELF_MAGIC):
                return elf
        start = bzimage.find(_XZ_MAGIC, start + 1)
    raise ImageError("guest image: the kernel is not an xz-compressed bzImage (no vmlinux found in it)")


def overlay(image: GuestImage, path: Path) -> None:
    """A copy-on-write qcow2 disk at `path` over the image's base (which it never writes)."""
    done = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                           str(image.disk.resolve()), str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise ImageError(f"overlay {path}: {done.stderr.strip()}")
