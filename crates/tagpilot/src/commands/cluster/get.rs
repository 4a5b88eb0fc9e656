//! `tagpilot get image repository|policy|update [NAME]` and `get images all`: Flux's tables, or the objects as
//! YAML or JSON (`-o`).

use std::process::ExitCode;

use anyhow::bail;
use kube::api::{DynamicObject, ListParams};

use super::{ClusterArgs, Kind, explain, ready};

/// `get image ...`, `get images all`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Output: a table (default), yaml or json.
    #[arg(short = 'o', long, global = true)]
    output: Option<String>,
    #[command(subcommand)]
    what: GetWhat,
}

#[derive(Debug, clap::Subcommand)]
enum GetWhat {
    /// Image objects of one kind.
    #[command(subcommand)]
    Image(GetImage),
    /// Image objects of every kind.
    #[command(subcommand)]
    Images(GetImages),
    /// Webhook Receivers.
    Receivers(NameArg),
}

#[derive(Debug, clap::Subcommand)]
enum GetImage {
    /// ImageRepositories.
    Repository(NameArg),
    /// ImagePolicies.
    Policy(NameArg),
    /// ImageUpdateAutomations.
    Update(NameArg),
}

#[derive(Debug, clap::Subcommand)]
enum GetImages {
    /// ImageRepositories, ImagePolicies and ImageUpdateAutomations.
    All,
}

#[derive(Debug, clap::Args)]
struct NameArg {
    /// Only this object.
    name: Option<String>,
}

/// One table row's cells, as Flux shows them per kind.
fn row(kind: Kind, o: &DynamicObject) -> Vec<String> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let (status, message) = ready(o).unwrap_or_else(|| ("Unknown".into(), String::new()));
    let suspended = if o.data["spec"]["suspend"] == true {
        "True"
    } else {
        "False"
    }
    .to_string();
    let name = o.metadata.name.clone().unwrap_or_default();
    match kind {
        Kind::Repository => vec![
            name,
            s(&o.data["status"]["lastScanResult"]["scanTime"]),
            suspended,
            status,
            message,
        ],
        Kind::Policy => {
            let r = &o.data["status"]["latestRef"];
            let image = match (r["name"].as_str(), r["tag"].as_str()) {
                (Some(n), Some(t)) => format!("{n}:{t}"),
                _ => String::new(),
            };
            vec![name, image, status, message]
        }
        Kind::Update => vec![
            name,
            s(&o.data["status"]["lastAutomationRunTime"]),
            suspended,
            status,
            message,
        ],
        Kind::Receiver => vec![name, suspended, status, message],
    }
}

fn header(kind: Kind) -> Vec<&'static str> {
    match kind {
        Kind::Repository => vec!["NAME", "LAST SCAN", "SUSPENDED", "READY", "MESSAGE"],
        Kind::Policy => vec!["NAME", "LATEST IMAGE", "READY", "MESSAGE"],
        Kind::Update => vec!["NAME", "LAST RUN", "SUSPENDED", "READY", "MESSAGE"],
        Kind::Receiver => vec!["NAME", "SUSPENDED", "READY", "MESSAGE"],
    }
}

/// Lays out rows as Flux does: columns padded to the widest cell, separated by tabs after the padding.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:w$}\t", w = widths[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

impl GetArgs {
    /// Runs the command: 0 on success, 1 on failure.
    pub fn run(self) -> ExitCode {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        match runtime.block_on(self.get()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("✗ {e:#}");
                ExitCode::from(1)
            }
        }
    }

    async fn get(&self) -> anyhow::Result<()> {
        if let Some(o) = &self.output
            && o != "yaml"
            && o != "json"
        {
            bail!("-o {o:?}: expected yaml or json");
        }
        let (kinds, name) = match &self.what {
            GetWhat::Image(GetImage::Repository(n)) => (vec![Kind::Repository], n.name.clone()),
            GetWhat::Image(GetImage::Policy(n)) => (vec![Kind::Policy], n.name.clone()),
            GetWhat::Image(GetImage::Update(n)) => (vec![Kind::Update], n.name.clone()),
            GetWhat::Receivers(n) => (vec![Kind::Receiver], n.name.clone()),
            GetWhat::Images(GetImages::All) => {
                (vec![Kind::Repository, Kind::Policy, Kind::Update], None)
            }
        };
        let all = kinds.len() > 1;
        let client = self.cluster.client().await?;
        let ns = &self.cluster.namespace;
        let scope = (!self.cluster.all_namespaces).then_some(ns.as_str());
        let mut documents = Vec::new();
        let mut tables = Vec::new();
        for kind in kinds {
            let api = kind.api(&client, scope);
            let objects = match &name {
                Some(n) => match api.get(n).await {
                    Ok(o) => vec![o],
                    Err(e) => return Err(explain(&client, kind, ns, Some(n), e).await),
                },
                None => match api.list(&ListParams::default()).await {
                    Ok(l) => l.items,
                    Err(e) => return Err(explain(&client, kind, ns, None, e).await),
                },
            };
            if self.output.is_some() {
                for mut o in objects {
                    o.metadata.managed_fields = None;
                    documents.push(serde_json::to_value(&o)?);
                }
                continue;
            }
            if objects.is_empty() {
                continue;
            }
            let mut h = header(kind);
            let mut rows: Vec<Vec<String>> = objects
                .iter()
                .map(|o| {
                    let mut r = row(kind, o);
                    if all {
                        r[0] = format!("{}/{}", kind.kind().to_lowercase(), r[0]);
                    }
                    if self.cluster.all_namespaces {
                        r.insert(0, o.metadata.namespace.clone().unwrap_or_default());
                    }
                    r
                })
                .collect();
            rows.sort();
            if self.cluster.all_namespaces {
                h.insert(0, "NAMESPACE");
            }
            tables.push(table(&h, &rows));
        }
        match self.output.as_deref() {
            Some("json") => {
                let v = if documents.len() == 1 && name.is_some() {
                    documents.remove(0)
                } else {
                    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": documents})
                };
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            Some(_) => {
                for d in &documents {
                    print!("---\n{}", yaml_serde::to_string(d)?);
                }
            }
            None if tables.is_empty() => {
                eprintln!(
                    "✗ no image objects found in {}",
                    if self.cluster.all_namespaces {
                        "any namespace".to_string()
                    } else {
                        format!("the namespace '{ns}'")
                    }
                );
            }
            None => print!("{}", tables.join("\n")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_as_flux() {
        let t = table(
            &["NAME", "READY", "MESSAGE"],
            &[
                vec!["podinfo".into(), "True".into(), "ok".into()],
                vec!["a".into(), "False".into(), "scan failed".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME   \tREADY\tMESSAGE\npodinfo\tTrue \tok\na      \tFalse\tscan failed\n"
        );
    }
}
