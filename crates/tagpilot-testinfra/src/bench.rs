//! Helpers of the side-by-side benchmark binaries (`pr-bench`, `clone-bench`): a shell step, a median, the
//! manifests of one automation, and a timed `tagpilot run --once`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Runs a bash script (`-euo pipefail`) with `envs`; its stderr in the error.
pub fn sh(script: &str, envs: &[(&str, &str)]) -> anyhow::Result<()> {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .envs(envs.iter().copied())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The median (sorts `v`).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Writes `all.yaml` in `dir`: ImageRepository and ImagePolicy `podinfo` (semver `5.0.x`) on `image`, the
/// GitRepository `flux-system` at `url` (branch main, Basic credentials), and an ImageUpdateAutomation over
/// `./clusters` with `extra` spec lines (indented two spaces).
pub fn manifests(
    dir: &Path,
    image: &str,
    url: &str,
    (user, pass, token): (&str, &str, &str),
    extra: &str,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("all.yaml"),
        format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: podinfo, namespace: flux-system}}\n\
             spec: {{image: {image}, interval: 1m}}\n---\n\
             apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {{name: podinfo, namespace: flux-system}}\n\
             spec: {{imageRepositoryRef: {{name: podinfo}}, policy: {{semver: {{range: 5.0.x}}}}}}\n---\n\
             apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: flux-system, namespace: flux-system}}\n\
             spec: {{interval: 1m, url: '{url}', ref: {{branch: main}}, secretRef: {{name: flux-system}}}}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{name: flux-system, namespace: flux-system}}\n\
             stringData: {{username: {user}, password: {pass}, token: {token}}}\n---\n\
             apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {{name: flux-system, namespace: flux-system}}\n\
             spec:\n  interval: 1m\n  sourceRef: {{kind: GitRepository, name: flux-system}}\n  git:\n    checkout: {{ref: {{branch: main}}}}\n\
             \x20   commit: {{author: {{name: fluxcdbot, email: fluxcdbot@users.noreply.github.com}}}}\n{extra}\
             \x20 update: {{path: ./clusters, strategy: Setters}}\n"
        ),
    )?;
    Ok(())
}

/// Times `tagpilot run --once --json` on `manifests` with `state` and `extra` arguments (wall seconds).
pub fn run_tagpilot(
    bin: &Path,
    manifests: &Path,
    state: &Path,
    extra: &[&str],
) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let out = Command::new(bin)
        .args(["run", "--once", "--json", "--manifests"])
        .arg(manifests)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .output()?;
    let secs = t0.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "tagpilot run: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(secs)
}

/// A benchmark's world: `<prefix>-<pid>/podinfo` on the plain registry with tag 5.0.0, and an empty git
/// repository `<prefix>-<pid>` on the git server. Returns (its name, the image's repository path, the image,
/// the git URL with the test credentials in it).
pub async fn world(
    infra: &crate::Infra,
    prefix: &str,
) -> anyhow::Result<(String, String, String, String)> {
    let git = infra.git();
    let reg = infra.registry(crate::Flavour::Plain);
    let id = format!("{prefix}-{}", std::process::id());
    let repo_path = format!("{id}/podinfo");
    let image = reg.image(&repo_path);
    reg.push_tags(&repo_path, &["5.0.0"]).await?;
    git.create_repo(&id);
    let authed =
        git.http_url(&id)
            .replacen("://", &format!("://{}:{}@", git.username, git.password), 1);
    Ok((id, repo_path, image, authed))
}
