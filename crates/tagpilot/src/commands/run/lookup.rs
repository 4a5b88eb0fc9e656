//! `tagpilot run`'s [`Lookup`]: the objects of the manifests, each with the status the state directory keeps
//! for it, so that the core's decisions read them as the controllers read the API server.

use std::collections::BTreeMap;

use tagpilot_core::api::{GitRepository, ImagePolicy, ImageRepository, LabelSelector};
use tagpilot_core::lookup::{Lookup, LookupError};
use tagpilot_core::registry::secrets::SecretData;

use super::manifests::{Manifests, key_of};
use super::state::State;

/// The manifests and the state, read-only.
pub struct ManifestLookup<'a> {
    /// The objects.
    pub manifests: &'a Manifests,
    /// Their statuses.
    pub state: &'a State,
}

impl Lookup for ManifestLookup<'_> {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, LookupError> {
        Ok(self.manifests.secret(namespace, name))
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, LookupError> {
        Ok(self
            .manifests
            .config_maps
            .get(&format!("{namespace}/{name}"))
            .cloned())
    }

    async fn image_pull_secrets(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> Result<Option<Vec<String>>, LookupError> {
        Ok(self
            .manifests
            .service_accounts
            .get(&format!("{namespace}/{service_account}"))
            .cloned())
    }

    async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<Option<BTreeMap<String, String>>, LookupError> {
        Ok(Some(
            self.manifests
                .namespaces
                .get(namespace)
                .cloned()
                .unwrap_or_default(),
        ))
    }

    async fn image_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ImageRepository>, LookupError> {
        let key = format!("{namespace}/{name}");
        Ok(self
            .manifests
            .repositories
            .iter()
            .find(|r| key_of(*r) == key)
            .map(|r| ImageRepository {
                status: self.state.repositories.get(&key).cloned(),
                ..r.clone()
            }))
    }

    async fn git_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<GitRepository>, LookupError> {
        let key = format!("{namespace}/{name}");
        Ok(self
            .manifests
            .sources
            .iter()
            .find(|s| key_of(*s) == key)
            .cloned())
    }

    async fn image_policies(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<Vec<ImagePolicy>, LookupError> {
        Ok(self
            .manifests
            .policies
            .iter()
            .filter(|p| {
                key_of(*p).split_once('/').map(|(ns, _)| ns) == Some(namespace)
                    && selector.matches(p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
            })
            .map(|p| ImagePolicy {
                status: self.state.policies.get(&key_of(p)).cloned(),
                ..p.clone()
            })
            .collect())
    }
}
