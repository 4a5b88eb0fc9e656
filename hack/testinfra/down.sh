#!/usr/bin/env bash
# Stop every server up.sh started, by the PIDs it recorded (no pkill, nothing else is touched).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/config.sh"
for f in "$TESTINFRA"/k8s-*/apiserver.pid; do stop_pidfile "$f"; done   # API servers started by tests
for f in k8s/kcm k8s/apiserver k8s/etcd registry/plain registry/basic registry/token registry/mtls registry/token-server git/lighttpd git/sshd; do
  stop_pidfile "$TESTINFRA/$f.pid"
done
exit 0
