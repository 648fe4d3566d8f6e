#!/usr/bin/env python3
"""The long schemathesis run against the Azure emulator (the test suite runs a bounded one).

    .venv/bin/python scripts/schemathesis_azure.py [--examples 100] [--deadline-s 600] [--specs DIR]

On a fresh emulator with a small world of resources it checks, with schemathesis and the Azure
REST API specifications (Swagger 2.0), every operation the emulator serves: first each read,
update and VM action on the world's resources, then `--examples` generated requests per
operation. Every answer must have a status code, content type and body the specification
declares, and no answer may be a server error. Prints the failures and the answers by status;
exits 1 when there is a failure. Needs the test extra (schemathesis).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.sandbox.azure_emulator import AzureEmulator  # noqa: E402
from provisioner.sandbox.azure_specs import default_specs_dir, specs_missing_reason  # noqa: E402
from tests.clouds.azure import conformance  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="generated requests per operation")
    parser.add_argument("--deadline-s", type=float, default=600.0, help="stop starting operations after this")
    parser.add_argument("--specs", type=Path, default=None, help="the specifications folder")
    args = parser.parse_args()
    root = args.specs or default_specs_dir()
    missing = specs_missing_reason(root)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    started = time.monotonic()
    with AzureEmulator(lro_polls=0, token=conformance.TOKEN) as emu:
        assert isinstance(emu, AzureEmulator)
        conformance.build_world(emu)
        report = conformance.check_world(emu, root)
        report.merge(conformance.fuzz(emu, root, args.examples, args.deadline_s))
        refused = list(emu.errors)
    took = time.monotonic() - started
    print(f"{len(report.calls)} operations, {sum(report.calls.values())} requests in {took:.1f}s; "
          f"answers by status: {dict(sorted(report.statuses.items()))}")
    print(f"problems the emulator's own spec check reported (answered 400): {len(refused)}")
    for failure in report.failures:
        print(f"FAIL {failure}")
    print("conforms" if not report.failures else f"{len(report.failures)} failures")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
