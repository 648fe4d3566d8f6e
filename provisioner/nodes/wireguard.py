"""The WireGuard mesh on nodes, over SSH.

Each node makes its own key pair (`wg genkey` into a 0600 file on the node); only the public
key comes back. cast renders every node's wg0.conf from the pure plan (provisioner/mesh.py),
sends it (it holds no private key: the node splices its own key in, see _SPLICE), and applies
it in rounds: each node's interface, if down, comes up without peers (`wg-quick up`) as
soon as the node is up; then every node gets its peers with `wg syncconf` (live tunnels are
never restarted), new peers without keepalive, so nothing is sent yet; then one side of each
new pair starts its session, to a peer that knows it; then the keepalives go on (see
apply_mesh). Every pair must show a working session (a recent handshake and an answered
ping over the mesh). Nodes need wireguard-tools,
bash, awk and python3 (the pinger; every cloud image that runs cloud-init has python3).
"""

from __future__ import annotations

import contextlib
import functools
import json
import shlex
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import mesh
from ..retry import DeadlineError, wait_until
from .ssh import NodeAccess, NodeError, SshPool

HANDSHAKE_TIMEOUT_S = 30.0
PINGER = Path(__file__).with_name("pinger.py")  # run on nodes: one process pings many peers
# How long a probe waits for its echo replies. The pinger stops once every peer answered (a
# round trip, a handshake first if there was no session), so a long wait costs nothing on a
# working mesh; while handshakes queue (100 nodes on one machine), waiting here instead of
# probing again saves a pinger per node per round. Above REKEY_TIMEOUT (5 s): an echo staged
# behind a lost initiation goes out with WireGuard's own retry.
PROBE_WAIT_S = 6.0
RECENT_S = 180  # WireGuard drops a session 180 s after its handshake (REJECT_AFTER_TIME)

# Makes the node's key pair on first use (a 0600 file, never read back) and prints the public key.
_MAKE_KEY = """if [ ! -s "$key" ]; then
    mkdir -p "$(dirname "$key")"
    wg genkey > "$key.new"
    mv -f "$key.new" "$key"
fi
wg pubkey < "$key"
"""

# The uploaded wg0.conf holds no private key; the node splices its own key in, read by awk
# from the key file (never on a command line, on the wire or in any output):
# - `wg syncconf` makes the interface match its input exactly: input without PrivateKey
#   clears the key (seen with wireguard-tools 1.0.20210914), so it gets the spliced text;
# - the first `wg-quick up` reads a spliced copy in a 0600 temporary directory on the node,
#   so the interface has its key when it goes up and starts its handshakes at once (with
#   the key set only by PostUp, the first keepalives fail and nothing retries them until
#   traffic or the 25 s keepalive). PostUp sets the key again, for a plain `wg-quick up`.
# The last check proves the interface holds the node's key.
_SPLICE = f"""key={mesh.PRIVATE_KEY_PATH}
splice_key() {{
    awk -v f="$key" '{{print}} index($0, "[Interface]") == 1 {{getline k < f; print "PrivateKey = " k}}'
}}
"""
# `wg syncconf` takes the config without wg-quick's own keys. Dropping them with one awk costs
# far less than `wg-quick strip` (a large bash script), which matters with many nodes a host.
_WG_QUICK_KEYS = "Address|MTU|DNS|Table|PreUp|PostUp|PreDown|PostDown|SaveConfig"
_SYNC = (f"wg syncconf {mesh.INTERFACE} <(awk '!/^[ \\t]*({_WG_QUICK_KEYS})[ \\t]*=/' {mesh.CONFIG_PATH} "
         "| splice_key)")
