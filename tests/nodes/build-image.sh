#!/usr/bin/env bash
# Builds (or loads from the cache) the test-node image for one flavour and prints its tag.
#   tests/nodes/build-image.sh debian|ubuntu|rpi|rpi-trixie
# The tag is a hash of this directory's recipe and the test public key, so a changed recipe
# rebuilds and an unchanged one is reused: from the Docker daemon, else from a `docker save`
# in the cache directory (KPROV_TEST_CACHE, default /var/cache/kprov-test).
set -euo pipefail
flavour=${1:?usage: build-image.sh debian|ubuntu|rpi|rpi-trixie}
here=$(cd "$(dirname "$0")" && pwd)
cache=${KPROV_TEST_CACHE:-/var/cache/kprov-test}
mkdir -p "$cache"
exec 9>"$cache/build.lock"
flock 9

# The test key: generated once per machine, never committed.
key="$cache/id_ed25519"
if [ ! -f "$key" ]; then
  ssh-keygen -q -t ed25519 -N '' -C kprov-test -f "$key"
fi

# Each flavour: the architecture and the Debian suite its rootfs is bootstrapped from.
case "$flavour" in
  debian|ubuntu) arch=amd64; suite=bookworm ;;
  rpi) arch=arm64; suite=bookworm ;;
  rpi-trixie) arch=arm64; suite=trixie ;;
  *) echo "unknown flavour $flavour" >&2; exit 2 ;;
esac

# The suite is part of the hash only when it is not bookworm, so the bookworm flavours keep
# the tags (and cached images) they had before the suite became a parameter.
suite_tag=$arch; [ "$suite" = bookworm ] || suite_tag="$arch $suite"
recipe_hash=$( (cat "$here/Dockerfile" "$here/setup.sh" "$here/flavour-$flavour.sh" "$key.pub"; echo "$suite_tag") | sha256sum | cut -c1-12)
tag="kprov-node-$flavour:$recipe_hash"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"; exit 0
fi
if [ -f "$cache/$flavour-$recipe_hash.tar" ]; then
  docker load -q -i "$cache/$flavour-$recipe_hash.tar" >/dev/null
  echo "$tag"; exit 0
fi

mirror=${KPROV_DEBIAN_MIRROR:-http://deb.debian.org/debian}
base="kprov-rootfs-$arch:$suite"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  rootfs_tar="$cache/rootfs-$arch-$suite.tar"
  if [ ! -f "$rootfs_tar" ]; then
    rootfs=$(mktemp -d /var/tmp/kprov-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    if [ "$arch" != "$(dpkg --print-architecture)" ]; then
      [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "qemu-aarch64 binfmt handler missing: run tests/nodes/qemu-user.sh" >&2; exit 1; }
    fi
    echo "debootstrap $arch $suite (one-off, a few minutes; 10-15 under emulation)..." >&2
    debootstrap --arch="$arch" --variant=minbase \
      --include=openssh-server,systemd,systemd-sysv,dbus,iproute2,procps,kmod,ca-certificates,gnupg,curl,sudo,python3,iptables,less \
      "$suite" "$rootfs" "$mirror" >"$cache/debootstrap-$arch-$suite.log" 2>&1 \
      || { tail -20 "$cache/debootstrap-$arch-$suite.log" >&2; exit 1; }
    tar -C "$rootfs" -c . > "$rootfs_tar.tmp"
    mv "$rootfs_tar.tmp" "$rootfs_tar"
    rm -rf "$rootfs"
    trap - EXIT
  fi
  docker import --platform "linux/$arch" "$rootfs_tar" "$base" >/dev/null
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here/Dockerfile" "$ctx/"
cat "$here/setup.sh" "$here/flavour-$flavour.sh" > "$ctx/setup.sh"
cp "$key.pub" "$ctx/authorized_keys"
docker build -q --build-arg BASE="$base" -t "$tag" "$ctx" >/dev/null
docker save -o "$cache/$flavour-$recipe_hash.tar.tmp" "$tag"
mv "$cache/$flavour-$recipe_hash.tar.tmp" "$cache/$flavour-$recipe_hash.tar"
echo "$tag"
