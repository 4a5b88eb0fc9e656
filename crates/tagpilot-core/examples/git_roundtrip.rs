//! The tagpilot side of the git benchmark: shallow clone of a branch, change one file, commit, push.
//!
//!   git_roundtrip URL BRANCH USER PASSWORD WORKDIR

use std::path::Path;

use tagpilot_core::git::{CheckoutRef, GitAuth, PushSpec, clone_ref, commit_files, push};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [url, branch, user, password, dir] = a.as_slice() else {
        return Err("usage: git_roundtrip URL BRANCH USER PASSWORD WORKDIR".into());
    };
    let auth = GitAuth {
        username: Some(user.clone()),
        password: Some(password.clone()),
        ..GitAuth::default()
    };
    let checkout = clone_ref(
        url,
        Path::new(dir),
        &CheckoutRef::Branch(Some(branch.clone())),
        &auth,
    )?;
    let file = checkout.workdir().join("apps/app-00000.yaml");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    std::fs::write(&file, format!("image: app:{stamp}\n"))?;
    let author = git2::Signature::now("fluxcdbot", "fluxcdbot@users.noreply.github.com")?;
    commit_files(
        &checkout,
        &["apps/app-00000.yaml"],
        &author,
        "Update from image update automation",
    )?
    .ok_or("nothing to commit")?;
    push(
        &checkout,
        &auth,
        &PushSpec {
            branch: branch.clone(),
            ..PushSpec::default()
        },
    )?;
    Ok(())
}
