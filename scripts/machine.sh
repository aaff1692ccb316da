# Machine set-up shared by scripts/test.sh and scripts/try.sh (sourced, not run): a Debian or
# Ubuntu machine, as root.
#   machine_install PKG...   apt-get install the packages given (nothing when none)
#   ensure_docker            a Docker engine that answers: installs docker.io when there is no
#                            engine at all, starts it (systemd, SysV, or dockerd in the background)

machine_log() { printf '==> %s\n' "$*" >&2; }

machine_install() {
  [ $# -gt 0 ] || return 0
  machine_log "installing $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_docker() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || machine_install docker.io
  machine_log "starting the Docker engine"
  (systemctl start docker 2>/dev/null || service docker start 2>/dev/null || (nohup dockerd >/var/log/kprov-dockerd.log 2>&1 &)) || true
  for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "no Docker engine answers, and starting one failed (see /var/log/kprov-dockerd.log)" >&2; exit 1; }
}
