"""How long `cast --help` takes (it imports no cloud SDK, so it should be well under 0.5 s).

Usage: .venv/bin/python scripts/bench_help.py [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

CAST = Path(sys.executable).parent / "cast"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    subprocess.run([str(CAST), "--help"], capture_output=True, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(CAST), "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"cast --help over {runs} runs: median {statistics.median(times) * 1000:.0f} ms, "
          f"min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
