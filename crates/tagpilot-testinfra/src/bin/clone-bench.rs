//! Kept clones against a clone per run (`make bench-clone-cache`), in one run on the project's git server and
//! registry: a repository of FILES files (default 20,000, 1 KiB each, one of them marked), and per new tag
//!
//! - `tagpilot run --once` with kept clones (the default): fetch and reset the kept clone, commit, push;
//! - `tagpilot run --once --clone-cache-max-mb 0`: a shallow clone per run, as Flux's controller does;
//! - the git CLI: `git clone --depth 1`, `sed`, commit, push.
//!
//! Wall time of the first run and the median of the later ones, and the kept clone's disk size.
//! Usage: clone-bench [RUNS] [FILES] (TAGPILOT_BIN: the tagpilot binary, default target/release/tagpilot).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tagpilot_testinfra::bench::{manifests, median, run_tagpilot, sh};
use tagpilot_testinfra::{Flavour, Infra};

const FILE: &str = "clusters/my-cluster/podinfo-deployment.yaml";

fn du(path: &Path) -> u64 {
    let out = Command::new("du").args(["-sk"]).arg(path).output().ok();
    out.and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
    .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let files: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let infra = Infra::get();
    let git = infra.git();
    let reg = infra.registry(Flavour::Plain);
    let (id, repo_path, image, authed) =
        tagpilot_testinfra::bench::world(infra, "clone-bench").await?;
    let work = tempfile::tempdir()?;
    let w = work.path();
    // The repository: FILES files of 1 KiB under data/, in 10 commits, and the marked deployment.
    sh(
        &format!(
            "cd {} && git init -q -b main seed && cd seed && mkdir -p clusters/my-cluster && \
             printf 'spec:\\n  image: {image}:5.0.0 # {{\"$imagepolicy\": \"flux-system:podinfo\"}}\\n' > {FILE} && \
             for c in $(seq 0 9); do mkdir -p data/$c; for i in $(seq 1 $(({files} / 10))); do head -c 1024 /dev/urandom | base64 -w0 > data/$c/f$i.txt; done; \
             git add -A && git -c user.name=s -c user.email=s@e commit -qm \"seed $c\"; done && git push -q '{authed}' main",
            w.display()
        ),
        &[],
    )?;
    let url = git.http_url(&id);
    let dir = w.join("manifests");
    manifests(&dir, &image, &url, (&git.username, &git.password, "-"), "")?;
    let bin = std::env::var("TAGPILOT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/tagpilot")
        });
    let cli_script = r#"
        rm -rf cli && git clone -q --depth 1 --branch main "$URL" cli && cd cli
        sed -i "s|$IMAGE:[^ ]*|$IMAGE:$TAG|" "$FILE"
        git -c user.name=ci -c user.email=ci@e commit -qam "Update podinfo to $TAG"
        git push -q origin HEAD:refs/heads/main
    "#;
    let mut rows: Vec<(&str, Vec<f64>)> = vec![
        ("kept", Vec::new()),
        ("fresh", Vec::new()),
        ("cli", Vec::new()),
    ];
    let mut tag_n = 0;
    for _ in 0..=runs {
        for (flow, times) in rows.iter_mut() {
            tag_n += 1;
            let tag = format!("5.0.{tag_n}");
            reg.push_tags(&repo_path, &[&tag]).await?;
            let t = match *flow {
                "kept" => run_tagpilot(&bin, &dir, &w.join("kept-state"), &[])?,
                "fresh" => run_tagpilot(
                    &bin,
                    &dir,
                    &w.join("fresh-state"),
                    &["--clone-cache-max-mb", "0"],
                )?,
                _ => {
                    let t0 = Instant::now();
                    sh(
                        &format!("cd {} && {cli_script}", w.display()),
                        &[
                            ("URL", &authed),
                            ("IMAGE", &image),
                            ("TAG", &tag),
                            ("FILE", FILE),
                        ],
                    )?;
                    t0.elapsed().as_secs_f64()
                }
            };
            times.push(t);
        }
    }
    let kept_kib = du(&w.join("kept-state/work/kept-clones"));
    println!(
        "repository: {files} files of 1 KiB (+1 marked) in 10 commits; {runs} later runs each\n"
    );
    println!("| flow | first run | later runs, median |");
    println!("|---|---:|---:|");
    for (flow, times) in rows.iter_mut() {
        let first = times.remove(0);
        let name = match *flow {
            "kept" => "tagpilot run --once, kept clone (default)",
            "fresh" => "tagpilot run --once --clone-cache-max-mb 0 (a clone per run, as Flux)",
            _ => "git CLI: clone --depth 1, sed, commit, push",
        };
        println!("| {name} | {first:.2} s | {:.2} s |", median(times));
    }
    println!("\nkept clone on disk: {:.1} MiB", kept_kib as f64 / 1024.0);
    Ok(())
}
