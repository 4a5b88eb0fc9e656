//! The objects `tagpilot run` works from, read from YAML files as written for a cluster (any served version),
//! and the Secrets they name, from the same files or from environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::ResourceExt;
use serde::de::DeserializeOwned;
use tagpilot_core::api::{GitRepository, ImagePolicy, ImageRepository, ImageUpdateAutomation};
use tagpilot_core::registry::secrets::SecretData;

/// The prefix of environment variables that provide Secret keys:
/// `TAGPILOT_SECRET_<NAMESPACE>_<NAME>_<KEY>`, upper case, every other character than a letter or digit as `_`.
const SECRET_ENV_PREFIX: &str = "TAGPILOT_SECRET_";

/// The keys Flux's objects read from Secrets, so that an environment variable's key maps back to its name.
const KNOWN_KEYS: &[&str] = &[
    ".dockerconfigjson",
    ".dockercfg",
    "username",
    "password",
    "bearerToken",
    "identity",
    "known_hosts",
    "ca.crt",
    "caFile",
    "tls.crt",
    "tls.key",
    "certFile",
    "keyFile",
    "git.asc",
    "passphrase",
    "address",
];

/// Objects read from the manifests.
#[derive(Default)]
pub struct Manifests {
    /// ImageRepositories.
    pub repositories: Vec<ImageRepository>,
    /// ImagePolicies.
    pub policies: Vec<ImagePolicy>,
    /// ImageUpdateAutomations.
    pub automations: Vec<ImageUpdateAutomation>,
    /// GitRepositories.
    pub sources: Vec<GitRepository>,
    /// Secrets, by `namespace/name`.
    pub secrets: BTreeMap<String, SecretData>,
    /// The `imagePullSecrets` of ServiceAccounts, by `namespace/name`.
    pub service_accounts: BTreeMap<String, Vec<String>>,
    /// ConfigMaps' data (`binaryData` merged), by `namespace/name`.
    pub config_maps: BTreeMap<String, SecretData>,
    /// The labels of Namespaces, by name.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Documents of other kinds that were skipped.
    pub skipped: usize,
}

/// `namespace/name` of an object (namespace `default` when not set, as kubectl applies it).
pub fn key_of<K: kube::Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.namespace().unwrap_or_else(|| "default".into()),
        obj.name_any()
    )
}

/// The YAML files of `paths`: files as given, directories walked (`*.yaml`, `*.yml`), sorted.
fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("--manifests {}", p.display()))?;
        if meta.is_file() {
            out.push(p.clone());
            continue;
        }
        let mut dirs = vec![p.clone()];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).with_context(|| format!("read {}", d.display()))? {
                let path = entry?.path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != ".git") {
                        dirs.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn parse<K: DeserializeOwned>(doc: serde_json::Value, at: &str) -> anyhow::Result<K> {
    serde_json::from_value(doc).with_context(|| at.to_string())
}

/// A Secret; an error names the key whose value is not a string (or the Secret), never a value (serde's
/// messages quote the value they could not read).
fn parse_secret(doc: serde_json::Value, at: &str) -> anyhow::Result<Secret> {
    for field in ["data", "stringData"] {
        if let Some(map) = doc.get(field).and_then(|m| m.as_object()) {
            for (key, value) in map {
                if !value.is_string() {
                    anyhow::bail!(
                        "{at}: {field}.{key} is not a string (quote it in the YAML; the value is not shown)"
                    );
                }
            }
        }
    }
    serde_json::from_value(doc)
        .map_err(|_| anyhow::anyhow!("{at}: not a valid Secret (the values are not shown)"))
}

/// Reads every object of the kinds `tagpilot run` uses from `paths`; other kinds are counted and skipped.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Manifests> {
    let mut m = Manifests::default();
    for file in files(paths)? {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        load_text(&mut m, &text, &file)?;
    }
    for (kind, keys) in [
        (
            "ImageRepository",
            m.repositories.iter().map(key_of).collect::<Vec<_>>(),
        ),
        ("ImagePolicy", m.policies.iter().map(key_of).collect()),
        (
            "ImageUpdateAutomation",
            m.automations.iter().map(key_of).collect(),
        ),
        ("GitRepository", m.sources.iter().map(key_of).collect()),
    ] {
        let mut seen = std::collections::BTreeSet::new();
        for k in keys {
            if !seen.insert(k.clone()) {
                bail!("{kind} '{k}' is defined twice in the manifests");
            }
        }
    }
    Ok(m)
}

fn load_text(m: &mut Manifests, text: &str, file: &Path) -> anyhow::Result<()> {
    use serde::Deserialize;
    for (i, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let at = format!("{} (document {})", file.display(), i + 1);
        let doc = serde_json::Value::deserialize(de).with_context(|| at.clone())?;
        if doc.is_null() {
            continue;
        }
        let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let at = format!(
            "{at}: {kind} '{}'",
            doc["metadata"]["name"].as_str().unwrap_or("?")
        );
        match (group, kind.as_str()) {
            ("image.toolkit.fluxcd.io", "ImageRepository") => {
                m.repositories.push(parse(doc, &at)?);
            }
            ("image.toolkit.fluxcd.io", "ImagePolicy") => m.policies.push(parse(doc, &at)?),
            ("image.toolkit.fluxcd.io", "ImageUpdateAutomation") => {
                m.automations.push(parse(doc, &at)?);
            }
            ("source.toolkit.fluxcd.io", "GitRepository") => m.sources.push(parse(doc, &at)?),
            ("", "Secret") => {
                let s = parse_secret(doc, &at)?;
                let mut data: SecretData = s
                    .data
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                for (k, v) in s.string_data.clone().unwrap_or_default() {
                    data.insert(k, v.into_bytes());
                }
                m.secrets.insert(key_of(&s), data);
            }
            ("", "ServiceAccount") => {
                let sa: ServiceAccount = parse(doc, &at)?;
                let names = sa
                    .image_pull_secrets
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| s.name)
                    .collect();
                m.service_accounts.insert(key_of(&sa), names);
            }
            ("", "ConfigMap") => {
                let cm: k8s_openapi::api::core::v1::ConfigMap = parse(doc, &at)?;
                let mut data: SecretData = cm
                    .data
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                for (k, v) in cm.binary_data.clone().unwrap_or_default() {
                    data.insert(k, v.0);
                }
                m.config_maps.insert(key_of(&cm), data);
            }
            ("", "Namespace") => {
                let ns: Namespace = parse(doc, &at)?;
                m.namespaces.insert(ns.name_any(), ns.labels().clone());
            }
            _ => m.skipped += 1,
        }
    }
    Ok(())
}

