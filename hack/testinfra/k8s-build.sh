#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager v1.20.2 from Debian bookworm's `kubernetes` source package
# with Debian's Go, nothing downloaded outside Debian's archive. The binaries are cached under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/tagpilot/kubernetes-v1.20.2/
# so only the first run on a machine pays the build (5-8 minutes on 2 cores, 2.4 GB of build tree, removed after).
set -euo pipefail
VERSION=v1.20.2
CACHE=${TAGPILOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tagpilot}
OUT=$CACHE/kubernetes-$VERSION
if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kube-controller-manager" ]; then
  echo "$OUT"; exit 0
fi
HERE=$(cd "$(dirname "$0")" && pwd)
# deb-src entries: the machine ships only "Types: deb"; copy them as deb-src.
if ! grep -rqs 'deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list; then
  sed -n '/^Types: deb$/,/^$/p' /etc/apt/sources.list.d/debian.sources | sed 's/^Types: deb$/Types: deb-src/' \
    > /etc/apt/sources.list.d/debian-src.sources
  apt-get update -qq
fi
"$HERE/install-deps.sh" --build
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tagpilot-k8s-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
apt-get source -qq kubernetes/bookworm 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
cd kubernetes-*/
# k8s 1.20 vendors modern-go/reflect2 v1.0.1, which panics on the first CRD create when built with Go >= 1.18.
# Debian's reflect2 1.0.2 has the same API and the fix.
R=vendor/github.com/modern-go/reflect2
rm -f $R/*.go $R/*.s
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s $R/
env -u GOFLAGS GOPROXY=off CGO_ENABLED=0 make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2
mkdir -p "$OUT.tmp"
install -m 0755 _output/bin/kube-apiserver _output/bin/kube-controller-manager "$OUT.tmp/"
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
"$OUT/kube-apiserver" --version >&2
echo "$OUT"
