#!/usr/bin/env bash
# Try cast: set up, then show the region map and the plan of a four-cloud cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
set -x
cast regions
cast create-cluster demo --region us-east \
  --cloud aws:1:1 --cloud gcp:0:1 --cloud azure:0:1 --cloud digitalocean:0:1 --dry-run
