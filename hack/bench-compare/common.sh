# Sourced by the bench-compare scripts that need the test servers: ROOT, OUT, the Debian packages, and the
# variables of the test servers' env file (REGISTRY_*, GIT_*, ...).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${1:-$ROOT/target/bench-compare}
mkdir -p "$OUT"
bash "$ROOT/hack/testinfra/install-deps.sh" --bench
ENV=${TAGPILOT_TESTINFRA_ENV:-/tmp/tagpilot-testinfra-${TAGPILOT_PORT_BASE:-17000}/testinfra.env}
[ -f "$ENV" ] || { echo "test servers not running: make testinfra-up" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV"
