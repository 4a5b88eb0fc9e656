//! The objects a decision reads, through one small trait with two implementations: the API server (the
//! controllers, `tagpilot_runtime::lookup`) and the manifests of `tagpilot run`. The decisions themselves
//! ([`crate::registry::access`], [`crate::policy::evaluate`], [`crate::automation::inputs`]) are written once,
//! so the two drivers give the same reasons and messages. [`secret`] reads a Secret an object names, as the
//! failure both drivers report when it is missing.

use std::collections::BTreeMap;
use std::future::Future;

use crate::api::{GitRepository, ImagePolicy, ImageRepository, LabelSelector};
use crate::failure::Failure;
use crate::registry::secrets::SecretData;

/// An object could not be read (not "does not exist", which is `Ok(None)`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// Reads the objects a decision needs. Every method answers `Ok(None)` for an object that does not exist.
pub trait Lookup: Sync {
    /// The data of a Secret (`data` decoded, `stringData` merged).
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<SecretData>, LookupError>> + Send;

    /// The data of a ConfigMap (`data` as bytes, `binaryData` merged).
    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<SecretData>, LookupError>> + Send;

    /// The names of a ServiceAccount's `imagePullSecrets`.
    fn image_pull_secrets(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> impl Future<Output = Result<Option<Vec<String>>, LookupError>> + Send;

    /// A Namespace's labels (for `spec.accessFrom`).
    fn namespace_labels(
        &self,
        namespace: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, String>>, LookupError>> + Send;

    /// An ImageRepository, with its status (its last scan).
    fn image_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ImageRepository>, LookupError>> + Send;

    /// A GitRepository.
    fn git_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<GitRepository>, LookupError>> + Send;

    /// The ImagePolicies of a namespace that `selector` (checked by
    /// [`LabelSelector::to_query`]) picks, with their status.
    fn image_policies(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> impl Future<Output = Result<Vec<ImagePolicy>, LookupError>> + Send;
}

/// The data of the Secret `namespace/name`, which the object's `field` names. A missing or unreadable Secret
/// is a [`Failure`] with `fail_reason`, naming the Secret and the field.
pub async fn secret<L: Lookup>(
    lookup: &L,
    namespace: &str,
    name: &str,
    field: &str,
    fail_reason: &'static str,
) -> Result<SecretData, Failure> {
    lookup
        .secret(namespace, name)
        .await
        .map_err(|e| {
            Failure::retry(
                fail_reason,
                format!("cannot read secret '{namespace}/{name}' ({field}): {e}"),
            )
        })?
        .ok_or_else(|| {
            Failure::retry(
                fail_reason,
                format!("secret '{namespace}/{name}' ({field}) not found"),
            )
        })
}
