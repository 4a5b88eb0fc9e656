# Sourced by the testinfra scripts: where everything lives and which ports it binds (all on 127.0.0.1).
# Two checkouts can run side by side with different TAGPILOT_PORT_BASE values (each gets its own directory).
PORT_BASE=${TAGPILOT_PORT_BASE:-17000}
TESTINFRA=${TAGPILOT_TESTINFRA:-/tmp/tagpilot-testinfra-$PORT_BASE}
CACHE=${TAGPILOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tagpilot}
K8S_VERSION=v1.20.2
K8S_BIN=$CACHE/kubernetes-$K8S_VERSION
ETCD_PORT=$((PORT_BASE + 0)); ETCD_PEER_PORT=$((PORT_BASE + 1)); API_PORT=$((PORT_BASE + 2)); SPARE_API_PORT=$((PORT_BASE + 3)); BARE_API_PORT=$((PORT_BASE + 4))
FLUX_API_PORT=$((PORT_BASE + 5)); HELM_API_PORT=$((PORT_BASE + 6)); PROMETHEUS_PORT=$((PORT_BASE + 7))
REG_PLAIN_PORT=$((PORT_BASE + 10)); REG_BASIC_PORT=$((PORT_BASE + 11)); TOKEN_PORT=$((PORT_BASE + 12)); REG_TOKEN_PORT=$((PORT_BASE + 13)); REG_MTLS_PORT=$((PORT_BASE + 14))
GIT_HTTP_PORT=$((PORT_BASE + 20)); GIT_HTTPS_PORT=$((PORT_BASE + 21)); GIT_SSH_PORT=$((PORT_BASE + 22))
REG_USER=testuser; REG_PASS=testpass
GIT_USER=gituser; GIT_PASS=gitpass
# The installation token the GitHub App stand-in issues for git (user x-access-token, as GitHub's git server).
GIT_APP_TOKEN=ghs_tagpilotStandInInstallationToken
# The API description validator for the GitHub stand-in (npm, pinned; installed by install-deps.sh).
FORGE_VALIDATORS=$CACHE/forge-validators
ENV_FILE=$TESTINFRA/testinfra.env

# alive PIDFILE: true when the PID recorded in PIDFILE is a running process.
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for SECONDS CMD...: run CMD every 50 ms until it succeeds or SECONDS pass.
wait_for() {
  local n=$(( $1 * 20 )); shift
  for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

# stop_pidfile PIDFILE: stop exactly that PID (TERM, then KILL after 10 s) and remove the file.
stop_pidfile() {
  local f=$1 p
  [ -f "$f" ] || return 0
  p=$(cat "$f")
  if kill "$p" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
    echo "stopped $(basename "$f" .pid) ($p)"
  fi
  rm -f "$f"
}
