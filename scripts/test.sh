#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine of this kind (root): installs what the tests
# need (Docker engine if none answers, debootstrap, qemu-user 10 for the arm64 nodes, the
# OpenSSH client, dpkg-dev and gpg for the local apt repository), checks formatting and clippy
# (warnings are errors), builds or loads the cached test-node images, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v ssh >/dev/null || need+=(openssh-client)
command -v gpg >/dev/null || need+=(gnupg)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || need+=(docker.io)
fi
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Starts the engine (installed above when absent); the same code path as scripts/try.sh.
. scripts/machine.sh
ensure_docker
# The arm64 nodes run under qemu-user 10 registered with binfmt_misc (tests/nodes/README.md, "Emulation").
bash tests/nodes/qemu-user.sh

log "style gates: cargo fmt --check, cargo clippy --all-targets -D warnings"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings

log "test-node images (built once, then cached)"
# rpi-trixie is not built here: no test runs it yet (tests/nodes/README.md, "Limits").
for flavour in debian ubuntu rpi; do
  bash tests/nodes/build-image.sh "$flavour" >/dev/null
done
if [ -x tests/doubles/build-repo.sh ]; then
  log "local apt repository with the Kubernetes test doubles"
  bash tests/doubles/build-repo.sh >/dev/null
fi

log "cargo test"
# Test binaries run one after another; inside one, tests share the node budget (tests/support).
cargo test --locked --all-targets -- --test-threads "${KPROV_TEST_THREADS:-3}"