# Brings wg0 up, without peers, from the interface-only config on stdin, unless it is up
# already (a live mesh: then stdin is ignored and the current peers are listed). Peers come
# later, once every node is up (_SYNC_SCRIPT), so no first handshake goes to a peer that
# cannot answer yet (it would wait 5 s to retry).
_UP_SCRIPT = f"""set -e
umask 077
{_SPLICE}{_MAKE_KEY}config={mesh.CONFIG_PATH}
mkdir -p "$(dirname "$config")"
new=$(mktemp "$(dirname "$config")/.cast-config.XXXXXX")
trap 'rm -f "$new"' EXIT
cat > "$new"
# A bring-up cut short (cast killed while wg-quick ran) leaves wg0 without its address or
# down: that interface never carried a session, so it is removed and brought up afresh.
address=$(awk -F' *= *' '/^Address/ {{print $2; exit}}' "$new")
if ip link show dev {mesh.INTERFACE} >/dev/null 2>&1 && \
   ! {{ ip -o link show dev {mesh.INTERFACE} | grep -q '[<,]UP[,>]' && \
        ip -o addr show dev {mesh.INTERFACE} | grep -qF "inet $address"; }}; then
    ip link del dev {mesh.INTERFACE}
fi
if ip link show dev {mesh.INTERFACE} >/dev/null 2>&1; then
    echo updated $(wg show {mesh.INTERFACE} peers)
else
    mv -f "$new" "$config"
    up=$(mktemp -d)
    trap 'rm -rf "$up"' EXIT
    splice_key < "$config" > "$up/{mesh.INTERFACE}.conf"
    WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go wg-quick up "$up/{mesh.INTERFACE}.conf" >&2
    echo started
fi
"""
# Installs the full config from stdin (a temp file, then mv) and applies it live.
_SYNC_SCRIPT = f"""set -e
umask 077
{_SPLICE}
new=$(mktemp "$(dirname {mesh.CONFIG_PATH})/.cast-config.XXXXXX")
cat > "$new"
mv -f "$new" {mesh.CONFIG_PATH}
{_SYNC}
if [ "$(wg show {mesh.INTERFACE} public-key)" != "$(wg pubkey < "$key")" ]; then
    echo "{mesh.INTERFACE} does not hold the node's private key" >&2
    exit 1
fi
"""


@functools.cache
def pinger_source() -> bytes:
    """The pinger's code, fed on stdin to `python3 -` on a node (read from disk once)."""
    return PINGER.read_bytes()


def pinger_command(targets: Sequence[str], count: int, interval_s: float, wait_s: float, start_at: float) -> str:
    """The node's command that runs the pinger (pinger_source on its stdin): `count` echoes
    `interval_s` apart to each of `targets`, from `start_at` (unix time, after one unmeasured
    echo each; 0: at once, without), waiting `wait_s` for the last replies. It prints a JSON
    object by target."""
    args = " ".join(shlex.quote(t) for t in targets)
    return f"python3 - {count} {interval_s:g} {wait_s:g} {start_at:.3f} {args}"


@dataclass(frozen=True)
class MeshNodeAccess:
    """A node of the mesh: how to reach it, its group (cloud) and its mesh address. The
    WireGuard endpoint is `public_ip`, or the SSH address when that is not given."""

    access: NodeAccess
    group: str
    mesh_ip: str
    public_ip: str | None = None

    @property
    def name(self) -> str:
        return self.access.name

    @property
    def endpoint_ip(self) -> str:
        return self.public_ip or self.access.host


