#!/usr/bin/env bash
# The test command: sets everything up, then ruff and mypy over provisioner/, then pytest.
# Tests that need root and network namespaces skip (saying why) when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== ruff"
.venv/bin/ruff check provisioner tests
echo "== mypy"
.venv/bin/mypy provisioner
echo "== pytest"
exec .venv/bin/pytest -q -rs "$@"
