#!/usr/bin/env bash
# Pin a CNI manifest version: download it (or read a local copy), compute its SHA-256 and
# rewrite that CNI's line in src/engine/pins.rs with the new version, URL and digest, so a bump
# is one reviewed commit with the new digest in it. Review the manifest itself before you commit:
# the digest only says that every host applies exactly the file you reviewed.
#
#   scripts/pin-cni.sh NAME VERSION [FILE]
#
# NAME is calico, canal, flannel, kube-router, weave or cilium (the Helm chart); FILE is a local
# copy of the release file (for machines without internet, or to pin what you already reviewed).
# PINS=path overrides the file rewritten (tests use a copy).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pins=${PINS:-$here/src/engine/pins.rs}
name=${1:?usage: pin-cni.sh NAME VERSION [FILE]}
version=${2:?usage: pin-cni.sh NAME VERSION [FILE]}
file=${3:-}

case "$version" in *[!A-Za-z0-9.+-]*|'') echo "pin-cni.sh: bad version '$version'" >&2; exit 2;; esac
case "$name" in
  calico)      url="https://raw.githubusercontent.com/projectcalico/calico/$version/manifests/calico.yaml" ;;
  canal)       url="https://raw.githubusercontent.com/projectcalico/calico/$version/manifests/canal.yaml" ;;
  flannel)     url="https://raw.githubusercontent.com/flannel-io/flannel/$version/Documentation/kube-flannel.yml" ;;
  kube-router) url="https://raw.githubusercontent.com/cloudnativelabs/kube-router/$version/daemonset/kubeadm-kuberouter.yaml" ;;
  weave)       url="https://github.com/weaveworks/weave/releases/download/$version/weave-daemonset-k8s.yaml" ;;
  cilium)      url="https://helm.cilium.io/cilium-$version.tgz" ;;
  *) echo "pin-cni.sh: unknown CNI '$name' (calico, canal, flannel, kube-router, weave, cilium)" >&2; exit 2 ;;
esac

grep -q "name: \"$name\", version:" "$pins" || { echo "pin-cni.sh: no line for $name in $pins" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [ -n "$file" ]; then
  cp "$file" "$work/download"
else
  curl -fsSL --retry 3 --connect-timeout 20 "$url" -o "$work/download"
fi
[ -s "$work/download" ] || { echo "pin-cni.sh: $name $version: the file is empty" >&2; exit 1; }
if [ "$name" = cilium ]; then
  tar -tzf "$work/download" cilium/Chart.yaml >/dev/null || { echo "pin-cni.sh: not a Cilium chart archive" >&2; exit 1; }
else
  grep -q '^kind: DaemonSet' "$work/download" || { echo "pin-cni.sh: $name $version: no DaemonSet in the file: not a CNI manifest" >&2; exit 1; }
fi
sha=$(sha256sum "$work/download" | cut -d' ' -f1)
old=$(grep "name: \"$name\", version:" "$pins")
new=$(printf '%s\n' "$old" | sed -E "s#version: \"[^\"]*\"#version: \"$version\"#; s#url: \"[^\"]*\"#url: \"$url\"#; s#sha256: \"[0-9a-f]{64}\"#sha256: \"$sha\"#")
awk -v old="$old" -v new="$new" '$0 == old { print new; next } { print }' "$pins" > "$work/pins.rs"
cat "$work/pins.rs" > "$pins"
echo "$name $version"
echo "  url    $url"
echo "  sha256 $sha"
echo "Rewrote $pins; review the manifest, update the source comment above CNIS, run the tests, commit."
