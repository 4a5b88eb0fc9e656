//! `tagpilot install`, `uninstall` and `bootstrap git`: the controllers' manifests (`tagpilot-core::api::install`,
//! the same as `config/default`) applied server-side, printed, removed, or committed into a Flux repository.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use tagpilot_core::api::install;
use tagpilot_core::git::{GitAuth, PushSpec, clone_branch, commit_files, push};

use super::cluster::{ClusterArgs, Spinner, say};

/// What `install` needs.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Print the manifests instead of applying them.
    #[arg(long)]
    export: bool,
    /// Also install the GitRepository CRD (only where Flux's source-controller is absent).
    #[arg(long)]
    with_source_crd: bool,
    /// Serve webhook Receivers: the Receiver CRD, `--receiver-addr` and the Service `webhook-receiver` (only
    /// where Flux's notification-controller does not serve them).
    #[arg(long)]
    with_receiver: bool,
    /// The registry of the controllers' images: `<registry>/image-reflector-controller:<tag>` and
    /// `<registry>/image-automation-controller:<tag>` (as `flux install --registry`).
    #[arg(long, default_value = install::DEFAULT_REGISTRY)]
    registry: String,
    /// The tag of the controllers' images.
    #[arg(long, default_value_t = install::default_tag())]
    image_tag: String,
    /// Wait until both Deployments are available.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    wait: bool,
}

/// What `uninstall` needs.
#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Also delete the CRDs, and with them every ImageRepository, ImagePolicy and ImageUpdateAutomation.
    #[arg(long)]
    crds: bool,
    /// Delete without asking for confirmation.
    #[arg(short = 's', long)]
    silent: bool,
}

/// `bootstrap git`.
#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    what: BootstrapWhat,
}

#[derive(Debug, clap::Subcommand)]
enum BootstrapWhat {
    /// Commit the manifests into `<path>/flux-system/` of a Git repository that Flux syncs.
    Git(BootstrapGit),
}

#[derive(Debug, clap::Args)]
struct BootstrapGit {
    /// The repository URL (https://, http:// or ssh://).
    #[arg(long)]
    url: String,
    /// The branch Flux syncs.
    #[arg(long, default_value = "main")]
    branch: String,
    /// The cluster's path in the repository (`clusters/my-cluster`).
    #[arg(long)]
    path: String,
    /// HTTPS user.
    #[arg(long, short = 'u')]
    username: Option<String>,
    /// Read the HTTPS password (or token) from stdin.
    #[arg(long)]
    password_stdin: bool,
    /// An SSH private key for ssh:// URLs.
    #[arg(long)]
    private_key_file: Option<PathBuf>,
    /// known_hosts for ssh:// URLs (default: ~/.ssh/known_hosts).
    #[arg(long)]
    known_hosts_file: Option<PathBuf>,
    /// Only commit the components (tagpilot never writes sync objects: Flux's own sync applies the directory).
    #[arg(long)]
    components_only: bool,
    /// Also apply the manifests to the cluster of the kubeconfig.
    #[arg(long)]
    apply: bool,
    /// The registry of the controllers' images: `<registry>/image-reflector-controller:<tag>` and
    /// `<registry>/image-automation-controller:<tag>` (as `flux install --registry`).
    #[arg(long, default_value = install::DEFAULT_REGISTRY)]
    registry: String,
    /// The tag of the controllers' images.
    #[arg(long, default_value_t = install::default_tag())]
    image_tag: String,
    /// Also commit the GitRepository CRD.
    #[arg(long)]
    with_source_crd: bool,
    /// Also commit the webhook receivers (Receiver CRD, `--receiver-addr`, Service `webhook-receiver`).
    #[arg(long)]
    with_receiver: bool,
}

/// The API resource of an installed object's kind.
fn resource(kind: &str) -> anyhow::Result<(ApiResource, bool)> {
    let (group, version, plural, namespaced) = match kind {
        "Namespace" => ("", "v1", "namespaces", false),
        "ServiceAccount" => ("", "v1", "serviceaccounts", true),
        "Service" => ("", "v1", "services", true),
        "CustomResourceDefinition" => (
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            false,
        ),
        "ClusterRole" => ("rbac.authorization.k8s.io", "v1", "clusterroles", false),
        "ClusterRoleBinding" => (
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            false,
        ),
        "Role" => ("rbac.authorization.k8s.io", "v1", "roles", true),
        "RoleBinding" => ("rbac.authorization.k8s.io", "v1", "rolebindings", true),
        "Deployment" => ("apps", "v1", "deployments", true),
        other => bail!("no API known for kind {other}"),
    };
    Ok((
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
        namespaced,
    ))
}

