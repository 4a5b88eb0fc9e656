#!/usr/bin/env bash
# Shallow clone + commit + push of a repository with 10,000 files and 2,000 commits over the local smart-HTTP
# server: tagpilot's git module and the git CLI doing the same steps, side by side in one hyperfine run.
# Needs the test servers (make testinfra-up).
# shellcheck source=hack/bench-compare/common.sh
. "$(dirname "$0")/common.sh"
cargo build -q --release -p tagpilot-core --example git_roundtrip
RT=$ROOT/target/release/examples/git_roundtrip
NAME=bench-history-$$
BARE=$GIT_REPOS_DIR/$NAME.git
git init -q --bare -b main "$BARE"
git -C "$BARE" config http.receivepack true
python3 - <<'PY' | git -C "$BARE" fast-import --quiet
import sys
w = sys.stdout.write
def commit(n, files):
    w(f"commit refs/heads/main\ncommitter bench <bench@example.com> {1700000000 + n} +0000\n")
    msg = f"commit {n}\n"
    w(f"data {len(msg)}\n{msg}")
    for path, text in files:
        data = text.encode()
        w(f"M 644 inline {path}\ndata {len(data)}\n"); sys.stdout.flush(); sys.stdout.buffer.write(data); w("\n")
commit(0, [(f"apps/app-{i:05}.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{i}\ndata:\n  image: app:1.0.{i}\n") for i in range(10000)])
for n in range(1, 2000):
    i = (n * 7919) % 10000
    commit(n, [(f"apps/app-{i:05}.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{i}\ndata:\n  image: app:2.{n}.{i}\n")])
PY
chown -R git:git "$BARE"
echo "repository: $(git -c safe.directory='*' -C "$BARE" rev-list --count main) commits, $(git -c safe.directory='*' -C "$BARE" ls-tree -r main | wc -l) files"
URL=$GIT_HTTP_URL/$NAME.git
AUTH_URL=${URL/http:\/\//http://$GIT_USERNAME:$GIT_PASSWORD@}
W=$OUT/git-work
GIT_CLI="git clone -q --depth 1 --single-branch -b main $AUTH_URL $W/cli && echo \"image: app:\$(date +%s%N)\" > $W/cli/apps/app-00000.yaml && git -C $W/cli -c user.name=fluxcdbot -c user.email=fluxcdbot@users.noreply.github.com commit -qam 'Update from image update automation' && git -C $W/cli push -q origin HEAD:main"
hyperfine --warmup 1 --runs 10 --export-markdown "$OUT/git.md" \
  --prepare "rm -rf $W && mkdir -p $W" \
  -n 'git CLI: shallow clone, commit, push' "$GIT_CLI" \
  -n 'tagpilot git: shallow clone, commit, push' "$RT $URL main $GIT_USERNAME $GIT_PASSWORD $W/tagpilot"
cat "$OUT/git.md"
rm -rf "$W"
for c in "$GIT_CLI" "$RT $URL main $GIT_USERNAME $GIT_PASSWORD $W/tagpilot"; do
  rm -rf "$W"; mkdir -p "$W"
  rss=$( { /usr/bin/time -f '%M' bash -c "$c" ; } 2>&1 | tail -1)
  echo "peak RSS $((rss / 1024)) MiB: ${c%% *}"
done
rm -rf "$W"
