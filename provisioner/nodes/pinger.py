"""A pinger that runs ON a node (standard library only; sent over SSH to `python3 -`): ICMP
echo to many addresses from one process, so a node measures all its peers at once without
starting one `ping` per peer (with 50 nodes, 2450 ping processes cost more CPU than the
measurement itself). Every cloud image that runs cloud-init has python3.

    python3 - COUNT INTERVAL_S WAIT_S START_AT ADDRESS... < pinger.py
prints one JSON object: {address: [sent, received, min_ms, avg_ms, max_ms]} (None when no
reply). Round trips use the kernel's receive timestamp, so a busy node adds no delay to them.
Every node first sends one unmeasured echo to each peer whose session may need a handshake
(it starts the handshake), then all start measuring at START_AT (unix time), so that no node
measures while others are still starting their pinger: a start-up burst would count as
latency.
START_AT 0: no warm-up, measuring at once (a probe for an answer, not a latency).
"""

import contextlib
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time

SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33  # root may exceed net.core.rmem_max
SOL_RAW, ICMP_FILTER = 255, 1  # a raw ICMP socket's filter: a bit per ICMP type to drop
RECEIVE_BUFFER = 8 << 20
ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo(ident: int, seq: int) -> bytes:
    payload = b"cast-latency-check".ljust(40, b".")
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, seq) + payload


def receive(sock: socket.socket, ident: int) -> tuple:
    """One packet from the raw socket: (source, sequence, kernel receive time in ns); source
    is None for any ICMP packet but an echo reply to this pinger (the socket sees them all:
    other nodes' echo requests too)."""
    data, ancillary, _, (source, _) = sock.recvmsg(2048, 64)
    received = time.time_ns()
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanos = struct.unpack("qq", value[:16])
            received = seconds * 1_000_000_000 + nanos
    icmp = data[(data[0] & 0x0F) * 4:]
    kind, _, _, reply_id, seq = struct.unpack("!BBHHH", icmp[:8])
    if kind != ECHO_REPLY or reply_id != ident:
        return None, 0, received
    return source, seq, received


def measure(targets: list[str], count: int, interval_s: float, wait_s: float) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    # A raw socket gets every ICMP packet for the node, the peers' echo requests too: with
    # 49 peers pinging at once the default buffer (~200 KB) overflows and replies are lost.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    # Only echo replies reach this process: the kernel drops the rest (the peers' own echo
    # requests: as many as the replies, each a wake-up and a read here).
    with contextlib.suppress(OSError):
        sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", ~(1 << ECHO_REPLY) & 0xFFFFFFFF))
    ident = os.getpid() & 0xFFFF
    sent_at: dict = {}
    rtts: dict = {t: [] for t in targets}
    complete = 0  # targets with all their replies: counted, not recounted per packet (n peers, n packets)
    start = time.monotonic()
    next_seq = 0
    deadline = start + (count - 1) * interval_s + wait_s
    # A reply counts when the node's kernel got it by the deadline, even if this process, on
    # a busy node, reads it later: the replies already queued are read before it stops.
    deadline_ns = time.time_ns() + int(((count - 1) * interval_s + wait_s) * 1e9)
    while True:
        now = time.monotonic()
        if next_seq < count and now >= start + next_seq * interval_s:
            for target in targets:
                sent_at[(target, next_seq)] = time.time_ns()
                with contextlib.suppress(OSError):  # no route: counted as lost
                    sock.sendto(echo(ident, next_seq), (target, 0))
            next_seq += 1
            continue
        done = next_seq == count and complete == len(rtts)
        late = now >= deadline
        if done:
            break
        wake = start + next_seq * interval_s if next_seq < count else deadline
        if not select.select([sock], [], [], 0.0 if late else max(0.0, wake - now))[0]:
            if late:
                break
            continue
        source, seq, received = receive(sock, ident)
        if received > deadline_ns:
            if late:
                break  # every packet queued by the deadline is read
            continue
        if source is None:
            continue
        sent = sent_at.pop((source, seq), None)
        if sent is not None:
            rtts[source].append((received - sent) / 1e6)
            complete += len(rtts[source]) == count
    return {t: [count, len(r), min(r, default=None), sum(r) / len(r) if r else None,
                max(r, default=None)] for t, r in rtts.items()}


MAX_START_WAIT_S = 10.0  # a node whose clock is far off starts at once rather than hang


REKEY_AFTER_S = 120  # WireGuard starts a new handshake on a session older than this


def due(targets: list) -> list:
    """The targets whose WireGuard session may need a handshake first: those without one
    younger than REKEY_AFTER_S (all of them if `wg` cannot tell). A live mesh's keepalives
    keep every session young, so a check on it warms up nothing. Read from `wg show`'s
    handshakes and allowed IPs, never its dump (which holds the interface's private key)."""
    def show(what: str) -> list:
        out = subprocess.run(["wg", "show", "all", what], capture_output=True, text=True, timeout=10, check=True)
        return [line.split("\t") for line in out.stdout.splitlines()]

    try:
        handshakes, allowed = show("latest-handshakes"), show("allowed-ips")
    except (OSError, subprocess.SubprocessError):
        return targets
    now = time.time()
    young = {f[1] for f in handshakes  # interface, peer key, handshake time
             if len(f) == 3 and f[2].isdigit() and 0 < now - int(f[2]) < REKEY_AFTER_S}
    fresh: set = {ip.split("/")[0] for f in allowed  # interface, peer key, addresses
                  if len(f) == 3 and f[1] in young for ip in f[2].split()}
    return [t for t in targets if t not in fresh]


def warm_up(targets: list) -> None:
    """One unmeasured echo to every target (another ident, so its replies are ignored): it
    starts any WireGuard handshake that is due, which the measured echoes must not wait for."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = (os.getpid() & 0xFFFF) ^ 0x8000
    for target in targets:
        with contextlib.suppress(OSError):
            sock.sendto(echo(ident, 0), (target, 0))
    sock.close()


def wait_for_start(start_at: float) -> None:
    """Block until the common start time (a barrier across nodes, not a poll)."""
    delay = start_at - time.time()
    if 0 < delay <= MAX_START_WAIT_S:
        time.sleep(delay)


if __name__ == "__main__":
    count, interval, wait, start_at = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    if start_at:  # handshakes done before a common start; at once (a probe), nothing to wait for
        warm_up(due(sys.argv[5:]))
        wait_for_start(start_at)
    print(json.dumps(measure(sys.argv[5:], count, interval, wait)))
