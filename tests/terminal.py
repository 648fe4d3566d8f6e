"""A real pseudo-terminal for tests: run a command on one of a given size and read back
what a user would see (every drawn line, and the final screen)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

ROOT = os.path.dirname(os.path.dirname(__file__))
CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def clean_env(**extra):
    """The environment without anything that tells rich how wide or how able the terminal is."""
    drop = ("COLUMNS", "LINES", "TERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **extra}


def run_in_pty(args, columns=100, rows=30, env=None, timeout=60.0, stdout=None):
    """Run `args` with stdin, stderr and stdout (unless `stdout`, a file, is given) on a new
    pseudo-terminal of that size, with `env` on top of clean_env(); return (exit code,
    everything it wrote to the terminal). Kills it after `timeout` seconds."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=stdout or slave, stderr=slave, cwd=ROOT,
                            env=clean_env(TERM="xterm-256color", **(env or {})), close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([master], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
    return proc.wait(timeout=10), out.decode(errors="replace")


def screen(raw):
    """What a terminal shows after `raw`: a small emulator for what rich's live view sends
    (text, CR, LF, cursor up, erase line; colours and cursor visibility ignored)."""
    lines, row, col = [""], 0, 0
    pos = 0
    for match in [*CSI.finditer(raw), None]:
        end = match.start() if match else len(raw)
        for ch in raw[pos:end]:
            if ch == "\r":
                col = 0
            elif ch == "\n":
                row += 1
                lines.extend([""] * (row + 1 - len(lines)))
            else:
                line = lines[row].ljust(col)
                lines[row] = line[:col] + ch + line[col + 1:]
                col += 1
        if match is None:
            break
        pos = match.end()
        arg, op = match.groups()
        if op == "A":
            row = max(0, row - int(arg or 1))
        elif op == "K":
            lines[row] = ""
    return [line.rstrip() for line in lines if line.strip()]


def drawn_lines(raw):
    """Every line any frame drew, colours and cursor moves removed."""
    return [line.strip() for line in re.split(r"[\r\n]+", CSI.sub("", raw)) if line.strip()]
