#!/usr/bin/env bash
# The benchmark in one command (see BENCHMARKS.md):  bash bench/run.sh [bench.py options]
# Builds kprov (release), makes the Python venv with ansible-core and pyinfra if absent
# (BENCH_VENV, default /work/bench-venv; not committed), then runs bench/bench.py, which
# starts labelled test nodes, measures, removes everything it started and prints the tables.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
venv=${BENCH_VENV:-/work/bench-venv}
(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release --locked -q)
if [ ! -x "$venv/bin/ansible-playbook" ] || [ ! -x "$venv/bin/pyinfra" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q ansible-core pyinfra
fi
exec python3 "$root/bench/bench.py" --kprov "$target/release/kprov" --venv "$venv" "$@"
