//! Flux's API (`image.toolkit.fluxcd.io`, and the `source.toolkit.fluxcd.io` GitRepository fields the automation
//! reads) as Rust types, and the CustomResourceDefinitions generated from them.
//!
//! Versions: every kind is served as `v1beta1`, `v1beta2` and `v1`; `v1` is stored. All versions share one
//! schema (the union of the fields of the three versions, e.g. an ImagePolicy status carries both v1's
//! `latestRef` and v1beta2's `latestImage`), so the API server converts with strategy `None`: an object written
//! in any version reads back whole in every other. The controllers write the fields of every version.
//!
//! Types are the `v1` shape; [`crd`] builds the multi-version CRDs (`cargo run -p tagpilot-crdgen`).

pub mod conditions;
pub mod crd;
pub mod duration;
mod gates;
mod git_repository;
mod image_policy;
mod image_repository;
mod image_update_automation;
pub mod install;
mod pull_request;
mod receiver;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use conditions::Condition;
pub use gates::{ImageAgeSource, ImageVerification, NewestBuildPolicy, OidcIdentityMatch};
pub use git_repository::{GitRepository, GitRepositoryRef, GitRepositorySpec, GitRepositoryStatus};
pub use image_policy::{
    AlphabeticalPolicy, DigestReflectionPolicy, ImagePolicy, ImagePolicyChoice, ImagePolicySpec,
    ImagePolicyStatus, ImageRef, NumericalPolicy, PolicySpecError, SemVerPolicy, TagFilterSpec,
};
pub use image_repository::{
    AccessFrom, CheckedRepository, ImageRepository, ImageRepositorySpec, ImageRepositoryStatus,
    InvalidRepository, NamespaceSelector, ScanDue, ScanResultStatus,
};
pub use image_update_automation::{
    CheckedAutomation, CommitSpec, CommitUser, CrossNamespaceSourceReference, GitCheckoutSpec,
    GitSpec, ImageUpdateAutomation, ImageUpdateAutomationSpec, ImageUpdateAutomationStatus,
    InvalidAutomation, LabelSelector, LabelSelectorRequirement, PushSpec, SelectorError,
    SettlingPolicies, SigningKey, UpdateStrategy,
};
pub use pull_request::{PullRequestRef, PullRequestSpec};
pub use receiver::{Receiver, ReceiverResource, ReceiverSpec, ReceiverStatus};

/// The status fields tagpilot writes that Flux's `v1` CRDs do not declare, by kind (v1beta1/v1beta2 fields
/// kept for readers of those versions). On Flux's own CRDs a status write leaves them out
/// (`tagpilot_runtime::schema`).
pub const BEYOND_FLUX_V1: &[(&str, &[&str])] = &[
    ("ImagePolicy", &["latestImage", "observedPreviousImage"]),
    ("ImageUpdateAutomation", &["settling", "pullRequests"]),
    ("Receiver", &["url"]),
];

/// The API group of the image kinds.
pub const GROUP: &str = "image.toolkit.fluxcd.io";
/// The API group of GitRepository.
pub const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
/// The API group of Receiver.
pub const NOTIFICATION_GROUP: &str = "notification.toolkit.fluxcd.io";
/// The served versions of the image kinds, oldest first; the last is stored.
pub const VERSIONS: &[&str] = &["v1beta1", "v1beta2", "v1"];
/// The annotation that asks for a reconcile now (`flux reconcile`); its value is echoed in
/// `status.lastHandledReconcileAt`.
pub const REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// An object's `reconcile.fluxcd.io/requestedAt` annotation, if set.
pub fn requested_at(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(REQUESTED_AT_ANNOTATION)
        .map(String::as_str)
}
/// Flux's finalizer, on objects whose deletion needs cleaning up (stored tags).
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// A reference to an object in the same namespace (`secretRef`, `certSecretRef`, `proxySecretRef`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectReference {
    /// Name of the referent.
    pub name: String,
}

/// A reference to an object, in the referrer's namespace unless `namespace` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NamespacedObjectReference {
    /// Name of the referent.
    pub name: String,
    /// Namespace of the referent; the referrer's when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Labels to match (`matchLabels`).
pub type Labels = BTreeMap<String, String>;
