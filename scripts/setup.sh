#!/usr/bin/env bash
# Installs what cast needs on a fresh Debian machine: the apt packages (wireguard-go and
# friends for the sandbox's hosts) and the Python environment in .venv. Safe to re-run.
# Python packages come only from requirements/lock.txt, every file checked against its SHA-256
# (--require-hashes); cast itself is then installed editable with no dependencies, built with
# the locked setuptools and wheel (--no-build-isolation). To change a dependency: edit
# pyproject.toml, run scripts/lock.sh, commit both.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-pip iproute2 iputils-ping openssh-server openssh-client
              wireguard-go wireguard-tools procps cloud-init gnupg nftables
              qemu-system-x86 qemu-utils mmdebstrap genisoimage)  # the last line: VM hosts, tests/boot

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
lock=requirements/lock.txt
stamp=.venv/.cast-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  echo "setup: installing the Python environment in .venv from $lock (log: .venv/pip-install.log)"
  if ! { .venv/bin/pip install --require-hashes -r requirements/lock.txt &&
         .venv/bin/pip install --no-deps --no-build-isolation -e .; } > .venv/pip-install.log 2>&1; then
    tail -n 30 .venv/pip-install.log >&2
    echo "setup: pip install failed; the whole log is in .venv/pip-install.log" >&2
    exit 1
  fi
  touch "$stamp"
fi
# Azurite (Microsoft's Azure Storage emulator, from npm; needs Node.js 18+): the state tests on Azure
# Blob run against it, and skip (saying why) where there is no npm
if command -v npm >/dev/null && [ ! -x .venv/azurite/node_modules/.bin/azurite-blob ]; then
  echo "setup: installing Azurite into .venv/azurite (npm)"
  npm install --prefix .venv/azurite --no-audit --no-fund --silent azurite@3.35.0 >/dev/null
fi
