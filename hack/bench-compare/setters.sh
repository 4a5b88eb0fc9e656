#!/usr/bin/env bash
# The setters over a synthetic repository of 10,000 YAML files (10% marked, 1 MiB of block scalars), timed
# side by side with the floor of only reading every file (cat, grep -r) in one hyperfine run; peak memory
# from GNU time. Usage: hack/bench-compare/setters.sh [OUT_DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/target/bench-compare}
mkdir -p "$OUT"
bash "$ROOT/hack/testinfra/install-deps.sh" --bench
cargo build -q --release -p tagpilot --bin tagpilot
cargo build -q --release -p tagpilot-core --example gen_setters_tree
TP=$ROOT/target/release/tagpilot
TREE=$OUT/setters-tree
"$ROOT/target/release/examples/gen_setters_tree" "$TREE"
echo "tree: $(find "$TREE" -type f | wc -l) files, $(du -sh "$TREE" | cut -f1)"
POLICY=flux-system:podinfo=ghcr.io/stefanprodan/podinfo:5.0.3
hyperfine --warmup 2 --runs 10 --export-markdown "$OUT/setters.md" \
  -n 'cat every file (read floor)' "find $TREE -type f -print0 | xargs -0 cat > /dev/null" \
  -n 'grep -rl imagepolicy (read floor)' "grep -rl --include='*.yaml' -F '\"\$imagepolicy\"' $TREE > /dev/null" \
  -n 'tagpilot update --dry-run' "$TP update --path $TREE --policy $POLICY --dry-run --json > /dev/null" \
  -n 'tagpilot update (writes)' --prepare "rm -rf $OUT/setters-work && cp -r $TREE $OUT/setters-work" \
     "$TP update --path $OUT/setters-work --policy $POLICY > /dev/null"
cat "$OUT/setters.md"
echo
for cmd in "grep -rl --include=*.yaml -F imagepolicy $TREE" "$TP update --path $TREE --policy $POLICY --dry-run --json"; do
  rss=$( { /usr/bin/time -f '%M' bash -c "$cmd > /dev/null" ; } 2>&1 | tail -1)
  echo "peak RSS $((rss / 1024)) MiB: ${cmd/$ROOT\//}"
done
