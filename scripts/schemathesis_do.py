#!/usr/bin/env python3
"""A long schemathesis run against the DigitalOcean emulator with DigitalOcean's OpenAPI
description (CAST_DO_SPECS or ../shared/specs/digitalocean): every operation the emulator
serves, --examples generated requests each; prints each operation's first failure and exits 1
if there was any. Needs the test extra (schemathesis). The bounded run is
tests/clouds/digitalocean/test_do_schemathesis.py.

    .venv/bin/python scripts/schemathesis_do.py --examples 300
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.sandbox.do_emulator import DigitalOceanEmulator  # noqa: E402
from provisioner.sandbox.do_openapi import ENV, default_checker  # noqa: E402
from tests.clouds.digitalocean.schemathesis_run import run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="generated requests per operation")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    checker = default_checker()
    if checker is None:
        print(f"DigitalOcean's OpenAPI description is not on this machine (set {ENV})", file=sys.stderr)
        return 2
    emulator = DigitalOceanEmulator(boot_delay_s=0, droplet_limit=10**6).start()
    started = time.monotonic()
    try:
        outcome = run(emulator, checker.document, args.examples, seed=args.seed)
    finally:
        emulator.stop()
    for label, failure in outcome.failures.items():
        print(f"=== {label}\n{failure}\n")
    print(f"{len(outcome.operations)} operations, {outcome.examples} requests, {len(outcome.failures)} failing, "
          f"{len(emulator.errors)} refused by the emulator's own check, {time.monotonic() - started:.0f} s")
    return 1 if outcome.failures else 0


if __name__ == "__main__":
    sys.exit(main())