fn api_for(client: &kube::Client, obj: &Value) -> anyhow::Result<(Api<DynamicObject>, String)> {
    let kind = obj["kind"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (ar, namespaced) = resource(kind)?;
    let api = match obj["metadata"]["namespace"].as_str() {
        Some(ns) if namespaced => Api::namespaced_with(client.clone(), ns, &ar),
        _ => Api::all_with(client.clone(), &ar),
    };
    Ok((api, name))
}

/// Applies `objects` server-side (field manager `tagpilot`), waiting for CRDs to be established.
pub async fn apply_all(client: &kube::Client, objects: &[Value]) -> anyhow::Result<()> {
    for obj in objects {
        let (api, name) = api_for(client, obj)?;
        let kind = obj["kind"].as_str().unwrap_or_default();
        let typed: DynamicObject = serde_json::from_value(obj.clone())?;
        api.patch(
            &name,
            &PatchParams::apply("tagpilot").force(),
            &Patch::Apply(&typed),
        )
        .await
        .with_context(|| format!("apply {kind} {name}"))?;
        if kind == "CustomResourceDefinition" {
            let t0 = Instant::now();
            loop {
                let crd = api.get(&name).await?;
                let established = crd.data["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                    });
                if established {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(30) {
                    bail!("CRD {name} not established within 30 s");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("✗ {e:#}");
            ExitCode::from(1)
        }
    }
}

impl InstallArgs {
    /// Runs the command.
    pub fn run(self) -> ExitCode {
        finish(runtime().block_on(self.install()))
    }

    fn images(&self) -> install::Images {
        install::Images {
            registry: self.registry.clone(),
            tag: self.image_tag.clone(),
        }
    }

    async fn install(&self) -> anyhow::Result<()> {
        let ns = &self.cluster.namespace;
        let mut objects = install::all(ns, &self.images(), self.with_source_crd);
        if self.with_receiver {
            install::with_receiver(&mut objects, ns);
        }
        if self.export {
            print!("{}", install::to_yaml(&objects));
            return Ok(());
        }
        let timeout = self.cluster.timeout()?;
        let client = self.cluster.client().await?;
        say("►", &format!("installing tagpilot's controllers in {ns}"));
        apply_all(&client, &objects).await?;
        say("✔", &format!("applied {} objects", objects.len()));
        if !self.wait {
            return Ok(());
        }
        say("◎", "waiting for the Deployments to be available");
        let deployments: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &resource("Deployment")?.0);
        let t0 = Instant::now();
        let mut spinner = Spinner::new("waiting for the Deployments");
        for name in install::CONTROLLERS {
            loop {
                let d = deployments.get(name).await?;
                if d.data["status"]["availableReplicas"].as_i64().unwrap_or(0) >= 1 {
                    break;
                }
                if t0.elapsed() > timeout {
                    spinner.done();
                    bail!(
                        "Deployment {ns}/{name} not available within {}s (see `kubectl -n {ns} describe deployment {name}`)",
                        timeout.as_secs()
                    );
                }
                spinner.tick(t0.elapsed());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        spinner.done();
        say("✔", "install finished");
        Ok(())
    }
}

impl UninstallArgs {
    /// Runs the command.
    pub fn run(self) -> ExitCode {
        finish(runtime().block_on(self.uninstall()))
    }

    async fn uninstall(&self) -> anyhow::Result<()> {
        let ns = &self.cluster.namespace;
        if !self.silent {
            let what = if self.crds {
                "the controllers, their RBAC and the CRDs (deleting every image object)"
            } else {
                "the controllers and their RBAC"
            };
            eprint!("Are you sure you want to delete {what} from {ns}? [y/N] ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            if !matches!(line.trim(), "y" | "Y" | "yes") {
                bail!("aborting");
            }
        }
        let client = self.cluster.client().await?;
        let mut objects = install::all(ns, &install::Images::default(), self.crds);
        install::with_receiver(&mut objects, ns);
        // Keep the namespace (Flux may live there); CRDs only when asked.
        objects.retain(|o| {
            o["kind"] != "Namespace" && (self.crds || o["kind"] != "CustomResourceDefinition")
        });
        objects.reverse();
        for obj in &objects {
            let (api, name) = api_for(&client, obj)?;
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => say(
                    "✔",
                    &format!(
                        "{} {name} deleted",
                        obj["kind"].as_str().unwrap_or_default()
                    ),
                ),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(anyhow!("delete {name}: {e}")),
            }
        }
        say("✔", "uninstall finished");
        Ok(())
    }
}

/// Adds `file` to the `resources` of a kustomization.yaml text, keeping the rest of the text as it is.
pub fn add_resource(kustomization: Option<&str>, file: &str) -> anyhow::Result<String> {
    let Some(text) = kustomization else {
        return Ok(format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- {file}\n"
        ));
    };
    let parsed: Value = yaml_serde::from_str(text).context("kustomization.yaml")?;
    if parsed["resources"]
        .as_array()
        .is_some_and(|r| r.iter().any(|x| x == file))
    {
        return Ok(text.to_string());
    }
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim_end() == "resources:") else {
        let sep = if text.ends_with('\n') { "" } else { "\n" };
        return Ok(format!("{text}{sep}resources:\n- {file}\n"));
    };
    let mut end = start + 1;
    let mut indent = String::new();
    while end < lines.len() {
        let l = lines[end];
        let trimmed = l.trim_start();
        if trimmed.starts_with("- ") {
            indent = l[..l.len() - trimmed.len()].to_string();
            end += 1;
        } else if trimmed.is_empty() || trimmed.starts_with('#') {
            end += 1;
        } else {
            break;
        }
    }
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out.insert(end, format!("{indent}- {file}"));
    Ok(out.join("\n") + "\n")
}

impl BootstrapArgs {
    /// Runs the command.
    pub fn run(self) -> ExitCode {
        finish(runtime().block_on(self.bootstrap()))
    }

    async fn bootstrap(&self) -> anyhow::Result<()> {
        let BootstrapWhat::Git(g) = &self.what;
        let ns = &self.cluster.namespace;
        let mut auth = GitAuth {
            username: g.username.clone(),
            ..GitAuth::default()
        };
        if g.password_stdin {
            let mut p = String::new();
            std::io::stdin().read_to_string(&mut p)?;
            auth.password = Some(p.trim_end_matches(['\r', '\n']).to_string());
        }
        if let Some(k) = &g.private_key_file {
            auth.identity = Some(
                std::fs::read_to_string(k)
                    .with_context(|| format!("--private-key-file {}", k.display()))?,
            );
            let hosts = g.known_hosts_file.clone().unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".ssh/known_hosts")
            });
            auth.known_hosts = Some(
                std::fs::read_to_string(&hosts)
                    .with_context(|| format!("known_hosts {}", hosts.display()))?,
            );
        }
        let mut objects = install::all(
            ns,
            &install::Images {
                registry: g.registry.clone(),
                tag: g.image_tag.clone(),
            },
            g.with_source_crd,
        );
        if g.with_receiver {
            install::with_receiver(&mut objects, ns);
        }
        let dir = tempfile::tempdir()?;
        say(
            "►",
            &format!("cloning branch \"{}\" from {}", g.branch, g.url),
        );
        let checkout = clone_branch(&g.url, dir.path(), Some(&g.branch), &auth)?;
        let base = PathBuf::from(g.path.trim_matches('/')).join("flux-system");
        if base
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            bail!("--path {:?}: must stay inside the repository", g.path);
        }
        let components = base.join("tagpilot-components.yaml");
        let kustomization = base.join("kustomization.yaml");
        std::fs::create_dir_all(checkout.workdir().join(&base))?;
        std::fs::write(
            checkout.workdir().join(&components),
            format!(
                "# tagpilot {} image automation controllers; generated by `tagpilot bootstrap git`.\n{}",
                env!("CARGO_PKG_VERSION"),
                install::to_yaml(&objects)
            ),
        )?;
        let existing = std::fs::read_to_string(checkout.workdir().join(&kustomization)).ok();
        std::fs::write(
            checkout.workdir().join(&kustomization),
            add_resource(existing.as_deref(), "tagpilot-components.yaml")?,
        )?;
        let me = git2::Signature::now("tagpilot", "tagpilot@users.noreply.github.com")?;
        match commit_files(
            &checkout,
            &[components.clone(), kustomization.clone()],
            &me,
            &format!(
                "Add tagpilot v{} components manifests",
                env!("CARGO_PKG_VERSION")
            ),
        )? {
            Some(id) => {
                push(
                    &checkout,
                    &auth,
                    &PushSpec {
                        branch: g.branch.clone(),
                        ..Default::default()
                    },
                )?;
                say("✔", &format!("components manifests pushed: commit {id}"));
            }
            None => say("✔", "components manifests are up to date"),
        }
        if g.components_only {
            say(
                "►",
                "components only: no sync objects (Flux's sync applies the directory)",
            );
        }
        if g.apply {
            let client = self.cluster.client().await?;
            apply_all(&client, &objects).await?;
            say(
                "✔",
                &format!("applied {} objects to the cluster", objects.len()),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_is_added_to_a_kustomization_once() {
        let flux = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n";
        let once = add_resource(Some(flux), "tagpilot-components.yaml").unwrap();
        assert_eq!(
            once,
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- gotk-components.yaml\n- gotk-sync.yaml\n- tagpilot-components.yaml\n"
        );
        assert_eq!(
            add_resource(Some(&once), "tagpilot-components.yaml").unwrap(),
            once
        );
        let indented = "resources:\n  - a.yaml\npatches: []\n";
        assert_eq!(
            add_resource(Some(indented), "b.yaml").unwrap(),
            "resources:\n  - a.yaml\n  - b.yaml\npatches: []\n"
        );
        assert!(
            add_resource(None, "x.yaml")
                .unwrap()
                .ends_with("resources:\n- x.yaml\n")
        );
    }
}
