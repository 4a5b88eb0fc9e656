#!/usr/bin/env bash
# Leader hand-over: how long after the leader's graceful stop (SIGTERM) its standby holds the Lease, with
# Flux's default timing (lease 35 s, renew deadline 30 s, retry period 5 s). Two image-reflector-controllers on
# the test API server, leader election on, watching nothing (a selector no object has); five hand-overs, each
# in a namespace of its own. The figure is the standby's "acquired leadership" minus the leader's "released
# leadership" (log timestamps). Flux's controllers (client-go) retry every 5 s with up to 20 % jitter: a
# released Lease is taken within 6 s.
#   hack/bench-compare/leader.sh [OUT]
. "$(dirname "$0")/common.sh"
export KUBECONFIG
BIN=$ROOT/target/release/image-reflector-controller
(cd "$ROOT" && cargo build -q --release -p image-reflector-controller)
gone() { while kill -0 "$1" 2>/dev/null; do sleep 0.05; done; }
ts() { grep -m1 "$2" "$1" | sed 's/.*"timestamp":"\([^"]*\)".*/\1/'; }
wait_log() { for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no '$2' in $1" >&2; exit 1; }
start() { # start NS LOG
  RUNTIME_NAMESPACE=$1 "$BIN" --enable-leader-election --watch-label-selector=tagpilot.bench/none=none \
    --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 --storage-path "$OUT/leader-data-$$" > "$2" 2>&1 &
  echo $!
}
results=()
for i in 1 2 3 4 5; do
  ns=bench-leader-$$-$i
  kubectl create namespace "$ns" >/dev/null
  a=$(start "$ns" "$OUT/leader-$i-a.log"); wait_log "$OUT/leader-$i-a.log" "acquired leadership"
  b=$(start "$ns" "$OUT/leader-$i-b.log"); wait_log "$OUT/leader-$i-b.log" "waiting for leadership"
  sleep 2
  kill -TERM "$a"; gone "$a"
  wait_log "$OUT/leader-$i-b.log" "acquired leadership"
  kill -TERM "$b"; gone "$b"
  released=$(ts "$OUT/leader-$i-a.log" "released leadership")
  acquired=$(ts "$OUT/leader-$i-b.log" "acquired leadership")
  secs=$(python3 -c "import datetime as d,sys;p=lambda s:d.datetime.fromisoformat(s.replace('Z','+00:00'));print(f'{(p(sys.argv[2])-p(sys.argv[1])).total_seconds():.2f}')" "$released" "$acquired")
  results+=("$secs"); echo "hand-over $i: $secs s"
  kubectl delete namespace "$ns" --wait=false >/dev/null
done
printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print "median hand-over: " a[int((NR+1)/2)] " s (" NR " runs)"}'