@dataclass(frozen=True)
class MeshReport:
    """What apply_mesh did: every node's public key, which interfaces it brought up and
    which it updated live, and the pairs (sorted names) without a working session (no
    recent handshake, or no answer to a ping over the mesh)."""

    public_keys: dict[str, str]
    started: tuple[str, ...]
    updated: tuple[str, ...]
    missing_handshakes: tuple[tuple[str, str], ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.missing_handshakes


@dataclass(frozen=True)
class Prepared:
    """A node ready to join the mesh: its public key, whether its wg0 was just "started"
    (without peers) or was up already ("updated"), and the peers it had then."""

    public_key: str
    state: str
    had_peers: frozenset[str]


def prepare_node(pool: SshPool, node: MeshNodeAccess) -> Prepared:
    """In one command: make the node's key pair on the node if it has none (only the public
    key comes back) and bring its wg0 up without peers if it is down; a node can do this as
    soon as it is up, while others still boot. Raises NodeError."""
    text = mesh.render_wg_quick(mesh.interface_only(node.name, node.mesh_ip))
    words = pool.check(node.access, f"bash -c {shlex.quote(_UP_SCRIPT)}", stdin=text.encode(),
                       purpose="make key, bring up wg0").split()
    if len(words) < 2 or len(words[0]) != 44:
        raise NodeError(node.name, "`wg pubkey` did not print a public key")
    return Prepared(words[0], words[1], frozenset(words[2:]))


def apply_mesh(nodes: list[MeshNodeAccess], pool: SshPool, *,
               handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
               prepared: dict[str, Prepared] | None = None,
               joining: Collection[str] | None = None) -> MeshReport:
    """Make `nodes` a WireGuard full mesh, first bring-up or live update alike (idempotent):
    prepare every node not in `prepared` (see prepare_node), then give every node its peers
    with `wg syncconf` (peers added or removed without restarting sessions; the new ones
    without keepalive), then wait up to `handshake_timeout_s` for every pair to have a
    working session, started from one side (see wait_for_handshakes), then install every
    node's full config, keepalives on. No node sends a handshake initiation before every
    node has its peers. Pairs still without a session are in the report, not raised.
    Nodes left out of `nodes` are dropped from every config. With `joining`
    (add-node: the nodes new to a mesh that works), only the pairs with a joining node are
    waited for, each looked at from the joining side (the others' sessions are not touched).
    Blocks; raises NodesError if a node fails, InputError if the plan is invalid (e.g. two
    nodes share a mesh address)."""
    by_name = {n.name: n for n in nodes}
    ready = dict(prepared or {})
    ready.update(pool.map([n.access for n in nodes if n.name not in ready],
                          lambda a: prepare_node(pool, by_name[a.name])))
    keys = {name: p.public_key for name, p in ready.items() if name in by_name}
    members = [mesh.MeshMember(n.name, n.group, n.mesh_ip, n.endpoint_ip, keys[n.name])
               for n in nodes]
    plans = mesh.plan_mesh(members)

    established = {name: set(ready[name].had_peers) for name in by_name}

    def sync(access: NodeAccess, config: mesh.NodeConfig) -> None:
        text = mesh.render_wg_quick(config)
        pool.check(access, f"bash -c {shlex.quote(_SYNC_SCRIPT)}", stdin=text.encode(), purpose="sync wg0 peers")

    # Three rounds, so that no handshake initiation is wasted: a node whose peer does not
    # know it yet has its initiation dropped and retries only after REKEY_TIMEOUT (5 s),
    # and two nodes starting at once cross their handshakes. First every node gets all its
    # peers, the new ones without PersistentKeepalive (which would start a handshake at
    # once); nothing is sent yet. Then one side of each new pair starts its session
    # (wait_for_handshakes pings from it), now that both sides know each other. Last, every
    # node gets its full config, keepalives on: each sends one keepalive over a live session.
    pool.map([n.access for n in nodes],
             lambda a: sync(a, mesh.without_keepalive(plans[a.name], established[a.name])))
    missing = wait_for_handshakes(pool, list(by_name.values()), keys, handshake_timeout_s, only=joining)
    pool.map([n.access for n in nodes], lambda a: sync(a, plans[a.name]))
    return MeshReport(
        public_keys=keys,
        started=tuple(sorted(n for n in by_name if ready[n].state == "started")),
        updated=tuple(sorted(n for n in by_name if ready[n].state == "updated")),
        missing_handshakes=missing,
    )


@dataclass(frozen=True)
class PeerProbe:
    """What a node saw of its peers: its clock, {peer public key: latest handshake (unix s,
    0 = never)}, and the mesh addresses that answered a ping."""

    now: int
    handshakes: dict[str, int]
    answered: frozenset[str]


def probe_peers(pool: SshPool, node: MeshNodeAccess, ping: Sequence[str] = ()) -> PeerProbe:
    """Look at `node`'s peers: ping each mesh address in `ping` once, all from one pinger
    process (traffic starts a handshake where there is no session, and an answer proves
    the session carries data both ways), then read the latest handshakes."""
    pings = f"{pinger_command(ping, 1, 0.2, PROBE_WAIT_S, 0)} || echo '{{}}'\n" if ping else "echo '{}'\n"
    script = f"{pings}date +%s\nwg show {mesh.INTERFACE} latest-handshakes\n"
    out = pool.check(node.access, f"bash -c {shlex.quote(script)}",
                     stdin=pinger_source() if ping else None, purpose="probe wg0 peers")
    lines = out.split("\n")
    try:
        replies = json.loads(lines[0])
    except json.JSONDecodeError:
        replies = {}
    handshakes: dict[str, int] = {}
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == 2:
            handshakes[parts[0]] = int(parts[1])
    answered = frozenset(ip for ip, figures in replies.items() if figures[1] > 0)
    return PeerProbe(int(lines[1]), handshakes, answered)


def wait_for_handshakes(pool: SshPool, nodes: list[MeshNodeAccess], keys: dict[str, str],
                        timeout_s: float, only: Collection[str] | None = None) -> tuple[tuple[str, str], ...]:
    """Wait until every node has a working session with every other: a recent handshake,
    and a ping over it answered (right after bring-up a session can have a handshake and
    still drop its first packets; a latency check then would see losses). Returns the
    pairs (sorted names) still not working after `timeout_s` (empty: all good).

    Each pair is probed from one side only, the node whose name sorts first: an answered
    echo proves both directions, and a handshake started from both sides at once crosses.
    Each round pings the pairs not yet working. A peer is never re-added to hurry its
    handshake: that drops the handshake under way, and WireGuard itself retries an
    unanswered one after REKEY_TIMEOUT (5 s), as long as the pings keep coming. With `only`,
    just the pairs with a node of `only`, probed from that node (from the first by name
    when both are)."""
    if only is None:
        lacking = {n.name: [p for p in nodes if p.name > n.name] for n in nodes}
    else:
        lacking = {n.name: [p for p in nodes if n.name in only and p.name != n.name
                            and (p.name not in only or p.name > n.name)] for n in nodes}

    def round_() -> bool:
        todo = [n for n in nodes if lacking[n.name]]

        def probe(access: NodeAccess) -> list[MeshNodeAccess]:
            node = next(n for n in todo if n.name == access.name)
            peers = lacking[node.name]
            seen = probe_peers(pool, node, [p.mesh_ip for p in peers])
            fresh = {k for k, ts in seen.handshakes.items() if ts and seen.now - ts <= RECENT_S}
            return [p for p in peers if keys[p.name] not in fresh or p.mesh_ip not in seen.answered]

        lacking.update(pool.map([n.access for n in todo], probe))
        return not any(lacking.values())

    with contextlib.suppress(DeadlineError):
        wait_until(round_, what="WireGuard sessions", timeout_s=timeout_s,
                   initial=0.1, maximum=2.0)
    pairs = {(min(n, p.name), max(n, p.name)) for n, peers in lacking.items() for p in peers}
    return tuple(sorted(pairs))


def current_peers(pool: SshPool, node: NodeAccess) -> frozenset[str] | None:
    """The public keys of the peers `node`'s wg0 has now, or None when wg0 is missing, down
    or without its address (a bring-up cut short)."""
    script = (f"if ip -o link show dev {mesh.INTERFACE} 2>/dev/null | grep -q '[<,]UP[,>]' && "
              f"ip -o addr show dev {mesh.INTERFACE} | grep -q 'inet '; "
              f"then wg show {mesh.INTERFACE} peers; else echo down; fi")
    out = pool.check(node, script, purpose="read wg0 peers").split()
    return None if out == ["down"] else frozenset(out)
