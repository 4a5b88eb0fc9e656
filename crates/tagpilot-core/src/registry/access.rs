//! How to reach an ImageRepository's registry, decided once for both drivers: a cloud login (`spec.provider`,
//! or an autologin flag for a cloud registry named without provider or secret), else the pull secrets of
//! `spec.secretRef` and of the ServiceAccount (`spec.serviceAccountName`, else the default one); and the
//! transport from `spec.certSecretRef`, `spec.proxySecretRef` and `spec.insecure`.

use crate::api::conditions::reason;
use crate::api::{ImageRepository, LocalObjectReference};
use crate::cloud::{Env, Logins};
use crate::failure::Failure;
use crate::lookup::{Lookup, secret};
use crate::registry::secrets::{self, SecretData, SecretSource};
use crate::registry::{Credentials, ImageName, Transport};

/// Which cloud registries log in with the workload identity when an ImageRepository names neither provider
/// nor secret (Flux's `--aws-autologin-for-ecr`, `--gcp-autologin-for-gcr`, `--azure-autologin-for-acr`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Autologin {
    /// ECR.
    pub aws: bool,
    /// GCR and Artifact Registry.
    pub gcp: bool,
    /// ACR.
    pub azure: bool,
}

/// What registry access needs beyond the objects: the driver's settings and its cloud login cache.
pub struct AccessSettings<'a> {
    /// The autologin flags.
    pub autologin: Autologin,
    /// `--default-service-account`: whose imagePullSecrets serve repositories without `serviceAccountName`.
    pub default_service_account: Option<&'a str>,
    /// Cloud logins, cached.
    pub logins: &'a Logins,
    /// The HTTP client of the cloud token endpoints.
    pub http: &'a reqwest::Client,
    /// The environment the cloud identity comes from.
    pub env: &'a Env,
}

/// Credentials and transport for scanning `image` as `repo`'s spec says.
pub async fn access<L: Lookup>(
    lookup: &L,
    settings: &AccessSettings<'_>,
    repo: &ImageRepository,
    image: &ImageName,
) -> Result<(Credentials, Transport), Failure> {
    let spec = &repo.spec;
    let namespace = repo.metadata.namespace.as_deref().unwrap_or("default");
    let transport = transport(lookup, repo, namespace).await?;
    let provider = match spec.provider.as_deref() {
        Some(p @ ("aws" | "gcp" | "azure")) => Some(p),
        None | Some("generic") if spec.secret_ref.is_none() => {
            match crate::cloud::provider_of(&image.registry) {
                Some("aws") if settings.autologin.aws => Some("aws"),
                Some("gcp") if settings.autologin.gcp => Some("gcp"),
                Some("azure") if settings.autologin.azure => Some("azure"),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(p) = provider {
        let credentials = settings
            .logins
            .credentials_for(p, settings.http, settings.env, &image.registry)
            .await
            .map_err(|e| {
                Failure::retry(
                    reason::AUTHENTICATION_FAILED,
                    format!("spec.provider {p}: {e}"),
                )
            })?;
        return Ok((credentials, transport));
    }
    let mut pull: Vec<(String, String, SecretData)> = Vec::new();
    if let Some(r) = &spec.secret_ref {
        let data = secret(
            lookup,
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
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(settings.default_service_account)
    {
        let fail = |message: String| Failure::retry(reason::AUTHENTICATION_FAILED, message);
        let names = lookup
            .image_pull_secrets(namespace, sa)
            .await
            .map_err(|e| {
                fail(format!(
                    "cannot read ServiceAccount '{namespace}/{sa}' (spec.serviceAccountName): {e}"
                ))
            })?
            .ok_or_else(|| {
                fail(format!(
                    "ServiceAccount '{namespace}/{sa}' (spec.serviceAccountName) not found"
                ))
            })?;
        let field = format!("imagePullSecrets of ServiceAccount '{sa}'");
        for name in names {
            let data = secret(
                lookup,
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
    let credentials = secrets::credentials(&sources, &image.registry)
        .map_err(|e| Failure::retry(reason::AUTHENTICATION_FAILED, e.to_string()))?;
    Ok((credentials, transport))
}

/// The transport (CA, client certificate, proxy, insecure) of `repo`'s spec.
async fn transport<L: Lookup>(
    lookup: &L,
    repo: &ImageRepository,
    namespace: &str,
) -> Result<Transport, Failure> {
    let spec = &repo.spec;
    let cert = optional_secret(
        lookup,
        namespace,
        spec.cert_secret_ref.as_ref(),
        "spec.certSecretRef",
    )
    .await?;
    let proxy = optional_secret(
        lookup,
        namespace,
        spec.proxy_secret_ref.as_ref(),
        "spec.proxySecretRef",
    )
    .await?;
    secrets::repository_transport(
        cert.as_ref(),
        proxy.as_ref(),
        spec.insecure.unwrap_or(false),
    )
    .map_err(|e| Failure::retry(reason::FAILURE, e.to_string()))
}

/// The `namespace/name` and data of the Secret an optional reference names.
async fn optional_secret<L: Lookup>(
    lookup: &L,
    namespace: &str,
    reference: Option<&LocalObjectReference>,
    field: &str,
) -> Result<Option<(String, SecretData)>, Failure> {
    let Some(r) = reference else {
        return Ok(None);
    };
    let data = secret(lookup, namespace, &r.name, field, reason::FAILURE).await?;
    Ok(Some((format!("{namespace}/{}", r.name), data)))
}
