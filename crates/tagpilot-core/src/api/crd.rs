//! The CustomResourceDefinitions, generated from the types: every image kind served as `v1beta1`, `v1beta2`
//! and `v1` (stored) with one schema; GitRepository as `v1beta2` and `v1` (stored), shipped separately for
//! clusters without Flux's source-controller.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition,
};
use kube::CustomResourceExt;

use super::{GitRepository, ImagePolicy, ImageRepository, ImageUpdateAutomation, Receiver};

/// The directory (relative to the repository root) the CRDs are written to.
pub const CRD_DIR: &str = "config/crd";

/// A generated file: its path relative to the repository root, and its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrdFile {
    /// `config/crd/bases/image.toolkit.fluxcd.io_imagerepositories.yaml`, ...
    pub path: String,
    /// The YAML.
    pub yaml: String,
}

/// The three image CRDs.
pub fn image_crds() -> Vec<CustomResourceDefinition> {
    let repo_columns = None;
    let policy_v1beta = Some(vec![
        column("LatestImage", "string", ".status.latestImage"),
        column(
            "Ready",
            "string",
            ".status.conditions[?(@.type==\"Ready\")].status",
        ),
        column(
            "Status",
            "string",
            ".status.conditions[?(@.type==\"Ready\")].message",
        ),
        column("Age", "date", ".metadata.creationTimestamp"),
    ]);
    vec![
        multi_version(
            ImageRepository::crd(),
            &["v1beta1", "v1beta2"],
            repo_columns,
        ),
        multi_version(ImagePolicy::crd(), &["v1beta1", "v1beta2"], policy_v1beta),
        multi_version(ImageUpdateAutomation::crd(), &["v1beta1", "v1beta2"], None),
    ]
}

/// The GitRepository CRD (`v1beta2` and `v1`).
pub fn git_repository_crd() -> CustomResourceDefinition {
    multi_version(GitRepository::crd(), &["v1beta2"], None)
}

/// The Receiver CRD (`v1beta1`, `v1beta2` and `v1`), shipped separately as Flux's notification-controller
/// owns it where Flux is installed.
pub fn receiver_crd() -> CustomResourceDefinition {
    multi_version(Receiver::crd(), &["v1beta1", "v1beta2"], None)
}

/// Every CRD file, as `cargo run -p tagpilot-crdgen` writes them.
pub fn files() -> Vec<CrdFile> {
    let mut out: Vec<CrdFile> = image_crds()
        .into_iter()
        .map(|crd| CrdFile {
            path: format!("{CRD_DIR}/bases/{}.yaml", file_stem(&crd)),
            yaml: to_yaml(&crd),
        })
        .collect();
    let names: Vec<String> = out
        .iter()
        .map(|f| {
            f.path
                .trim_start_matches(&format!("{CRD_DIR}/"))
                .to_string()
        })
        .collect();
    out.push(CrdFile {
        path: format!("{CRD_DIR}/kustomization.yaml"),
        yaml: format!(
            "{HEADER}apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{}",
            names.iter().map(|n| format!("- {n}\n")).collect::<String>()
        ),
    });
    let git = git_repository_crd();
    out.push(CrdFile {
        path: format!("{CRD_DIR}/source/{}.yaml", file_stem(&git)),
        yaml: to_yaml(&git),
    });
    let receiver = receiver_crd();
    out.push(CrdFile {
        path: format!("{CRD_DIR}/notification/{}.yaml", file_stem(&receiver)),
        yaml: to_yaml(&receiver),
    });
    out
}

const HEADER: &str =
    "# Generated from the Rust types by `cargo run -p tagpilot-crdgen`; do not edit.\n";

fn file_stem(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}", crd.spec.group, crd.spec.names.plural)
}

/// A CRD as YAML with the generated-file header.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    let body = yaml_serde::to_string(crd).expect("a CRD serialises to YAML");
    format!("{HEADER}---\n{body}")
}

fn column(name: &str, type_: &str, path: &str) -> CustomResourceColumnDefinition {
    CustomResourceColumnDefinition {
        name: name.into(),
        type_: type_.into(),
        json_path: path.into(),
        ..Default::default()
    }
}

/// Adds older served versions with the stored version's schema (conversion strategy `None`), deprecated.
fn multi_version(
    mut crd: CustomResourceDefinition,
    older: &[&str],
    older_columns: Option<Vec<CustomResourceColumnDefinition>>,
) -> CustomResourceDefinition {
    let stored = crd.spec.versions[0].clone();
    let kind = crd.spec.names.kind.clone();
    let group = crd.spec.group.clone();
    let mut versions = Vec::new();
    for v in older {
        let mut version = stored.clone();
        version.name = v.to_string();
        version.storage = false;
        version.served = true;
        version.deprecated = Some(true);
        version.deprecation_warning = Some(format!(
            "{group}/{v} {kind} is deprecated, upgrade to {}",
            stored.name
        ));
        if let Some(cols) = &older_columns {
            version.additional_printer_columns = Some(cols.clone());
        }
        versions.push(version);
    }
    versions.push(stored);
    crd.spec.versions = versions;
    crd
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names, short names, categories, scope and the v1 printer columns are Flux's, as its CRDs
    /// (tests/data/flux-crds) declare them.
    #[test]
    fn names_and_columns_are_fluxs() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/flux-crds");
        for ours in image_crds() {
            let text =
                std::fs::read_to_string(dir.join(format!("{}.yaml", file_stem(&ours)))).unwrap();
            let flux: CustomResourceDefinition = yaml_serde::from_str(&text).unwrap();
            assert_eq!(ours.spec.names.short_names, flux.spec.names.short_names);
            assert_eq!(ours.spec.names.categories, flux.spec.names.categories);
            assert_eq!(ours.spec.scope, flux.spec.scope);
            let v1 = |c: &CustomResourceDefinition| {
                let v = c.spec.versions.iter().find(|v| v.name == "v1").unwrap();
                v.additional_printer_columns
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| (c.name, c.type_, c.json_path, c.priority))
                    .collect::<Vec<_>>()
            };
            assert_eq!(v1(&ours), v1(&flux), "{}", ours.spec.names.kind);
        }
    }

    #[test]
    fn every_image_kind_serves_three_versions_and_stores_v1() {
        for crd in image_crds() {
            let names: Vec<_> = crd.spec.versions.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(
                names,
                ["v1beta1", "v1beta2", "v1"],
                "{}",
                crd.spec.names.kind
            );
            let stored: Vec<_> = crd.spec.versions.iter().filter(|v| v.storage).collect();
            assert_eq!(stored.len(), 1);
            assert_eq!(stored[0].name, "v1");
            let schemas: Vec<_> = crd.spec.versions.iter().map(|v| &v.schema).collect();
            assert!(schemas.windows(2).all(|w| w[0] == w[1]), "one schema");
        }
    }

    #[test]
    fn schema_validates_what_flux_validates() {
        let yaml = to_yaml(&image_crds()[0]);
        assert!(yaml.contains("maxItems: 25"), "exclusionList max 25");
        assert!(yaml.contains("^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"));
        let policy = to_yaml(&image_crds()[1]);
        assert!(policy.contains("oneOf:"), "exactly one policy");
        assert!(policy.contains("latestRef:") && policy.contains("latestImage:"));
        assert!(policy.contains("- Never") && policy.contains("- IfNotPresent"));
    }
}
