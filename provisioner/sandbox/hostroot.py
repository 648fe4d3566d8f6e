"""A sandbox host's own root filesystem: what a root session on the host sees instead of this
machine.

sshd, and every session it starts, runs in the host's own PID, mount, UTS and IPC namespaces
(inside its network namespace), under a root made fresh on a tmpfs and entered with
pivot_root: this machine's /usr read-only (and /bin, /lib, ... as on the machine: symlinks
into it, or read-only binds), a generated /etc (root and sshd only, the host's name), its
own /root, /tmp, /run, /var and /etc/wireguard, a /dev of a few devices (null, zero, full,
random, urandom, tty, net/tun, its own pts) and a /proc of its own processes with /proc/sys
read-only except /proc/sys/net (the host's network namespace). The old root is unmounted
and sshd starts without the capabilities that would undo any of it (mount, mknod, modules,
raw I/O, ptrace, open_by_handle_at, ...): no mount, tmpfs or directory of the host exists
outside its namespaces, and the kernel removes them all when its last process ends.

On this machine a host has only its directory: `skeleton/` (its own generated files, copied
into the new root at boot over the part every host has alike, written once per run, then
deleted: the host key lives on in the host alone), `root/`
(the empty mount point of its tmpfs) and copies of its `private` files.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from ..cloudinit import STATE_DIR

# What sshd and the tools run on a host need: sshd's privilege separation (setuid, setgid,
# chroot), root's file access (chown, dac_override, fowner, fsetid), kill, binding port 22,
# and the network of its own namespace (net_admin: ip, wg, wireguard-go; net_raw: ping).
CAPABILITIES = ("chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid",
                "net_bind_service", "net_admin", "net_raw", "sys_chroot", "audit_write")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty", "net/tun")
TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")  # mirrored from the machine
ETC_COPIED = ("ld.so.cache", "protocols", "services")  # system files the tools read
MASKED_PROC = ("kcore", "keys", "timer_list", "sched_debug")
SSHD_CONFIG = "/etc/ssh/sshd_config"

PASSWD = ("root:x:0:0:root:/root:/bin/bash\n"
          "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"
SHADOW = "root:*:::::::\nsshd:!:::::::\nnobody:!:::::::\n"  # root: no password, not locked
NSSWITCH = "".join(f"{db}: files\n" for db in ("passwd", "group", "shadow", "hosts", "networks",
                                               "protocols", "services"))


def sshd_config(listen: str, port: int) -> str:
    """The host's sshd configuration (paths inside its own root): root by key only."""
    return (f"ListenAddress {listen}:{port}\n"
            "HostKey /etc/ssh/ssh_host_ed25519_key\n"
            "AuthorizedKeysFile .ssh/authorized_keys\n"
            "PidFile /run/sshd.pid\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\nUseDNS no\n"
            "MaxStartups 200\nMaxSessions 100\n"
            # Every host shares this machine's CPUs: a Go program (wireguard-go) with one
            # thread running Go code per host, not one per CPU, spends far less on its own
            # scheduler (100 hosts' wireguard-go on 2 cores: about a third less CPU per packet).
            "SetEnv GOMAXPROCS=1\n"
            "Subsystem sftp internal-sftp\n")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, mode)  # not narrowed by the umask


def write_common(template: Path) -> None:
    """Write the part of a host's root that every host has alike into the new directory
    `template` (0700): the empty directories, users, name resolution, the system files the
    tools read, modes as on a fresh VM. Written once per run, copied into each root at boot."""
    template.mkdir(mode=0o700)
    for directory, mode in (("usr", 0o755), ("dev", 0o755), ("proc", 0o555), ("run/sshd", 0o755),
                            ("run/wireguard", 0o755), ("run/lock", 0o1777), ("tmp", 0o1777),
                            ("var/tmp", 0o1777), ("var/log", 0o755), (STATE_DIR.lstrip("/"), 0o755),
                            ("etc/wireguard", 0o700), ("etc/ssh", 0o755), ("root/.ssh", 0o700), ("home", 0o755),
                            ("mnt", 0o755), ("opt", 0o755), ("srv", 0o755)):
        path = template / directory
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    (template / "root").chmod(0o700)
    for link, target in (("var/run", "/run"), ("var/lock", "/run/lock"),
                         ("etc/mtab", "../proc/self/mounts")):
        (template / link).symlink_to(target)
    for top in TOP_LEVEL:
        machine = Path("/") / top
        if machine.is_symlink():
            (template / top).symlink_to(os.readlink(machine))
        elif machine.is_dir():
            (template / top).mkdir(mode=0o755)  # bound read-only at boot
    etc = template / "etc"
    for file, text, mode in (("passwd", PASSWD, 0o644), ("group", GROUP, 0o644),
                             ("shadow", SHADOW, 0o640), ("nsswitch.conf", NSSWITCH, 0o644)):
        _write(etc / file, text, mode)
    for record in ("run/utmp", "var/log/wtmp", "var/log/btmp", "var/log/lastlog"):  # a login's records
        _write(template / record, "", 0o600 if record.endswith("btmp") else 0o644)
    for file in ETC_COPIED:
        if Path("/etc", file).is_file():
            shutil.copyfile(Path("/etc", file), etc / file)


