//! `tagpilot install --export` prints exactly the objects of `config/default` (namespace, CRDs, RBAC,
//! Deployments, Services), in the order kustomize lists them.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

fn docs(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The objects of a kustomization directory, resources in order (directories recursively).
fn kustomize(dir: &Path) -> Vec<Value> {
    let k = &docs(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())[0];
    let mut out = Vec::new();
    for r in k["resources"].as_array().unwrap() {
        let p = dir.join(r.as_str().unwrap());
        if p.is_dir() {
            out.extend(kustomize(&p));
        } else {
            out.extend(docs(&std::fs::read_to_string(p).unwrap()));
        }
    }
    out
}

#[test]
fn install_export_is_config_default() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_tagpilot"))
        .args(["install", "--export"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let exported = docs(&String::from_utf8(out.stdout).unwrap());
    let config = kustomize(&root.join("config/default"));
    assert_eq!(exported.len(), config.len());
    for (e, c) in exported.iter().zip(&config) {
        assert_eq!(e, c, "{} {}", e["kind"], e["metadata"]["name"]);
    }
    let kinds: Vec<&str> = exported
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "Deployment").count(), 2);
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "CustomResourceDefinition")
            .count(),
        3
    );

    let other = Command::new(env!("CARGO_BIN_EXE_tagpilot"))
        .args(["install", "--export", "-n", "images", "--with-source-crd"])
        .output()
        .unwrap();
    let other = docs(&String::from_utf8(other.stdout).unwrap());
    assert_eq!(other.len(), config.len() + 1, "the GitRepository CRD");
    assert!(
        other
            .iter()
            .filter(|o| o["metadata"]["namespace"].is_string())
            .all(|o| o["metadata"]["namespace"] == "images")
    );
}
