//! Registry access for an ImageRepository: reads the Secrets and the ServiceAccount its spec names and turns
//! them into credentials and transport settings (with `tagpilot_core::registry::secrets`).

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use tagpilot_core::api::conditions::reason;
use tagpilot_core::api::{ImageRepository, LocalObjectReference};
use tagpilot_core::registry::secrets::{self, SecretData, SecretSource};
use tagpilot_core::registry::{Credentials, ImageName, Transport};

use crate::context::Context;
use tagpilot_runtime::Failure;
use tagpilot_runtime::secrets::secret;

/// Credentials and transport for scanning `image` as `repo`'s spec says.
pub async fn registry_access(
    ctx: &Context,
    repo: &ImageRepository,
    namespace: &str,
    image: &ImageName,
) -> Result<(Credentials, Transport), Failure> {
    let spec = &repo.spec;
    let transport = transport(ctx, repo, namespace).await?;
    // A cloud login: spec.provider, or an --*-autologin-* flag for a cloud registry without provider or secret.
    let provider = match spec.provider.as_deref() {
        Some(p @ ("aws" | "gcp" | "azure")) => Some(p),
        None | Some("generic") if spec.secret_ref.is_none() => {
            match tagpilot_core::cloud::provider_of(&image.registry) {
                Some("aws") if ctx.options.autologin.aws => Some("aws"),
                Some("gcp") if ctx.options.autologin.gcp => Some("gcp"),
                Some("azure") if ctx.options.autologin.azure => Some("azure"),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(p) = provider {
        let credentials = ctx
            .cloud_logins
            .credentials_for(
                p,
                &ctx.cloud_http,
                &tagpilot_core::cloud::Env::process(),
                &image.registry,
            )
            .await
            .map_err(|e| Failure {
                reason: reason::AUTHENTICATION_FAILED,
                message: format!("spec.provider {p}: {e}"),
                stalled: false,
            })?;
        return Ok((credentials, transport));
    }
    let mut pull: Vec<(String, String, SecretData)> = Vec::new();
    if let Some(r) = &spec.secret_ref {
        let data = secret(
            &ctx.client,
            namespace,
            &r.name,
            "spec.secretRef",
            reason::AUTHENTICATION_FAILED,
        )
        .await?;
        pull.push((
            format!("{namespace}/{}", r.name),
            "spec.secretRef".into(),
            data,
        ));
    }
    // spec.serviceAccountName, else --default-service-account.
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(ctx.options.default_service_account.as_deref())
    {
        let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
        let account = api.get_opt(sa).await.map_err(|e| Failure {
            reason: reason::AUTHENTICATION_FAILED,
            message: format!(
                "cannot read ServiceAccount '{namespace}/{sa}' (spec.serviceAccountName): {e}"
            ),
            stalled: false,
        })?;
        let account = account.ok_or_else(|| Failure {
            reason: reason::AUTHENTICATION_FAILED,
            message: format!(
                "ServiceAccount '{namespace}/{sa}' (spec.serviceAccountName) not found"
            ),
            stalled: false,
        })?;
        let field = format!("imagePullSecrets of ServiceAccount '{sa}'");
        for s in account.image_pull_secrets.unwrap_or_default() {
            let name = s.name;
            let data = secret(
                &ctx.client,
                namespace,
                &name,
                &field,
                reason::AUTHENTICATION_FAILED,
            )
            .await?;
            pull.push((format!("{namespace}/{name}"), field.clone(), data));
        }
    }
    let sources: Vec<SecretSource<'_>> = pull
        .iter()
        .map(|(secret, field, data)| SecretSource {
            secret,
            field,
            data,
        })
        .collect();
    let credentials = secrets::credentials(&sources, &image.registry).map_err(|e| Failure {
        reason: reason::AUTHENTICATION_FAILED,
        message: e.to_string(),
        stalled: false,
    })?;
    Ok((credentials, transport))
}

/// The transport (CA, client certificate, proxy, insecure) of `repo`'s spec.
async fn transport(
    ctx: &Context,
    repo: &ImageRepository,
    namespace: &str,
) -> Result<Transport, Failure> {
    let spec = &repo.spec;

    let cert = optional_secret(
        ctx,
        namespace,
        spec.cert_secret_ref.as_ref(),
        "spec.certSecretRef",
    )
    .await?;
    let proxy = optional_secret(
        ctx,
        namespace,
        spec.proxy_secret_ref.as_ref(),
        "spec.proxySecretRef",
    )
    .await?;
    let transport = secrets::repository_transport(
        cert.as_ref(),
        proxy.as_ref(),
        spec.insecure.unwrap_or(false),
    )
    .map_err(|e| Failure {
        reason: reason::FAILURE,
        message: e.to_string(),
        stalled: false,
    })?;
    Ok(transport)
}

/// The `namespace/name` and data of the Secret an optional reference names.
async fn optional_secret(
    ctx: &Context,
    namespace: &str,
    reference: Option<&LocalObjectReference>,
    field: &str,
) -> Result<Option<(String, SecretData)>, Failure> {
    let Some(r) = reference else {
        return Ok(None);
    };
    let data = secret(&ctx.client, namespace, &r.name, field, reason::FAILURE).await?;
    Ok(Some((format!("{namespace}/{}", r.name), data)))
}
