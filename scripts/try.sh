#!/usr/bin/env bash
# Try kprov on this machine, without hardware (root, Debian or Ubuntu): installs what the
# sandbox needs (Docker engine if none answers, debootstrap, the OpenSSH client), builds kprov,
# starts a sandbox of local hosts (kprov sandbox up: Docker containers running systemd and
# sshd, from an image built here from Debian packages), runs the main job with the tags that
# work without Internet access (kprov apply --tags prepare), then shows the plan of what
# remains. Run again, it reuses the sandbox. Remove it with: kprov sandbox down
#   KPROV_SANDBOX_DIR (default kprov-sandbox), KPROV_SANDBOX_NODES (3), KPROV_SANDBOX_FLAVOUR (ubuntu)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/machine.sh

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v flock >/dev/null || need+=(util-linux)
machine_install "${need[@]}"
ensure_docker

# A debug build: quicker to build than --release, shares its build with scripts/test.sh, and
# fast enough for a few hosts.
machine_log "building kprov (cargo build --locked)"
cargo build --locked --bin kprov
kprov=./target/debug/kprov
dir=${KPROV_SANDBOX_DIR:-kprov-sandbox}
inv=$dir/inventory.yaml

if [ -f "$dir/sandbox.json" ] && [ -f "$inv" ]; then
  machine_log "a sandbox is already up in $dir; using it"
  "$kprov" sandbox status --dir "$dir"
else
  machine_log "starting the sandbox (the first node image takes some minutes to build)"
  "$kprov" sandbox up --dir "$dir" --nodes "${KPROV_SANDBOX_NODES:-3}" --flavour "${KPROV_SANDBOX_FLAVOUR:-ubuntu}"
fi

machine_log "kprov apply $inv --tags prepare (host preparation: works without Internet access)"
"$kprov" apply "$inv" --tags prepare --no-progress

machine_log "kprov plan $inv: what remains (the package repositories, kubeadm and the CNI need Internet access or mirrors:)"
rc=0
"$kprov" plan "$inv" || rc=$?
# plan: 0 nothing to do, 2 changes pending; 1 is an error.
[ "$rc" -ne 1 ] || exit 1
machine_log "done; the whole cluster: $kprov apply $inv (needs the Kubernetes and Docker repositories); remove the sandbox: $kprov sandbox down --dir $dir"
