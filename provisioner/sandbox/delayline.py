"""A delay line without netem: a userspace forwarder that holds every packet read from a TUN
device for a fixed time, then writes it back into the same device.

The router namespace steers the traffic between two groups into the TUN device with policy
routing (see hosts.py); packets written back arrive with `iif <tun>` and follow the main table
to their destination. Every packet crosses the line once per direction, so the forwarder holds
each one for half the round-trip time asked for.

Run as a process inside the router namespace (one per delay line, ended by its pid):
    python -m provisioner.sandbox.delayline --dev d1 --hold-ms 7.5
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import os
import select
import struct
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65535


def open_tun(name: str) -> int:
    """Attach to the (persistent) TUN device `name` of the current network namespace."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def forward(fd: int, hold_s: float) -> None:
    """Forever: read packets from `fd`, write each back `hold_s` seconds after it arrived.
    The hold is the same for every packet, so a FIFO keeps release times in order."""
    queue: collections.deque[tuple[float, bytes]] = collections.deque()
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        readable, _, _ = select.select([fd], [], [], timeout)
        if readable:
            while True:
                try:
                    packet = os.read(fd, MAX_PACKET)
                except BlockingIOError:
                    break
                queue.append((time.monotonic() + hold_s, packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            # A packet the kernel refuses (no route any more) is dropped, as a wire would.
            with contextlib.suppress(OSError):
                os.write(fd, queue.popleft()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description="hold packets read from a TUN device")
    parser.add_argument("--dev", required=True)
    parser.add_argument("--hold-ms", type=float, required=True)
    args = parser.parse_args()
    # A wire does not wait for a CPU: real-time priority makes the hold precise on a busy
    # machine. The loop blocks in select(), so it cannot starve anything else.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    forward(open_tun(args.dev), args.hold_ms / 1000.0)


if __name__ == "__main__":
    main()
