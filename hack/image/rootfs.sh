#!/usr/bin/env bash
# Assembles a container image's root filesystem into OUT: the binaries (tagpilot, image-reflector-controller,
# image-automation-controller; with --only NAME, that one: the Dockerfile's image per controller) in /usr/local/bin, the shared libraries they load
# (as ldd lists them: glibc, libgcc_s, OpenSSL, zlib) at their paths, CA certificates, /etc/passwd and
# /etc/group with the non-root user 65534, and /data and /tmp for the emptyDir volumes. The Dockerfile's build
# stage runs this script, so `make image-rootfs` builds on this machine what the image holds.
#   rootfs.sh OUT [--profile release|debug] [--no-build] [--link] [--only BINARY]
# --link hard-links the binaries instead of copying them (tests: debug binaries are large).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:?usage: rootfs.sh OUT [--profile release|debug] [--no-build] [--link] [--only BINARY]}; shift
PROFILE=release; BUILD=1; LINK=0; ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --link) LINK=1; shift ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "rootfs.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
BINS=(tagpilot image-reflector-controller image-automation-controller)
if [ -n "$ONLY" ]; then
  case " ${BINS[*]} " in *" $ONLY "*) BINS=("$ONLY") ;; *) echo "rootfs.sh: --only $ONLY: not one of ${BINS[*]}" >&2; exit 2 ;; esac
fi
if [ "$BUILD" = 1 ]; then
  (cd "$ROOT" && cargo build --locked --profile "$PROFILE" -p tagpilot -p image-reflector-controller \
    -p image-automation-controller --bins)
fi
DIR=$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
rm -rf "$OUT"
mkdir -p "$OUT/usr/local/bin" "$OUT/etc/ssl/certs" "$OUT/data" "$OUT/tmp"
for b in "${BINS[@]}"; do
  if [ "$LINK" = 1 ]; then
    ln "$DIR/$b" "$OUT/usr/local/bin/$b" 2>/dev/null || install -m 0755 "$DIR/$b" "$OUT/usr/local/bin/$b"
  else
    install -m 0755 "$DIR/$b" "$OUT/usr/local/bin/$b"
  fi
done
# The libraries the dynamic loader resolves (and the loader itself), copied to the same paths.
ldd "${BINS[@]/#/$OUT/usr/local/bin/}" | awk '/=> \// {print $3} /^[[:space:]]*\/[^ ]*ld-linux/ {print $1}' | sort -u |
  while read -r lib; do
    mkdir -p "$OUT$(dirname "$lib")"
    cp -L "$lib" "$OUT$lib"
  done
cp -L /etc/ssl/certs/ca-certificates.crt "$OUT/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' > "$OUT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$OUT/etc/group"
chmod 1777 "$OUT/tmp"
if [ "$(id -u)" = 0 ]; then chown 65534:65534 "$OUT/data"; else chmod 0777 "$OUT/data"; fi
echo "rootfs: $OUT ($(du -sh "$OUT" | cut -f1))"
