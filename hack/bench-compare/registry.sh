#!/usr/bin/env bash
# Scan a 10,000-tag repository on the local registries with tagpilot and with skopeo (Debian's), side by side
# in one hyperfine run: wall time, peak memory (GNU time) and requests made (tagpilot counts its own;
# skopeo's come from its --debug log). Needs the test servers: make testinfra-up.
# shellcheck source=hack/bench-compare/common.sh
. "$(dirname "$0")/common.sh"
cargo build -q --release -p tagpilot --bin tagpilot
cargo build -q --release -p tagpilot-testinfra --example push_tags
TP=$ROOT/target/release/tagpilot
REPO=bench/tags-10k-$$
for flavour in plain token; do
  TAGPILOT_TESTINFRA_ENV=$ENV "$ROOT/target/release/examples/push_tags" $flavour $REPO 10000 >/dev/null
done
CERTS=$OUT/skopeo-certs; mkdir -p "$CERTS"; cp "$REGISTRY_CA_FILE" "$CERTS/ca.crt"
CFG=$OUT/docker-config.json
# skopeo (containers/image) reads only the base64 `auth` field of an auth file.
printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGISTRY_TOKEN" "$(printf '%s:%s' "$REGISTRY_USERNAME" "$REGISTRY_PASSWORD" | base64 -w0)" > "$CFG"
TP_PLAIN="$TP scan $REGISTRY_PLAIN/$REPO --insecure"
SK_PLAIN="skopeo list-tags --tls-verify=false docker://$REGISTRY_PLAIN/$REPO"
TP_TOKEN="$TP scan $REGISTRY_TOKEN/$REPO --ca-file $REGISTRY_CA_FILE --docker-config $CFG"
SK_TOKEN="skopeo list-tags --cert-dir $CERTS --authfile $CFG docker://$REGISTRY_TOKEN/$REPO"
[ "$($TP_PLAIN | wc -l)" = 10000 ] && [ "$($SK_TOKEN | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Tags"]))')" = 10000 ]
hyperfine --warmup 2 --runs 15 --export-markdown "$OUT/registry.md" \
  -n 'tagpilot scan (plain HTTP)' "$TP_PLAIN > /dev/null" \
  -n 'skopeo list-tags (plain HTTP)' "$SK_PLAIN > /dev/null" \
  -n 'tagpilot scan (TLS + token)' "$TP_TOKEN > /dev/null" \
  -n 'skopeo list-tags (TLS + token)' "$SK_TOKEN > /dev/null"
cat "$OUT/registry.md"
echo
for name in plain token; do
  if [ $name = plain ]; then tp=$TP_PLAIN; sk=$SK_PLAIN; else tp=$TP_TOKEN; sk=$SK_TOKEN; fi
  tp_req=$($tp --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  # skopeo's debug log shows its ping and token requests but not the tags/list GET: add that one request
  # (distribution answers all 10,000 tags in one reply).
  sk_req=$(( $(skopeo --debug ${sk#skopeo } 2>&1 >/dev/null | grep -cE 'msg="(GET|HEAD|POST) ' || true) + 1 ))
  tp_rss=$( { /usr/bin/time -f '%M' bash -c "$tp > /dev/null"; } 2>&1 | tail -1)
  sk_rss=$( { /usr/bin/time -f '%M' bash -c "$sk > /dev/null"; } 2>&1 | tail -1)
  echo "$name: requests tagpilot $tp_req, skopeo $sk_req; peak RSS tagpilot $((tp_rss / 1024)) MiB, skopeo $((sk_rss / 1024)) MiB"
done
