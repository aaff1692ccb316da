#!/usr/bin/env bash
# Builds (once, cached by a hash of this directory) the local apt repository that stands in
# for pkgs.k8s.io and download.docker.com in the end-to-end tests, and prints its directory.
#
#   core:/stable:/v1.34/deb/  and  v1.33   flat repos: kubeadm, kubelet, kubectl (test doubles)
#   linux/debian/dists/bookworm/stable/    containerd.io = Debian's real containerd + runc,
#                                           kprov-fault-slow (preinst sleeps 12 s; tests/faults.rs)
#   linux/debian/dists/trixie/stable/      the same packages, for the Raspberry Pi OS trixie flavour
#   linux/ubuntu/dists/noble/stable/       the same packages, for the Ubuntu flavour
#   manifests/                              small CNI manifests with the real DaemonSet names,
#                                           upstream/kube-flannel.yml (the real, pinned manifest)
#                                           and tampered/kube-flannel.yml (one byte changed)
#
# Signed with a test key made here (never committed); Release.key and linux/*/gpg hold it, and
# key.fingerprint its fingerprint, which the tests pin through the inventory's mirror settings.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KPROV_TEST_CACHE:-/var/cache/kprov-test}
mkdir -p "$cache"
exec 8>"$cache/repo.lock"
flock 8

