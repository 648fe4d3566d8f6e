"""What /proc says of a process: its start time (to tell a reused pid apart) and its uid."""

from __future__ import annotations

from pathlib import Path


def process_start(pid: int) -> str:
    """The start time of a process (field 22 of /proc/PID/stat), to tell a reused pid apart;
    "" when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def process_uid(pid: int) -> int | None:
    """The effective uid of a process (/proc/PID/status), None when there is no such process."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])
    return None
