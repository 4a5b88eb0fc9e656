//! `tagpilot suspend|resume|reconcile|delete image ...`, as Flux's commands behave.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::bail;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use tagpilot_core::api::REQUESTED_AT_ANNOTATION;

use super::{ClusterArgs, Kind, explain, ready, say, wait_ready, wait_until};

/// What to do with an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `spec.suspend: true`.
    Suspend,
    /// `spec.suspend: false`, then wait for Ready.
    Resume,
    /// Set `reconcile.fluxcd.io/requestedAt`, then wait until it is handled.
    Reconcile,
    /// Delete (after a confirmation).
    Delete,
}

/// `suspend|resume|reconcile|delete image repository|policy|update NAME`.
#[derive(Debug, clap::Args)]
pub struct ManageArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Delete without asking for confirmation.
    #[arg(short = 's', long, global = true)]
    silent: bool,
    #[command(subcommand)]
    what: ManageWhat,
}

#[derive(Debug, clap::Subcommand)]
enum ManageWhat {
    /// An image object.
    #[command(subcommand)]
    Image(ManageImage),
}

#[derive(Debug, clap::Subcommand)]
enum ManageImage {
    /// An ImageRepository.
    Repository(Name),
    /// An ImagePolicy.
    Policy(Name),
    /// An ImageUpdateAutomation.
    Update(Name),
}

#[derive(Debug, clap::Args)]
struct Name {
    /// The object's name.
    name: String,
}

impl ManageArgs {
    /// Runs `action`: 0 on success, 1 on failure.
    pub fn run(self, action: Action) -> ExitCode {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        match runtime.block_on(self.apply(action)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("✗ {e:#}");
                ExitCode::from(1)
            }
        }
    }

    async fn apply(&self, action: Action) -> anyhow::Result<()> {
        let ManageWhat::Image(what) = &self.what;
        let (kind, name) = match what {
            ManageImage::Repository(n) => (Kind::Repository, &n.name),
            ManageImage::Policy(n) => (Kind::Policy, &n.name),
            ManageImage::Update(n) => (Kind::Update, &n.name),
        };
        if action == Action::Reconcile && kind == Kind::Policy {
            bail!(
                "an ImagePolicy is evaluated when its ImageRepository changes: reconcile the image repository"
            );
        }
        let timeout = self.cluster.timeout()?;
        let client = self.cluster.client().await?;
        let ns = &self.cluster.namespace;
        let api = kind.api(&client, Some(ns));
        let fail = |e| explain(&client, kind, ns, Some(name), e);
        let current = match api.get(name).await {
            Ok(o) => o,
            Err(e) => return Err(fail(e).await),
        };
        let merge = |v| Patch::Merge(v);
        match action {
            Action::Suspend => {
                say(
                    "►",
                    &format!("suspending {} {name} in {ns} namespace", kind.noun()),
                );
                if let Err(e) = api
                    .patch(
                        name,
                        &PatchParams::default(),
                        &merge(json!({"spec": {"suspend": true}})),
                    )
                    .await
                {
                    return Err(fail(e).await);
                }
                say("✔", &format!("{} suspended", kind.noun()));
            }
            Action::Resume => {
                say(
                    "►",
                    &format!("resuming {} {name} in {ns} namespace", kind.noun()),
                );
                let patch = json!({
                    "metadata": {"annotations": {REQUESTED_AT_ANNOTATION: requested_at()}},
                    "spec": {"suspend": false},
                });
                if let Err(e) = api
                    .patch(name, &PatchParams::default(), &merge(patch))
                    .await
                {
                    return Err(fail(e).await);
                }
                say("✔", &format!("{} resumed", kind.noun()));
                say("◎", &format!("waiting for {} reconciliation", kind.kind()));
                let done = wait_ready(&api, kind, name, timeout).await?;
                say("✔", &format!("{} reconciliation completed", kind.kind()));
                if let Some((_, m)) = ready(&done) {
                    say("✔", &m);
                }
            }
            Action::Reconcile => {
                if current.data["spec"]["suspend"] == true {
                    bail!("resume the suspended {} '{ns}/{name}' first", kind.kind());
                }
                say(
                    "►",
                    &format!("annotating {} {name} in {ns} namespace", kind.kind()),
                );
                let value = requested_at();
                let patch = json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: value}}});
                if let Err(e) = api
                    .patch(name, &PatchParams::default(), &merge(patch))
                    .await
                {
                    return Err(fail(e).await);
                }
                say("✔", &format!("{} annotated", kind.kind()));
                say("◎", &format!("waiting for {} reconciliation", kind.kind()));
                let done = wait_until(
                    &api,
                    name,
                    &format!("waiting for {} reconciliation", kind.kind()),
                    timeout,
                    |o| {
                        (o.data["status"]["lastHandledReconcileAt"] == value.as_str()).then(|| {
                            match ready(o) {
                                Some((s, _)) if s == "True" => Ok(()),
                                Some((_, m)) => Err(m),
                                None => Err("no Ready condition".into()),
                            }
                        })
                    },
                )
                .await?;
                say("✔", &format!("{} reconciliation completed", kind.kind()));
                if let Some((_, m)) = ready(&done) {
                    say("✔", &m);
                }
            }
            Action::Delete => {
                if !self.silent
                    && !confirm(&format!(
                        "Are you sure you want to delete this {}",
                        kind.noun()
                    ))?
                {
                    bail!("aborting");
                }
                say(
                    "►",
                    &format!("deleting {} {name} in {ns} namespace", kind.noun()),
                );
                if let Err(e) = api.delete(name, &DeleteParams::default()).await {
                    return Err(fail(e).await);
                }
                say("✔", &format!("{} deleted", kind.noun()));
            }
        }
        Ok(())
    }
}

/// A fresh `requestedAt` value (RFC 3339 with nanoseconds, as Flux writes it).
fn requested_at() -> String {
    jiff::Timestamp::now().to_string()
}

/// Asks `question? [y/N]` on the terminal; a non-terminal stdin answers from its first line.
fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question}? [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 && !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
