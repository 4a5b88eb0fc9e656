#!/usr/bin/env bash
# Fuzz one target for N seconds (default 600) with cargo-fuzz on the stable toolchain (no sanitizer: the code
# is safe Rust; libFuzzer still guides by coverage), its corpus seeded from the project's test data:
#   setters      YAML files with markers            (tests/data/setters/input)
#   template     commit templates                   (tests/data/templates/corpus.txt)
#   registry     tags/list pages, Link, WWW-Authenticate, error bodies
#   receiver     webhook calls per receiver type    (tests/data/receivers)
#   credentials  .dockerconfigjson and cloud token answers
#   cosign       Sigstore bundles, signature layers, trusted roots (tests/data/cosign)
# Prints libFuzzer's final stats (execution count) at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${1:?usage: hack/fuzz.sh TARGET [SECONDS]}
SECONDS_TO_RUN=${2:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
DATA=$ROOT/crates/tagpilot-core/tests/data
CORPUS=$ROOT/fuzz/corpus/$TARGET
mkdir -p "$CORPUS"
seed() { printf '%b' "$2" > "$CORPUS/seed-$1"; }
case $TARGET in
  setters)
    i=0
    find "$DATA/setters/input" -type f | sort | while read -r f; do
      i=$((i + 1)); { printf "\\x$(printf %02x $((i % 10)))"; cat "$f"; } > "$CORPUS/seed-$i"
    done ;;
  template)
    awk -v dir="$CORPUS" '/^### /{n++; next} /^@data /{next} {print > (dir "/seed-" n)}' "$DATA/templates/corpus.txt" ;;
  registry)
    seed page '{"name":"app","tags":["1.0.0","v2","latest","2.0.0\\n9.9.9"]}'
    seed link '</v2/app/tags/list?n=2&last=b>; rel="next"'
    seed challenge 'Bearer realm="https://auth.example/token",service="reg",scope="repository:app:pull"'
    seed errors '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}' ;;
  receiver)
    i=0
    for f in "$DATA"/receivers/*.json; do
      i=$((i + 1)); { printf "\\x$(printf %02x $i)\\x00"; cat "$f"; } > "$CORPUS/seed-$i"
    done ;;
  credentials)
    seed docker '{"auths":{"reg.example":{"auth":"dXNlcjpwYXNz"},"https://index.docker.io/v1/":{"username":"u","password":"p"}}}'
    seed ecr '{"authorizationData":[{"authorizationToken":"QVdTOnRva2Vu","expiresAt":1.7e9}]}'
    seed gcp '{"access_token":"ya29.x","expires_in":3599}'
    seed sts '<AssumeRoleWithWebIdentityResponse><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey></Credentials></AssumeRoleWithWebIdentityResponse>' ;;
  cosign)
    { printf '\x00'; cat "$DATA/cosign/sigstore-rs-bundle_v03.json"; } > "$CORPUS/seed-bundle"
    { printf '\x02'; cat "$DATA/cosign/sigstore-rs-prod-trusted_root.json"; } > "$CORPUS/seed-root"
    seed layer '\x01{"payload":"{\"critical\":{\"image\":{\"docker-manifest-digest\":\"sha256:ab\"},\"type\":\"cosign container image signature\"}}","annotations":{"dev.cosignproject.cosign/signature":"MEUCIQD6q/COgzOyW0YH1Dk+CCYSt4uAhm3FDHUwvPI55zwnlwIgE0ZK58ZOWpZw8YVmBapJhBqCfdPekIknimuO0xH8Jh8=","dev.sigstore.cosign/bundle":"{}"}}' ;;
  *) echo "unknown target $TARGET" >&2; exit 2 ;;
esac
cd "$ROOT/fuzz"
cargo fuzz run --sanitizer none "$TARGET" "$CORPUS" -- -max_total_time="$SECONDS_TO_RUN" -max_len=65536 -print_final_stats=1
