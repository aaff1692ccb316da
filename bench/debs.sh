#!/usr/bin/env bash
# Builds (once, cached) a small flat apt repository standing in for deb.debian.org during the
# benchmark, so the nodes' network can be --internal (no traffic leaves the machine). It holds
# the few Debian packages the benchmarked work installs that the node image lacks:
# apt-transport-https (in the prerequisites of all three tools), and python3-apt with its two
# data packages (Ansible's apt module installs python3-apt by itself when missing).
# The packages are rebuilt from this machine's own installed copies (same Debian 12 versions
# as the nodes): files from `dpkg -L`, control fields from dpkg-query; no maintainer scripts.
# Prints the repository's directory.
set -euo pipefail
cache=${KPROV_TEST_CACHE:-/var/cache/kprov-test}
pkgs=(apt-transport-https python3-apt python-apt-common distro-info-data)
out="$cache/bench-debian-repo"
if [ -f "$out/.done" ]; then echo "$out"; exit 0; fi
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || { echo "bench/debs.sh: $p is not installed on this machine: apt-get install $p" >&2; exit 1; }
done
rm -rf "$out"; mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for p in "${pkgs[@]}"; do
  d="$work/$p"; mkdir -p "$d/DEBIAN"
  dpkg-query -L "$p" | while IFS= read -r f; do
    if [ -L "$f" ] || [ -f "$f" ]; then printf '%s\n' "${f#/}"; fi
  done | tar -C / -cf - --no-recursion -T - | tar -C "$d" -xf -
  dpkg-query -W -f='Package: ${Package}\nVersion: ${Version}\nArchitecture: ${Architecture}\nMaintainer: ${Maintainer}\nPre-Depends: ${Pre-Depends}\nDepends: ${Depends}\nBreaks: ${Breaks}\nReplaces: ${Replaces}\nProvides: ${Provides}\nMulti-Arch: ${Multi-Arch}\nSection: ${Section}\nPriority: ${Priority}\nDescription: ${Description}\n' "$p" \
    | grep -vE '^[A-Za-z-]+: *$' > "$d/DEBIAN/control"
  conf=$(dpkg-query -W -f='${Conffiles}\n' "$p" | awk 'NF{print $1}')
  [ -z "$conf" ] || printf '%s\n' $conf > "$d/DEBIAN/conffiles"
  dpkg-deb --root-owner-group -Zgzip -b "$d" "$out/" >/dev/null
done
(cd "$out" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null > Packages && gzip -9kf Packages)
touch "$out/.done"
echo "$out"