# The CNI projects' real manifests (test data beside the repository, as CI lays it out).
upstream=${KPROV_UPSTREAM:-$here/../../../shared/upstream}
[ -d "$upstream/cni" ] || upstream=/work/shared/upstream
if [ ! -f "$upstream/cni/kube-flannel.yml" ]; then echo "build-repo.sh: no upstream CNI manifests in $upstream/cni (set KPROV_UPSTREAM)" >&2; exit 1; fi
hash=$(cat "$here"/kube_double.py "$here"/../../src/kube_fields.json "$here"/kubelet.service "$here"/10-kubeadm.conf "$here"/build-repo.sh "$here"/manifests/* "$upstream/cni/kube-flannel.yml" | sha256sum | cut -c1-12)
out="$cache/apt-repo-$hash"
if [ -f "$out/.done" ]; then echo "$out"; exit 0; fi
rm -rf "$out"; mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

export GNUPGHOME="$cache/gnupg"
if [ ! -d "$GNUPGHOME" ]; then
  mkdir -m 0700 "$GNUPGHOME"
  gpg --batch --quiet --pinentry-mode loopback --passphrase '' --quick-gen-key 'kprov test repository <repo@kprov.invalid>' ed25519 sign never
fi
gpg --batch --armor --export > "$work/key.asc"
gpg --batch --with-colons --list-keys | awk -F: '$1 == "pub" { p = 1; next } $1 == "fpr" && p { print $10; p = 0 }' > "$work/key.fingerprint"
[ "$(wc -l < "$work/key.fingerprint")" = 1 ] || { echo "build-repo.sh: expected one test key in $GNUPGHOME" >&2; exit 1; }

# --- kubeadm, kubelet, kubectl doubles
build_k8s() { # tool version arch dest
  local tool=$1 ver=$2 arch=$3 dest=$4 d="$work/pkg-$1-$2-$3"
  mkdir -p "$d/DEBIAN" "$d/usr/bin"
  sed "s/@VERSION@/v$ver/" "$here/kube_double.py" > "$d/usr/bin/$tool"
  chmod 0755 "$d/usr/bin/$tool"
  # The field table of kubeadm's, the kubelet's and kube-proxy's config types
  # (scripts/kube-fields.py), read by the kubeadm double's strict --config check.
  [ "$tool" != kubeadm ] || install -D -m 0644 "$here/../../src/kube_fields.json" "$d/usr/share/kube-double/kube-fields.json"
  local extra=""
  if [ "$tool" = kubelet ]; then
    install -D -m 0644 "$here/kubelet.service" "$d/lib/systemd/system/kubelet.service"
    install -D -m 0644 "$here/10-kubeadm.conf" "$d/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
    extra="Depends: iptables, iproute2, python3"
  else
    extra="Depends: python3"
  fi
  cat > "$d/DEBIAN/control" <<CTL
Package: $tool
Version: $ver-1.1
Architecture: $arch
Maintainer: kprov tests <repo@kprov.invalid>
$extra
Section: admin
Priority: optional
Description: $tool test double for kprov's end-to-end tests
CTL
  dpkg-deb --root-owner-group -Zgzip -b "$d" "$dest/${tool}_$ver-1.1_$arch.deb" >/dev/null
}

# --- containerd.io from Debian's containerd and runc
fetch_debian() { # arch -> debs in $work/debs-$arch
  local arch=$1 lists="$cache/apt-lists-$arch"
  mkdir -p "$lists/partial" "$work/debs-$arch" "$cache/debs-$arch"
  local opts=(-o "Dir::State::Lists=$lists" -o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o "Dir::Cache::archives=$cache/debs-$arch" -o Debug::NoLocking=1)
  if ! ls "$cache/debs-$arch"/containerd_*.deb >/dev/null 2>&1 || ! ls "$cache/debs-$arch"/runc_*.deb >/dev/null 2>&1; then
    apt-get "${opts[@]}" -qq update >/dev/null
    (cd "$cache/debs-$arch" && apt-get "${opts[@]}" -qq download "containerd:$arch" "runc:$arch" >/dev/null)
  fi
  cp "$cache/debs-$arch"/containerd_*.deb "$cache/debs-$arch"/runc_*.deb "$work/debs-$arch/"
}

build_containerd_io() { # arch dest
  local arch=$1 dest=$2 d="$work/containerd.io-$arch"
  fetch_debian "$arch"
  mkdir -p "$d/DEBIAN"
  for deb in "$work/debs-$arch"/*.deb; do dpkg-deb -x "$deb" "$d"; done
  rm -rf "$d/usr/share/doc" "$d/usr/share/man" "$d/usr/share/lintian"
  # Docker's package ships a config that disables CRI: what operators meet and kprov replaces.
  install -D -m 0644 /dev/stdin "$d/etc/containerd/config.toml" <<'CFG'
#   Copyright 2018-2022 Docker Inc.
disabled_plugins = ["cri"]
CFG
  echo /etc/containerd/config.toml > "$d/DEBIAN/conffiles"
  cat > "$d/DEBIAN/control" <<CTL
Package: containerd.io
Version: 1.6.20-1
Architecture: $arch
Maintainer: kprov tests <repo@kprov.invalid>
Depends: libc6, libseccomp2
Provides: containerd, runc
Conflicts: containerd, runc
Replaces: containerd, runc
Section: admin
Priority: optional
Description: containerd.io stand-in: Debian's real containerd and runc, repackaged for kprov's tests
CTL
  cat > "$d/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  systemctl enable containerd.service >/dev/null 2>&1 || true
  systemctl start containerd.service >/dev/null 2>&1 || true
fi
SH
  chmod 0755 "$d/DEBIAN/postinst"
  dpkg-deb --root-owner-group -Zgzip -b "$d" "$dest/containerd.io_1.6.20-1_$arch.deb" >/dev/null
}

release() { # dir, then header lines on stdin; files listed relative to dir
  local dir=$1; shift
  { cat; echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')";
    for sum in MD5Sum:md5sum SHA256:sha256sum; do
      echo "${sum%%:*}:"
      for f in "$@"; do printf ' %s %s %s\n' "$(${sum##*:} "$dir/$f" | cut -d' ' -f1)" "$(stat -c %s "$dir/$f")" "$f"; done
    done; } > "$dir/Release"
  gpg --batch --yes --pinentry-mode loopback --passphrase '' --clearsign -o "$dir/InRelease" "$dir/Release"
  gpg --batch --yes --pinentry-mode loopback --passphrase '' -abs -o "$dir/Release.gpg" "$dir/Release"
}

for minor in 1.34:1.34.2 1.33:1.33.6; do
  m=${minor%%:*}; ver=${minor##*:}
  dir="$out/core:/stable:/v$m/deb"
  mkdir -p "$dir"
  for arch in amd64 arm64; do
    for tool in kubeadm kubelet kubectl; do build_k8s "$tool" "$ver" "$arch" "$dir"; done
  done
  (cd "$dir" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null > Packages && gzip -9kf Packages)
  printf 'Origin: kprov-tests\nLabel: kubernetes test doubles\nArchitectures: amd64 arm64\n' | release "$dir" Packages Packages.gz
  cp "$work/key.asc" "$dir/Release.key"
done

# --- kprov-fault-slow: a package whose install has a window a fault can land in (tests/faults.rs):
# its preinst prints a marker and sleeps 12 s (the tests watch the node's process list for it),
# and it ships 2 MiB, so dpkg's unpack takes a moment too.
build_fault_slow() { # arch dest
  local arch=$1 dest=$2 d="$work/kprov-fault-slow-$arch"
  mkdir -p "$d/DEBIAN" "$d/usr/share/kprov-fault-slow"
  head -c 2097152 /dev/zero | tr '\0' 'k' > "$d/usr/share/kprov-fault-slow/payload"
  cat > "$d/DEBIAN/control" <<CTL
Package: kprov-fault-slow
Version: 1.0-1
Architecture: $arch
Maintainer: kprov tests <repo@kprov.invalid>
Section: admin
Priority: optional
Description: a slow package for kprov's fault tests (its preinst sleeps 12 s)
CTL
  cat > "$d/DEBIAN/preinst" <<'SH'
#!/bin/sh
set -e
echo "kprov-fault-slow preinst $1"
sleep 12
SH
  chmod 0755 "$d/DEBIAN/preinst"
  dpkg-deb --root-owner-group -Zgzip -b "$d" "$dest/kprov-fault-slow_1.0-1_$arch.deb" >/dev/null
}

mkdir -p "$work/ci"
for arch in amd64 arm64; do build_containerd_io "$arch" "$work/ci"; build_fault_slow "$arch" "$work/ci"; done
for distro in debian:bookworm debian:trixie ubuntu:noble; do
  name=${distro%%:*}; suite=${distro##*:}
  base="$out/linux/$name"
  mkdir -p "$base/pool/stable"
  cp "$work/ci"/*.deb "$base/pool/stable/"
  files=()
  for arch in amd64 arm64; do
    bin="dists/$suite/stable/binary-$arch"
    mkdir -p "$base/$bin"
    (cd "$base" && dpkg-scanpackages --arch "$arch" --multiversion pool/stable /dev/null 2>/dev/null > "$bin/Packages" && gzip -9kf "$bin/Packages")
    files+=("stable/binary-$arch/Packages" "stable/binary-$arch/Packages.gz")
  done
  printf 'Origin: kprov-tests\nLabel: docker test repository\nSuite: %s\nCodename: %s\nArchitectures: amd64 arm64\nComponents: stable\n' "$suite" "$suite" \
    | release "$base/dists/$suite" "${files[@]}"
  cp "$work/key.asc" "$base/gpg"
done

cp -r "$here/manifests" "$out/manifests"
mkdir -p "$out/manifests/upstream" "$out/manifests/tampered"
cp "$upstream/cni/kube-flannel.yml" "$out/manifests/upstream/kube-flannel.yml"
# One byte changed (the 200th): a mirror or a release asset that is not what was pinned.
f="$out/manifests/upstream/kube-flannel.yml"
{ head -c 199 "$f"; printf 'X'; tail -c +201 "$f"; } > "$out/manifests/tampered/kube-flannel.yml"
cp "$work/key.fingerprint" "$out/key.fingerprint"
touch "$out/.done"
echo "$out"
