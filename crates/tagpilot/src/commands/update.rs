//! `tagpilot update`: apply image policies to the marked values of a directory of YAML, without a cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;
use tagpilot_core::api::ImagePolicyStatus;
use tagpilot_core::message::{self, MessageInput};
use tagpilot_core::setters::{PolicyImage, Setters, UpdateResult, unified_diff, update_tree};
use tagpilot_core::template::Template;

/// Arguments of `tagpilot update`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    tagpilot update --path clusters/my-cluster --policy flux-system:podinfo=ghcr.io/stefanprodan/podinfo:5.0.3\n  \
    kubectl get imagepolicies -A -o yaml > policies.yaml && tagpilot update --path . --policies policies.yaml --dry-run\n  \
    tagpilot update --path . --policies policies.yaml --dry-run --message-template msg.tmpl --value env=prod")]
pub struct UpdateArgs {
    /// The directory whose YAML files are updated (the automation's update.path).
    #[arg(long, value_name = "DIR")]
    path: PathBuf,
    /// A resolved policy, NAMESPACE:NAME=IMAGE[:TAG][@DIGEST]; repeatable.
    #[arg(long = "policy", value_name = "NS:NAME=IMAGE")]
    policies: Vec<String>,
    /// ImagePolicy objects with status.latestRef (a YAML stream or List, as `kubectl get -o yaml` prints).
    #[arg(long = "policies", value_name = "FILE")]
    policies_file: Option<PathBuf>,
    /// Print a unified diff of the changes and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the result (files, objects, changes, errors) as JSON.
    #[arg(long)]
    json: bool,
    /// A commit message template (Go text/template with sprig, as git.commit.messageTemplate); the message
    /// the automation would commit is printed after the changes. Nothing is written when it fails to render.
    #[arg(long, value_name = "FILE")]
    message_template: Option<PathBuf>,
    /// The ImageUpdateAutomation the message names (.AutomationObject).
    #[arg(
        long,
        value_name = "NS/NAME",
        default_value = "flux-system/flux-system"
    )]
    automation: String,
    /// A messageTemplateValues entry (.Values.KEY), KEY=VALUE; repeatable.
    #[arg(long = "value", value_name = "KEY=VALUE")]
    values: Vec<String>,
}

impl UpdateArgs {
    /// Runs the command: 0 when it ran (changed or not), 2 on bad arguments, 1 on I/O errors.
    pub fn run(self) -> ExitCode {
        let (setters, policies) = match self.setters() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        };
        if !self.path.is_dir() {
            eprintln!("error: --path {}: not a directory", self.path.display());
            return ExitCode::from(2);
        }
        let message = match self.message_inputs() {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        };
        // With a template, the message is rendered from a dry run first, so that a template that fails
        // leaves every file as it was.
        let mut commit_message = None;
        if let Some((template, automation, values)) = &message {
            let preview = match update_tree(&self.path, ".", &setters, false) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            match render_message(template, automation, values, &preview, &policies) {
                Ok(m) => commit_message = Some(m),
                Err(e) => {
                    let file = self.message_template.as_deref().unwrap_or(Path::new("-"));
                    eprintln!("error: --message-template {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            }
        }
        let result = match update_tree(&self.path, ".", &setters, !self.dry_run) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        if self.json {
            let mut v = serde_json::to_value(&result).expect("the result serialises");
            if let (Some(m), Some(obj)) = (&commit_message, v.as_object_mut()) {
                obj.insert("commitMessage".into(), m.clone().into());
            }
            println!("{}", serde_json::to_string_pretty(&v).expect("JSON prints"));
        } else {
            print_summary(&result, self.dry_run);
            if let Some(m) = &commit_message {
                println!("\ncommit message:\n{m}");
            }
        }
        for e in &result.errors {
            eprintln!("warning: {}: {} (left unchanged)", e.path, e.message);
        }
        ExitCode::SUCCESS
    }

    /// The template text, the automation's namespace and name, and the values, when a template is given.
    fn message_inputs(&self) -> anyhow::Result<Option<MessageInputs>> {
        let Some(file) = &self.message_template else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read --message-template {}", file.display()))?;
        let Some((ns, name)) = self
            .automation
            .split_once('/')
            .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
        else {
            bail!(
                "--automation \"{}\": expected NAMESPACE/NAME",
                self.automation
            );
        };
        let mut values = BTreeMap::new();
        for v in &self.values {
            let Some((k, val)) = v.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                bail!("--value \"{v}\": expected KEY=VALUE");
            };
            values.insert(k.to_string(), val.to_string());
        }
        // Parse now so that a template with a syntax error stops before anything is written.
        Template::parse(message::TEMPLATE_NAME, &text)
            .with_context(|| format!("--message-template {}", file.display()))?;
        Ok(Some((text, (ns.to_string(), name.to_string()), values)))
    }

    fn setters(&self) -> anyhow::Result<(Setters, Vec<PolicyImage>)> {
        let mut images = Vec::new();
        for p in &self.policies {
            images.push(parse_policy_arg(p)?);
        }
        if let Some(file) = &self.policies_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read policies file {}", file.display()))?;
            images.extend(
                policies_from_yaml(&text)
                    .with_context(|| format!("policies file {}", file.display()))?,
            );
        }
        if images.is_empty() {
            bail!("no policies: give --policy NS:NAME=IMAGE[:TAG][@DIGEST] or --policies FILE");
        }
        Ok((Setters::from_policies(&images), images))
    }
}