def write_skeleton(skeleton: Path, *, name: str, host_key: str, authorized_key: str,
                   listen: str, port: int) -> None:
    """Write host `name`'s own part of its root into the new directory `skeleton` (0700),
    copied over the common part (write_common) at boot: its name, sshd's configuration and
    host key, and /root with `authorized_key`."""
    skeleton.mkdir(mode=0o700)
    for directory, mode in (("etc/ssh", 0o755), ("root/.ssh", 0o700)):
        path = skeleton / directory
        path.mkdir(parents=True)
        path.chmod(mode)
    (skeleton / "root").chmod(0o700)
    etc = skeleton / "etc"
    for file, text, mode in (("hostname", f"{name}\n", 0o644),
                             ("hosts", f"127.0.0.1 localhost\n127.0.1.1 {name}\n"
                                       "::1 localhost ip6-localhost ip6-loopback\n", 0o644),
                             ("ssh/sshd_config", sshd_config(listen, port), 0o644),
                             ("ssh/ssh_host_ed25519_key",
                              host_key if host_key.endswith("\n") else host_key + "\n", 0o600)):
        _write(etc / file, text, mode)
    _write(skeleton / "root/.ssh/authorized_keys", authorized_key.strip() + "\n", 0o600)


def write_file(skeleton: Path, path: str, text: str) -> None:
    """Write the new file `path` (absolute, as the host sees it) of the host's root-to-be."""
    _write(skeleton / path.lstrip("/"), text)


def private_paths(directory: Path, paths: tuple[str, ...], root: str) -> list[str]:
    """Shell commands (run before pivot_root) giving the host its own copy of each path of
    this machine in `paths`: an empty tmpfs for a directory, a copy (kept in `directory`)
    for a file. ValueError names a path this machine does not have."""
    commands = []
    for index, path in enumerate(paths):
        inside = shlex.quote(root + path)
        if os.path.isdir(path):
            commands += [f"[ -d {inside} ] || mkdir -p {inside}",
                         f"mount -t tmpfs -o mode=0755 cast-private {inside}"]
        elif os.path.isfile(path):
            copy = shlex.quote(str(directory / f"private-{index}"))
            commands += [f"cp -p {shlex.quote(path)} {copy}",
                         f"mkdir -p \"$(dirname {inside})\"",
                         f"[ -e {inside} ] || : > {inside}",
                         f"mount --bind {copy} {inside}"]
        else:  # the host would write into this machine's own files
            raise ValueError(f"{path} does not exist here, so it cannot be made private")
    return commands


def boot_script(directory: Path, name: str, private: tuple[str, ...] = (), *, gated: bool = False,
                template: Path | None = None) -> str:
    """The shell script that, run as the first process of the host's new PID, mount, UTS
    and IPC namespaces (mounts private), builds the root of the host whose directory is
    `directory` (with `skeleton/` written, copied over the common part in `template` when
    given), enters it and execs sshd in the foreground.
    `gated`: its standard input is a pipe (the gate), and it waits for a line on it between
    entering the root and starting sshd; at end of file (nobody will open the gate) it ends
    without starting sshd. One simple command a line, under `set -e`: any
    step that fails ends the host before sshd starts (a command inside an && list would not)."""
    root = str(directory / "root")
    r = shlex.quote(root)
    tops = [t for t in TOP_LEVEL if Path("/", t).is_dir() and not Path("/", t).is_symlink()]
    devices = " ".join(DEVICES)
    drop = ",".join(["-all", *(f"+{c}" for c in CAPABILITIES)])
    return "\n".join([
        "set -e",
        f"mount -t tmpfs -o mode=0755 cast-root {r}",
        *([f"cp -a {shlex.quote(str(template))}/. {r}/"] if template is not None else []),
        f"cp -a {shlex.quote(str(directory / 'skeleton'))}/. {r}/",
        f"rm -rf {shlex.quote(str(directory / 'skeleton'))}",
        # /usr/bin/awk -> /etc/alternatives/awk -> mawk: a copy of the machine's (hundreds of
        # links: one cp here, not hundreds of calls in the supervisor, whose threads share a GIL)
        *([f"cp -a /etc/alternatives {r}/etc/alternatives"] if Path("/etc/alternatives").is_dir() else []),
        f"mount --bind -o ro,nodev /usr {r}/usr",
        *(f"mount --bind -o ro,nodev /{t} {r}/{t}" for t in tops),
        f"mount -t tmpfs -o mode=0755,nosuid,size=1m cast-dev {r}/dev",
        f"mkdir {r}/dev/net {r}/dev/pts {r}/dev/shm",
        f"for d in {devices}; do : > {r}/dev/$d; mount --bind /dev/$d {r}/dev/$d; done",
        f"mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 cast-pts {r}/dev/pts",
        f"mount -t tmpfs -o mode=1777,nosuid,nodev cast-shm {r}/dev/shm",
        f"ln -s pts/ptmx {r}/dev/ptmx",
        f"ln -s /proc/self/fd {r}/dev/fd",
        *(f"ln -s /proc/self/fd/{n} {r}/dev/{stream}" for n, stream in enumerate(("stdin", "stdout", "stderr"))),
        f"mount -t proc -o nosuid,nodev,noexec cast-proc {r}/proc",
        f"echo {shlex.quote(name)} > {r}/proc/sys/kernel/hostname",
        f"mount --bind {r}/proc/sys {r}/proc/sys",
        f"mount --bind {r}/proc/sys/net {r}/proc/sys/net",
        f"mount -o remount,bind,ro {r}/proc/sys",
        f"[ ! -e {r}/proc/sysrq-trigger ] || mount --bind -o ro {r}/proc/sysrq-trigger {r}/proc/sysrq-trigger",
        f"for f in {' '.join(MASKED_PROC)}; do [ ! -e {r}/proc/$f ] || mount --bind /dev/null {r}/proc/$f; done",
        *private_paths(directory, private, root),
        f"cd {r}",
        "mkdir .old",
        "pivot_root . .old",
        "umount -l .old",
        "rmdir .old",
        *(["read -r gate", "exec </dev/null"] if gated else []),
        f"exec setpriv --inh-caps=-all --ambient-caps=-all --bounding-set={drop} "
        f"/usr/sbin/sshd -D -e -f {SSHD_CONFIG}",
    ])
