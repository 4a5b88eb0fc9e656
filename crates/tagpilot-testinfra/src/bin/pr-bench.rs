//! The cost of proposing an image update as a pull request (`make bench-pull-requests`), in one run on the
//! project's git server and registry with the GitHub stand-in (direct, no validator): per new tag,
//!
//! - `tagpilot run --once`, push mode (commit pushed to a branch): the baseline;
//! - `tagpilot run --once`, `spec.pullRequest` (branch rebuilt from main, the open request looked up and
//!   updated): what a pull request adds;
//! - the git CLI and curl, as Flux's guide suggests doing it beside Flux (a CI job): shallow clone, `sed`,
//!   commit, force-push the branch, list the open requests for it, create or update one.
//!
//! Wall time per update (median of the runs), and the API calls of each pull request update.
//! Usage: pr-bench [RUNS] (TAGPILOT_BIN: the tagpilot binary, default target/release/tagpilot).

use std::path::PathBuf;
use std::time::Instant;

use tagpilot_testinfra::bench::{manifests, median, run_tagpilot, sh};
use tagpilot_testinfra::forge::{Flavour as Forge, ForgeStandIn};
use tagpilot_testinfra::{Flavour, Infra};

const TOKEN: &str = "pat-bench";
const FILE: &str = "clusters/my-cluster/podinfo-deployment.yaml";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7);
    let infra = Infra::get();
    let git = infra.git();
    let reg = infra.registry(Flavour::Plain);
    let (id, repo_path, image, authed) =
        tagpilot_testinfra::bench::world(infra, "pr-bench").await?;
    let work = tempfile::tempdir()?;
    let w = work.path();
    sh(
        &format!(
            "cd {} && git init -q -b main seed && cd seed && mkdir -p clusters/my-cluster && \
             printf 'spec:\\n  image: {image}:5.0.0 # {{\"$imagepolicy\": \"flux-system:podinfo\"}}\\n' > {FILE} && \
             git add -A && git -c user.name=s -c user.email=s@e commit -qm seed && git push -q '{authed}' main",
            w.display()
        ),
        &[],
    )?;
    let stand_in = ForgeStandIn::start(Forge::GitHub, &git.repos_dir, &[TOKEN]).await;
    let url = git.http_url(&id);
    let push_dir = w.join("push");
    let pr_dir = w.join("pr");
    manifests(
        &push_dir,
        &image,
        &url,
        (&git.username, &git.password, TOKEN),
        "    push: {branch: bench-push}\n",
    )?;
    manifests(
        &pr_dir,
        &image,
        &url,
        (&git.username, &git.password, TOKEN),
        &format!(
            "  pullRequest: {{provider: github, apiURL: '{}'}}\n",
            stand_in.url
        ),
    )?;
    let bin = std::env::var("TAGPILOT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/tagpilot")
        });
    let (mut push_t, mut pr_t, mut cli_t) = (Vec::new(), Vec::new(), Vec::new());
    let mut calls = Vec::new();
    let cli_script = r#"
        rm -rf cli && git clone -q --depth 1 --branch main "$URL" cli && cd cli
        sed -i "s|$IMAGE:[^ ]*|$IMAGE:$TAG|" "$FILE"
        git -c user.name=ci -c user.email=ci@e commit -qam "Update podinfo to $TAG"
        git push -q -f origin HEAD:refs/heads/cli-bench
        n=$(curl -sf -H "Authorization: Bearer $TOKEN" "$API/repos/git/$REPO/pulls?state=open&head=git:cli-bench&base=main" | jq '.[0].number // empty')
        body=$(jq -n --arg t "Update podinfo to $TAG" '{title: $t, head: "cli-bench", base: "main", body: $t}')
        if [ -n "$n" ]; then curl -sf -X PATCH -H "Authorization: Bearer $TOKEN" -d "$body" "$API/repos/git/$REPO/pulls/$n" >/dev/null
        else curl -sf -X POST -H "Authorization: Bearer $TOKEN" -d "$body" "$API/repos/git/$REPO/pulls" >/dev/null; fi
    "#;
    for i in 0..=runs {
        let tag = format!("5.0.{}", i + 1);
        reg.push_tags(&repo_path, &[&tag]).await?;
        let p = run_tagpilot(&bin, &push_dir, &w.join("push-state"), &[])?;
        let before = stand_in.requests().len();
        let q = run_tagpilot(&bin, &pr_dir, &w.join("pr-state"), &[])?;
        let n = stand_in.requests().len() - before;
        let t0 = Instant::now();
        sh(
            &format!("cd {} && {cli_script}", w.display()),
            &[
                ("URL", &authed),
                ("IMAGE", &image),
                ("TAG", &tag),
                ("FILE", FILE),
                ("TOKEN", TOKEN),
                ("API", &stand_in.url),
                ("REPO", &id),
            ],
        )?;
        let c = t0.elapsed().as_secs_f64();
        // The first round opens the requests; the rest update them.
        if i > 0 {
            push_t.push(p);
            pr_t.push(q);
            cli_t.push(c);
            calls.push(n);
        } else {
            println!(
                "first round (opens the requests): push {p:.2} s, pull request {q:.2} s ({n} API calls), git CLI + curl {c:.2} s"
            );
        }
    }
    let prs = stand_in.prs(&format!("git/{id}"));
    anyhow::ensure!(prs.len() == 2, "one request per flow: {prs:?}");
    println!("\nper new tag, median of {runs} updates (wall time of the whole command):\n");
    println!("| flow | median | API calls |");
    println!("|---|---:|---:|");
    println!(
        "| tagpilot run --once, push to a branch | {:.2} s | 0 |",
        median(&mut push_t)
    );
    calls.sort();
    println!(
        "| tagpilot run --once, spec.pullRequest (update) | {:.2} s | {} |",
        median(&mut pr_t),
        calls[calls.len() / 2]
    );
    println!(
        "| git CLI + curl (clone --depth 1, sed, commit, push -f, list, PATCH) | {:.2} s | 2 |",
        median(&mut cli_t)
    );
    Ok(())
}
