#!/usr/bin/env bash
# The test command: sets everything up, then ruff and mypy, then the install check (the wheel in a
# fresh venv runs the sandbox lifecycle: scripts/install_check.sh), then pytest.
# Tests that need root and network namespaces skip (saying why) when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check provisioner tests
echo "== mypy"
.venv/bin/mypy provisioner
scripts/install_check.sh
echo "== pytest"
exec .venv/bin/pytest -q -rs "$@"
