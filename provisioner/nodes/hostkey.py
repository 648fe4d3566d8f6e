"""Host key rotation after first contact.

cast makes each node's first SSH host key and sends it in the node's user-data, which every
process on the node can read back from the cloud's metadata service (and which AWS,
DigitalOcean and Azure cannot delete afterwards). So, over the first pinned session, the node
makes a key of its own, cast pins its public half, the injected key and cloud-init's local
copies of the user-data are deleted, and sshd is told to reload (SIGHUP: it reads its config
and host keys again; sessions already open stay). A marker file records that the node was
rotated, so it is done once per VM: a recreated VM has no marker and is rotated again.

Two commands, so that the new public key can be recorded by cast before the node switches to
it: `new` makes (or finds) the new key beside the live one and prints its public half (and
where sshd keeps its key and pid, for the next); `commit` moves it into place and reloads sshd.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..cloudinit import STATE_DIR
from .ssh import NodeError

if TYPE_CHECKING:
    from .ssh import NodeAccess, SshPool

ROTATED_MARKER = f"{STATE_DIR}/host-key-rotated"
RECONNECT_TIMEOUT_S = 60.0

# Where sshd keeps its ed25519 host key and its pid file, as sshd itself reads its config
# (a cloud VM: /etc/ssh/ssh_host_ed25519_key and /run/sshd.pid; a sandbox host: its own).
# Read once, by `new`, which prints both for `commit`: sshd -T parses the configuration and
# loads every host key, the dearest command of the rotation.
_LOCATE = (
    "set -e; umask 077; "
    "cfg=$(/usr/sbin/sshd -T 2>/dev/null || sshd -T); key=; pidfile=; "
    # its lines read by the shell itself (no awk to start): the first ed25519 host key, the pid file
    "IFS='\n'; set -f; for line in $cfg; do case $line in "
    "'hostkey '*ed25519*) [ -n \"$key\" ] || key=${line#hostkey };; "
    "'pidfile '*) [ -n \"$pidfile\" ] || pidfile=${line#pidfile };; esac; done; unset IFS; set +f; "
    "[ -n \"$key\" ] || { echo 'sshd names no ed25519 host key' >&2; exit 1; }; "
    f"marker={ROTATED_MARKER}; "
)

# cloud-init's local copies of the user-data (root-only, but they hold the injected key).
_USER_DATA_COPIES = (
    "/var/lib/cloud/instance/user-data.txt /var/lib/cloud/instance/user-data.txt.i "
    "/var/lib/cloud/instance/cloud-config.txt /run/cloud-init/instance-data-sensitive.json "
    "/var/lib/waagent/CustomData"
)


def _new_script(comment: str) -> str:
    """Prints `rotated` and the live public key, or `new`, the key file, sshd's pid file and
    the new key's public half (made beside the live key, or found there from an earlier try)."""
    return _LOCATE + (
        "if [ -f \"$marker\" ]; then echo rotated; ssh-keygen -y -f \"$key\"; exit 0; fi; "
        "if [ -s \"$key.cast-new\" ]; then pub=$(ssh-keygen -y -f \"$key.cast-new\"); "  # from an earlier try
        "else rm -f \"$key.cast-new\" \"$key.cast-new.pub\"; "
        f"ssh-keygen -q -t ed25519 -N '' -C {shlex.quote(comment)} -f \"$key.cast-new\" </dev/null >/dev/null; "
        "read -r pub < \"$key.cast-new.pub\"; fi; "  # written by the ssh-keygen that made the key
        "printf 'new\\n%s\\n%s\\n%s\\n' \"$key\" \"$pidfile\" \"$pub\""
    )


def _commit_script(key: str, pidfile: str, public: str) -> str:
    """Moves the new key (whose public half `new` printed) into place, deletes cloud-init's
    copies of the user-data, writes the marker and tells sshd to reload: only builtins, two
    mv, one rm and a sync of the files it changed."""
    return (
        f"set -e; umask 077; key={shlex.quote(key)}; pidfile={shlex.quote(pidfile)}; marker={ROTATED_MARKER}; "
        "if [ -f \"$marker\" ]; then exit 0; fi; "
        "[ -s \"$key.cast-new\" ] || { echo 'no new host key to put in place' >&2; exit 1; }; "
        f"printf '%s\\n' {shlex.quote(public)} > \"$key.cast-new.pub\"; "
        "mv -f \"$key.cast-new\" \"$key\"; mv -f \"$key.cast-new.pub\" \"$key.pub\"; "
        "sync \"$key\" \"$key.pub\" \"${key%/*}\" 2>/dev/null || sync; "
        f"rm -f {_USER_DATA_COPIES}; "
        "[ -d \"${marker%/*}\" ] || mkdir -p \"${marker%/*}\"; : > \"$marker\"; "
        "if [ -n \"$pidfile\" ] && read -r pid 2>/dev/null < \"$pidfile\" && [ -n \"$pid\" ] "
        "&& kill -HUP \"$pid\" 2>/dev/null; then :; "
        "elif command -v systemctl >/dev/null 2>&1; then systemctl reload ssh || systemctl reload sshd; "
        "else echo 'sshd could not be told to reload' >&2; exit 1; fi"
    )


def same_key(a: str, b: str) -> bool:
    """Whether two OpenSSH public key lines name one key (comments aside)."""
    return a.split()[:2] == b.split()[:2]


def rotate_host_key(pool: SshPool, node: NodeAccess, record_pending: Callable[[str], None]) -> NodeAccess:
    """Give `node` (reachable over `pool`, pinned to the key cast injected) a host key of its
    own, unless it has one already (its marker). `record_pending(public)` is called with the
    new key's public line before the node switches to it, so that a crash between the two
    cannot lose the key. Returns `node` with its live host key, already connected to with that
    key pinned. Raises NodeError."""
    out = pool.check(node, _new_script(node.name), purpose="make a new host key").split("\n")
    state = out[0].strip()
    key, pidfile, public = (out[1], out[2], out[3].strip()) if state == "new" and len(out) > 3 else ("", "", "")
    if state == "rotated":
        public = out[1].strip() if len(out) > 1 else ""
    if state not in ("new", "rotated") or not public.startswith("ssh-ed25519 ") or (state == "new" and not key):
        raise NodeError(node.name, "the node did not give a new ed25519 host key")
    if state == "rotated":
        if not same_key(public, node.host_key):
            raise NodeError(node.name, "its host key file differs from the key it presented")
        return node
    record_pending(public)
    pool.check(node, _commit_script(key, pidfile, public), purpose="put the new host key in place")
    rotated = replace(node, host_key=public)
    pool.forget(node)
    # sshd re-executes itself on SIGHUP: its port refuses for the few milliseconds that takes
    pool.wait_reachable(rotated, timeout_s=RECONNECT_TIMEOUT_S, first_retry_s=0.01)
    return rotated
