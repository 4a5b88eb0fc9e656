#!/usr/bin/env bash
# Install the Debian packages the test servers need (idempotent: apt runs only when something is missing).
# Used by up.sh, k8s-build.sh and .ci/run; safe to run by hand (root, Debian/Ubuntu).
set -euo pipefail
PKGS=(etcd-server openssl curl jq docker-registry skopeo apache2-utils lighttpd lighttpd-mod-openssl openssh-server git python3 prometheus)
# kubectl (install and RBAC tests, kustomize builds) from Debian unless one is already on the PATH; tmux (terminal
# output tests).
command -v kubectl >/dev/null 2>&1 || PKGS+=(kubernetes-client)
PKGS+=(tmux)
case "${1:-}" in
  --build) PKGS+=(dpkg-dev golang-go rsync golang-github-modern-go-reflect2-dev) ;;
  --templates) PKGS+=(golang-go golang-github-masterminds-sprig-dev) ;;
  --bench) PKGS+=(golang-go golang-github-masterminds-semver-dev golang-github-masterminds-sprig-dev skopeo hyperfine time) ;;
esac
# Helm v4's Go library for the chart's lifecycle test (tests/e2e/helm.rs): PyPI's helm-sdkpy, pinned; it
# declares Python 3.12 but works on Debian bookworm's 3.11.
if ! python3 -c 'import helm_sdkpy' 2>/dev/null; then
  python3 -m pip install -q --ignore-requires-python helm-sdkpy==0.1.32 >&2
fi
# The GitHub stand-in's validator: Stoplight Prism in proxy mode over GitHub's OpenAPI description, both
# from npm, pinned (tests/e2e and crates/tagpilot-core/tests/forge.rs).
. "$(dirname "$0")/config.sh"
if [ ! -x "$FORGE_VALIDATORS/node_modules/.bin/prism" ] || [ ! -f "$FORGE_VALIDATORS/node_modules/@octokit/openapi/generated/api.github.com.json" ]; then
  command -v npm >/dev/null || { echo "npm is needed for the GitHub API validator (Debian: nodejs npm)" >&2; exit 1; }
  mkdir -p "$FORGE_VALIDATORS"
  npm install --prefix "$FORGE_VALIDATORS" --no-audit --no-fund --silent @stoplight/prism-cli@5.16.0 @octokit/openapi@23.0.2 >&2
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run: sudo $0 ${1:-})" >&2; exit 1
fi
echo "installing: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