/// The template, the automation (namespace, name) and the values.
type MessageInputs = (String, (String, String), BTreeMap<String, String>);

fn render_message(
    template: &str,
    (namespace, name): &(String, String),
    values: &BTreeMap<String, String>,
    result: &UpdateResult,
    policies: &[PolicyImage],
) -> Result<String, tagpilot_core::template::TemplateError> {
    message::render(
        Some(template),
        &MessageInput {
            namespace,
            name,
            result,
            policies,
            values,
        },
    )
}

fn print_summary(result: &UpdateResult, dry_run: bool) {
    if dry_run {
        for f in &result.files {
            print!("{}", unified_diff(f));
        }
        return;
    }
    for (file, object, change) in result.changes() {
        let o = &object.object;
        let id: Vec<&str> = [o.kind.as_str(), o.namespace.as_str(), o.name.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let what = if id.is_empty() {
            String::new()
        } else {
            format!(" {}", id.join("/"))
        };
        println!(
            "{}{what}: {} -> {} ({})",
            file.path, change.old_value, change.new_value, change.setter
        );
    }
    let n = result.files.len();
    match n {
        0 => println!("no changes"),
        1 => println!("1 file updated"),
        _ => println!("{n} files updated"),
    }
}

/// `NAMESPACE:NAME=IMAGE[:TAG][@DIGEST]`.
fn parse_policy_arg(arg: &str) -> anyhow::Result<PolicyImage> {
    let Some((policy, reference)) = arg.split_once('=') else {
        bail!("--policy \"{arg}\": expected NAMESPACE:NAME=IMAGE[:TAG][@DIGEST]");
    };
    let Some((namespace, name)) = policy
        .split_once(':')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains(':'))
    else {
        bail!("--policy \"{arg}\": the policy must be NAMESPACE:NAME, got \"{policy}\"");
    };
    let (image, tag, digest) = PolicyImage::split_reference(reference);
    if image.is_empty() {
        bail!("--policy \"{arg}\": no image after '='");
    }
    Ok(PolicyImage {
        namespace: namespace.into(),
        name: name.into(),
        image,
        tag,
        digest,
    })
}

#[derive(Deserialize)]
struct Object {
    kind: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    status: ImagePolicyStatus,
    #[serde(default)]
    items: Vec<Object>,
}

#[derive(Default, Deserialize)]
struct Metadata {
    name: Option<String>,
    namespace: Option<String>,
}

/// The resolved ImagePolicies in a YAML stream (objects or `List`s); policies without a latest image are
/// skipped, as the automation skips them.
fn policies_from_yaml(text: &str) -> anyhow::Result<Vec<PolicyImage>> {
    let mut out = Vec::new();
    for (n, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let Some(obj) =
            Option::<Object>::deserialize(de).with_context(|| format!("document {}", n + 1))?
        else {
            continue;
        };
        let objects = if obj.kind.as_deref() == Some("List") || !obj.items.is_empty() {
            obj.items
        } else {
            vec![obj]
        };
        for o in objects {
            if o.kind.as_deref().is_some_and(|k| k != "ImagePolicy") {
                continue;
            }
            let name = o
                .metadata
                .name
                .context("an ImagePolicy without metadata.name")?;
            let namespace = o.metadata.namespace.unwrap_or_else(|| "default".into());
            // The automation's reading of a policy's status (v1 `latestRef`, else v1beta2 `latestImage`).
            let Some(latest) = o.status.latest() else {
                continue;
            };
            out.push(latest.policy_image(&namespace, &name));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_arguments() {
        let p =
            parse_policy_arg("flux-system:podinfo=localhost:5000/podinfo:5.0.3@sha256:ab").unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.name.as_str()),
            ("flux-system", "podinfo")
        );
        assert_eq!(
            (p.image.as_str(), p.tag.as_str(), p.digest.as_deref()),
            ("localhost:5000/podinfo", "5.0.3", Some("sha256:ab"))
        );
        for bad in [
            "podinfo=img:1",
            "flux-system:podinfo",
            ":p=img",
            "a:b:c=img:1",
            "a:b=",
        ] {
            assert!(parse_policy_arg(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policies_from_kubectl_output() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: image.toolkit.fluxcd.io/v1\n  kind: ImagePolicy\n  \
                    metadata: {name: a, namespace: ns}\n  status:\n    latestRef: {name: img/a, tag: 1.0.0}\n\
                    - kind: ImagePolicy\n  metadata: {name: unresolved, namespace: ns}\n---\n\
                    apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata: {name: b, namespace: ns}\n\
                    status: {latestImage: 'reg:5000/img/b:2.0'}\n";
        let p = policies_from_yaml(text).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].reference(), "img/a:1.0.0");
        assert_eq!(p[1].reference(), "reg:5000/img/b:2.0");
    }
}
