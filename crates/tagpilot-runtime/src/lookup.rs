//! The controllers' [`Lookup`]: the objects a core decision reads, from the API server.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::ListParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use tagpilot_core::api::{GitRepository, ImagePolicy, ImageRepository, LabelSelector};
use tagpilot_core::lookup::{Lookup, LookupError};
use tagpilot_core::registry::secrets::SecretData;

/// Reads through the API client (Secrets are read for one reconcile, never cached or logged), and
/// ImageRepositories from a watch cache when one is given.
#[derive(Clone)]
pub struct KubeLookup {
    client: Client,
    repositories: Arc<OnceLock<Store<ImageRepository>>>,
}

impl KubeLookup {
    /// A lookup through `client`.
    pub fn new(client: Client) -> KubeLookup {
        KubeLookup {
            client,
            repositories: Arc::default(),
        }
    }

    /// Reads ImageRepositories from `cache` (a GET only for one it does not hold). The cache must be the one
    /// fed by the watch that wakes the readers (ImagePolicies): an event is applied to it before it is
    /// passed on, so a woken policy never reads an older repository than the one that woke it.
    pub fn cache_repositories(&self, cache: Store<ImageRepository>) {
        let _ = self.repositories.set(cache);
    }
}

fn failed(e: kube::Error) -> LookupError {
    LookupError(e.to_string())
}

impl Lookup for KubeLookup {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, LookupError> {
        crate::secrets::secret_data(&self.client, namespace, name)
            .await
            .map_err(failed)
    }

    async fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, LookupError> {
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
            Api::namespaced(self.client.clone(), namespace);
        Ok(api.get_opt(name).await.map_err(failed)?.map(|cm| {
            let mut data: SecretData = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            for (k, v) in cm.binary_data.unwrap_or_default() {
                data.insert(k, v.0);
            }
            data
        }))
    }

    async fn image_pull_secrets(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> Result<Option<Vec<String>>, LookupError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        Ok(api
            .get_opt(service_account)
            .await
            .map_err(failed)?
            .map(|sa| {
                sa.image_pull_secrets
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| s.name)
                    .collect()
            }))
    }

    async fn namespace_labels(
        &self,
        namespace: &str,
    ) -> Result<Option<BTreeMap<String, String>>, LookupError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        Ok(api
            .get_opt(namespace)
            .await
            .map_err(failed)?
            .map(|n| n.labels().clone()))
    }

    async fn image_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ImageRepository>, LookupError> {
        if let Some(cached) = self
            .repositories
            .get()
            .and_then(|c| c.get(&ObjectRef::new(name).within(namespace)))
        {
            return Ok(Some(cached.as_ref().clone()));
        }
        let api: Api<ImageRepository> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(failed)
    }

    async fn git_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<GitRepository>, LookupError> {
        let api: Api<GitRepository> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(failed)
    }

    async fn image_policies(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<Vec<ImagePolicy>, LookupError> {
        let query = selector
            .to_query()
            .map_err(|e| LookupError(format!("spec.policySelector: {e}")))?;
        let api: Api<ImagePolicy> = Api::namespaced(self.client.clone(), namespace);
        Ok(api
            .list(&ListParams::default().labels(&query))
            .await
            .map_err(failed)?
            .items)
    }
}
