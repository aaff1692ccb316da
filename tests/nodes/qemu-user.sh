#!/usr/bin/env bash
# qemu-user for the arm64 test nodes (the Raspberry Pi flavours), on a Debian 12 test machine
# (root). Called by scripts/test.sh; safe to run again (it changes nothing when all is in place).
#
# Why not Debian 12's own qemu-user-static (7.2): trixie's systemd 257 spawns every service with
# clone(CLONE_PIDFD), which qemu 7.2 refuses (EINVAL), so no unit of the rpi-trixie node starts.
# qemu 10.0.2 (bookworm-backports) emulates it, but only registered with the O flag: systemd
# execs its executor as /proc/self/fd/N of a close-on-exec descriptor, which an interpreter
# started without O (update-binfmts' PF registration) cannot open. So:
#   1. qemu-user 10.0.2 from bookworm-backports (the source is added, from the Debian mirror
#      this machine already uses, if apt does not know it);
#   2. qemu-aarch64 registered with binfmt_misc with the flags below, and registered again only
#      when the entry, the interpreter binary or the boot changed (a registered F handler keeps
#      the binary it opened, so an upgraded qemu needs a new registration).
# tests/nodes/README.md ("Emulation") explains the flags.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }
want=10.0.2
# O: the kernel opens the binary and hands the interpreter its descriptor (systemd's executor).
# C: credentials from the binary, not from the interpreter: setuid sudo works on the nodes (C
#    implies O; both are written so the entry reads as what it means).
# P: argv[0] preserved.  F: the interpreter opened now, so it works inside the containers.
flags=OCPF
magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
interpreter=/usr/bin/qemu-aarch64
cache=${KPROV_TEST_CACHE:-/var/cache/kprov-test}
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

installed_version() {
  dpkg-query -W -f '${db:Status-Abbrev} ${Version}\n' qemu-user 2>/dev/null | awk '$1 == "ii" { print $2 }'
}

case "$(installed_version)" in
  1:"$want"*) ;;
  *)
    [ "$codename" = bookworm ] || { echo "qemu-user.sh knows Debian 12 (bookworm) test machines; this one is '$codename'" >&2; exit 1; }
    if ! apt-get indextargets --format '$(RELEASE)' | grep -qx bookworm-backports; then
      # The mirror this machine already uses for bookworm itself.
      mirror=$(apt-get indextargets --format '$(RELEASE) $(SITE)' | awk '$1 == "bookworm" { print $2; exit }')
      mirror=${mirror:-http://deb.debian.org/debian}
      log "adding bookworm-backports from $mirror (/etc/apt/sources.list.d/bookworm-backports.sources)"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" > /etc/apt/sources.list.d/bookworm-backports.sources
    fi
    log "installing qemu-user $want from bookworm-backports"
    apt-get update -qq
    version=$(apt-cache madison qemu-user | awk -F'|' '$2 ~ /^ *1:'"${want//./\\.}"'/ && $3 ~ /bookworm-backports/ { gsub(/ /, "", $2); print $2; exit }')
    [ -n "$version" ] || { echo "bookworm-backports has no qemu-user $want (apt-cache madison qemu-user)" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports \
      --no-install-recommends "qemu-user=$version" >/dev/null
    ;;
esac
[ -x "$interpreter" ] || { echo "$interpreter missing after installing qemu-user $want" >&2; exit 1; }

binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
  mount -t binfmt_misc binfmt_misc "$binfmt"
fi
entry=":qemu-aarch64:M::$magic:$mask:$interpreter:$flags"
# What this registration depends on: the entry, the binary, the boot (binfmt_misc is per boot).
stamp_want=$(printf '%s\n%s\n%s\n' "$entry" "$(sha256sum < "$interpreter")" "$(cat /proc/sys/kernel/random/boot_id)" | sha256sum | cut -c1-16)
stamp="$cache/qemu-aarch64.binfmt"
# The kernel shows the flags in its own order (P, O, C, F).
shown_flags=; for f in P O C F; do case $flags in *$f*) shown_flags+=$f ;; esac; done
registered_flags=$(sed -n 's/^flags: //p' "$binfmt/qemu-aarch64" 2>/dev/null || true)
registered_interpreter=$(sed -n 's/^interpreter //p' "$binfmt/qemu-aarch64" 2>/dev/null || true)
if [ "$registered_interpreter" = "$interpreter" ] && [ "$registered_flags" = "$shown_flags" ] \
  && grep -qx enabled "$binfmt/qemu-aarch64" && [ "$(cat "$stamp" 2>/dev/null)" = "$stamp_want" ]; then
  exit 0
fi
log "registering qemu-aarch64 ($interpreter, flags $flags) with binfmt_misc"
# Whatever registered it before (update-binfmts, systemd-binfmt, this script) is replaced.
if [ -e "$binfmt/qemu-aarch64" ]; then echo -1 > "$binfmt/qemu-aarch64"; fi
printf '%s' "$entry" > "$binfmt/register"
mkdir -p "$cache"
echo "$stamp_want" > "$stamp"
