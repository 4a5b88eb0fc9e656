#!/usr/bin/env bash
# The README demo on a cluster: the guide's objects on the local kube-apiserver (hack/testinfra; built once from
# Debian's source package and cached), image-reflector-controller and image-automation-controller running as
# processes against it, a loopback registry and git server. Ends with `tagpilot get images all -A` and the
# commit the automation pushed. The servers stay up (make testinfra-down stops them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CARGO=${CARGO:-cargo}
echo "== starting kube-apiserver, a registry and a git server on loopback (built or installed on first use)"
bash "$ROOT/hack/testinfra/up.sh" >/dev/null
. "$ROOT/hack/testinfra/config.sh"
export KUBECONFIG=$TESTINFRA/k8s/kubeconfig
echo "== building tagpilot and both controllers (cargo build; the first build takes a few minutes)"
"$CARGO" build -p tagpilot -p tagpilot-testinfra -p image-reflector-controller -p image-automation-controller \
  --bin tagpilot --bin demo-setup --bin image-reflector-controller --bin image-automation-controller
BIN=$ROOT/target/debug
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tagpilot-demo-cluster.XXXXXX")
eval "$("$BIN/demo-setup" "$WORK/manifests")"

echo "== CRDs and the guide's objects"
kubectl apply --server-side --force-conflicts -k "$ROOT/config/crd" >/dev/null
kubectl apply --server-side --force-conflicts -f "$ROOT/config/crd/source" >/dev/null
kubectl wait --for condition=established --timeout=60s \
  crd/imagerepositories.image.toolkit.fluxcd.io crd/gitrepositories.source.toolkit.fluxcd.io >/dev/null
kubectl create namespace flux-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n flux-system delete imageupdateautomation flux-system --ignore-not-found >/dev/null
kubectl apply --server-side --force-conflicts -f "$MANIFESTS" >/dev/null

echo "== controllers (logs in $WORK)"
export RUNTIME_NAMESPACE=flux-system
common=(--watch-all-namespaces=false --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 --log-encoding console)
"$BIN/image-reflector-controller" "${common[@]}" --storage-path "$WORK/tags" > "$WORK/reflector.log" 2>&1 &
pids=($!)
"$BIN/image-automation-controller" "${common[@]}" --work-dir "$WORK/clones" > "$WORK/automation.log" 2>&1 &
pids+=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

for _ in $(seq 1 120); do
  commit=$("$BIN/tagpilot" get image update flux-system -n flux-system -o json 2>/dev/null | jq -r '.status.lastPushCommit // empty')
  [ -n "$commit" ] && break
  sleep 0.5
done
[ -n "${commit:-}" ] || { echo "no commit within 60 s; see $WORK/*.log" >&2; exit 1; }
echo
"$BIN/tagpilot" get images all -A
echo
echo "== the commit image-automation-controller pushed:"
git clone -q "$REPO_URL" "$WORK/clone"
git -C "$WORK/clone" --no-pager log -p -1