fn env_name(part: &str) -> String {
    part.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The environment variable that provides `key` of the Secret `namespace/name`.
#[cfg(test)]
pub fn secret_env_var(namespace: &str, name: &str, key: &str) -> String {
    format!(
        "{SECRET_ENV_PREFIX}{}_{}_{}",
        env_name(namespace),
        env_name(name),
        env_name(key)
    )
}

impl Manifests {
    /// The data of the Secret `namespace/name`: from the manifests, with keys from environment variables
    /// added or replaced. None when neither has it.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<SecretData> {
        self.secret_with_env(namespace, name, std::env::vars())
    }

    fn secret_with_env(
        &self,
        namespace: &str,
        name: &str,
        env: impl Iterator<Item = (String, String)>,
    ) -> Option<SecretData> {
        let mut data = self.secrets.get(&format!("{namespace}/{name}")).cloned();
        let prefix = format!(
            "{SECRET_ENV_PREFIX}{}_{}_",
            env_name(namespace),
            env_name(name)
        );
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(&prefix) else {
                continue;
            };
            let key = KNOWN_KEYS
                .iter()
                .find(|k| env_name(k) == rest)
                .map_or_else(|| rest.to_ascii_lowercase(), |k| k.to_string());
            data.get_or_insert_with(SecretData::new)
                .insert(key, value.into_bytes());
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE: &str = concat!(
        include_str!("../../../../../tests/e2e/manifests/flux-guide-v1beta1.yaml"),
        r#"---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
---
apiVersion: v1
kind: Secret
metadata:
  name: flux-system
  namespace: flux-system
stringData:
  username: git
data:
  password: czNjcmV0
"#
    );

    #[test]
    fn a_secret_value_that_is_not_a_string_is_named_by_key_never_echoed() {
        let mut m = Manifests::default();
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: ns\nstringData:\n  token: 8675309123\n";
        let e = format!(
            "{:#}",
            load_text(&mut m, text, Path::new("s.yaml")).unwrap_err()
        );
        assert!(e.contains("stringData.token is not a string"), "{e}");
        assert!(!e.contains("8675309123"), "{e}");
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  token: \"%%not-base64-8675309123\"\n";
        let e = format!(
            "{:#}",
            load_text(&mut m, text, Path::new("s.yaml")).unwrap_err()
        );
        assert!(!e.contains("8675309123"), "{e}");
    }

    #[test]
    fn reads_the_kinds_it_uses_in_any_version_and_skips_others() {
        let mut m = Manifests::default();
        load_text(&mut m, GUIDE, Path::new("guide.yaml")).unwrap();
        assert_eq!(m.repositories.len(), 1);
        assert_eq!(m.policies.len(), 1);
        assert_eq!(m.skipped, 1);
        assert_eq!(key_of(&m.repositories[0]), "flux-system/podinfo");
        let s = m.secrets.get("flux-system/flux-system").unwrap();
        assert_eq!(s["username"], b"git");
        assert_eq!(s["password"], b"s3cret");
    }

    #[test]
    fn secret_keys_from_the_environment() {
        let mut m = Manifests::default();
        load_text(&mut m, GUIDE, Path::new("guide.yaml")).unwrap();
        assert_eq!(
            secret_env_var("flux-system", "flux-system", "ca.crt"),
            "TAGPILOT_SECRET_FLUX_SYSTEM_FLUX_SYSTEM_CA_CRT"
        );
        let env = [
            (
                "TAGPILOT_SECRET_FLUX_SYSTEM_FLUX_SYSTEM_PASSWORD",
                "from-env",
            ),
            (
                "TAGPILOT_SECRET_FLUX_SYSTEM_FLUX_SYSTEM_KNOWN_HOSTS",
                "hosts",
            ),
            ("TAGPILOT_SECRET_APPS_REGCRED__DOCKERCONFIGJSON", "{}"),
            ("UNRELATED", "x"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let s = m
            .secret_with_env("flux-system", "flux-system", env.clone().into_iter())
            .unwrap();
        assert_eq!(s["password"], b"from-env");
        assert_eq!(s["known_hosts"], b"hosts");
        assert_eq!(s["username"], b"git");
        let r = m
            .secret_with_env("apps", "regcred", env.into_iter())
            .unwrap();
        assert_eq!(r[".dockerconfigjson"], b"{}");
        assert!(
            m.secret_with_env("apps", "none", std::iter::empty())
                .is_none()
        );
    }

    #[test]
    fn a_bad_object_names_file_document_and_object() {
        let mut m = Manifests::default();
        let e = load_text(
            &mut m,
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: p\nspec:\n  policy: 3\n",
            Path::new("bad.yaml"),
        )
        .unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("bad.yaml (document 1): ImagePolicy 'p'"),
            "{text}"
        );
    }
}
