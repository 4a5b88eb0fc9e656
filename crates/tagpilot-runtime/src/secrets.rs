//! Secrets named by an object's spec, read for one reconcile (never cached, never logged).

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use tagpilot_core::registry::secrets::SecretData;

use crate::Failure;

/// The data of the Secret `namespace/name` (`data` decoded, `stringData` merged), which the object's `field`
/// names. A missing or unreadable Secret is a [`Failure`] with `fail_reason`, naming the Secret and the field.
pub async fn secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    field: &str,
    fail_reason: &'static str,
) -> Result<SecretData, Failure> {
    let fail = |message: String| Failure {
        reason: fail_reason,
        message,
        stalled: false,
    };
    secret_data(client, namespace, name)
        .await
        .map_err(|e| {
            fail(format!(
                "cannot read secret '{namespace}/{name}' ({field}): {e}"
            ))
        })?
        .ok_or_else(|| fail(format!("secret '{namespace}/{name}' ({field}) not found")))
}

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
