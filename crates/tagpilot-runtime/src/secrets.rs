//! Secrets named by an object's spec, read for one reconcile (never cached, never logged); the failure that
//! names the field is the core's ([`tagpilot_core::lookup::secret`]).

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tagpilot_core::registry::secrets::SecretData;

/// The data of the Secret `namespace/name` (`data` decoded, `stringData` merged), `None` when it does not exist.
pub async fn secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Option<SecretData>, kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    Ok(api.get_opt(name).await?.map(|secret| {
        let mut data: SecretData = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        for (k, v) in secret.string_data.unwrap_or_default() {
            data.entry(k).or_insert_with(|| v.into_bytes());
        }
        data
    }))
}
