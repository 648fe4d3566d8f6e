#!/usr/bin/env bash
# Regenerates requirements/lock.txt, the exact versions and SHA-256 hashes that scripts/setup.sh
# installs with `pip install --require-hashes`. The one way to change the lock: run this after
# editing pyproject.toml's dependencies, its test extra or its [build-system] requires, review
# the diff, commit both files.
#
# What goes in: pyproject.toml's dependencies and test extra, its build-system requires
# (setup.sh builds the editable install with --no-build-isolation, from the lock), and pip
# itself. Resolved by uv for Python >= 3.11 on every platform (--universal: markers where a
# dependency differs), every file's hash listed. uv runs from a throw-away venv, at the version
# below (UV_VERSION=... scripts/lock.sh to use another).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=${UV_VERSION:-0.13.9}
PYTHON=${PYTHON:-python3}
LOCK=requirements/lock.txt

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$PYTHON" -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION"

mkdir -p "$(dirname "$LOCK")"
# the build requirements and pip, read from pyproject.toml, as a requirements file on stdin
"$PYTHON" - <<'EOF' |
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["build-system"]["requires"] + ["pip"]))
EOF
"$tools/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
  --extra test --custom-compile-command scripts/lock.sh --output-file "$LOCK" pyproject.toml -
echo "lock: wrote $LOCK ($(grep -c '^[a-zA-Z0-9]' "$LOCK") packages)"
