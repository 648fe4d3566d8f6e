#!/usr/bin/env bash
# A whole sandbox lifecycle with real VMs (`cast sandbox up --hosts vm`), each step timed:
# create-cluster (aws:1:0, gcp:0:1), check-latency, add-node, check-latency, delete-cluster,
# sandbox down, then a check that no qemu is left. Root; run it under the root-test lock:
#   flock /tmp/cast-root-tests.lock scripts/vm-lifecycle.sh
# Offline, the nodes cannot reach pkgs.k8s.io: create-cluster and add-node end (exit 1) at the
# Kubernetes step, naming the boot marker's reason, after the VMs booted and joined the mesh.
# CAST_VM_IMAGE_CACHE reuses a guest image built before (else it is built: ~3 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
home=$(mktemp -d /tmp/cast-vm-lifecycle.XXXXXX)
export CAST_HOME="$home" COLUMNS=160
cast=(.venv/bin/cast)

step() {
  echo "### cast $*"
  local start=$SECONDS
  "${cast[@]}" "$@"
  echo "### exit $? after $((SECONDS - start)) s"
}

step sandbox up --hosts vm || exit 1
eval "$("${cast[@]}" sandbox env)"
step create-cluster vmdemo --region us-east --cloud aws:1:0 --cloud gcp:0:1
step check-latency vmdemo
step add-node vmdemo --cloud gcp
step check-latency vmdemo
step delete-cluster vmdemo --yes
step sandbox down
if pgrep -f "/run/cast-hosts/.*/vms/" >/dev/null; then echo "### a guest is left"; exit 1; fi
echo "### no guest left"
rm -rf "$home"
