//! The inputs of a run read from the cluster: the GitRepository and its Secrets (URL, credentials, proxy,
//! timeout, checkout ref), the signing key, and the policies the automation applies.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::ListParams;
use kube::{Api, ResourceExt};
use tagpilot_core::api::conditions::reason;
use tagpilot_core::api::{GitRepository, ImagePolicy, ImageRef, ImageUpdateAutomation, duration};
use tagpilot_core::automation::Source;
use tagpilot_core::git::{GitAuth, Signer};
use tagpilot_core::setters::PolicyImage;
use tagpilot_runtime::Failure;
use tagpilot_runtime::secrets::secret;

use crate::context::Context;

/// A GitRepository's default timeout (source-controller's).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

fn failure(reason: &'static str, message: String, stalled: bool) -> Failure {
    Failure {
        reason,
        message,
        stalled,
    }
}

/// The repository an automation names, with its credentials, and the git operations' timeout.
pub async fn resolve(
    ctx: &Context,
    auto: &ImageUpdateAutomation,
) -> Result<(Source, Duration), Failure> {
    let own = auto.namespace().unwrap_or_default();
    let r = &auto.spec.source_ref;
    let ns = auto.spec.source_namespace(&own);
    if ns != own && ctx.options.no_cross_namespace_refs {
        return Err(failure(
            reason::ACCESS_DENIED,
            format!(
                "spec.sourceRef: cannot access GitRepository '{ns}/{}': cross-namespace references are disabled (--no-cross-namespace-refs)",
                r.name
            ),
            true,
        ));
    }
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &ns);
    let repo = api
        .get_opt(&r.name)
        .await
        .map_err(|e| {
            failure(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!(
                    "cannot read GitRepository '{ns}/{}' (spec.sourceRef): {e}",
                    r.name
                ),
                false,
            )
        })?
        .ok_or_else(|| {
            failure(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!("GitRepository '{ns}/{}' (spec.sourceRef) not found", r.name),
                false,
            )
        })?;
    let spec = &repo.spec;
    let field = |f: &str| format!("spec.{f} of GitRepository '{ns}/{}'", r.name);
    let mut auth = match &spec.secret_ref {
        Some(s) => {
            let data = secret(
                &ctx.client,
                &ns,
                &s.name,
                &field("secretRef"),
                reason::INVALID_SOURCE_CONFIGURATION,
            )
            .await?;
            GitAuth::from_secret_data(&data).map_err(|e| {
                failure(
                    reason::INVALID_SOURCE_CONFIGURATION,
                    format!("secret '{ns}/{}' ({}): {e}", s.name, field("secretRef")),
                    false,
                )
            })?
        }
        None => GitAuth::default(),
    };
    if let Some(p) = &spec.proxy_secret_ref {
        let data = secret(
            &ctx.client,
            &ns,
            &p.name,
            &field("proxySecretRef"),
            reason::INVALID_SOURCE_CONFIGURATION,
        )
        .await?;
        auth.set_proxy_from_secret_data(&data).map_err(|e| {
            failure(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!(
                    "secret '{ns}/{}' ({}): {e}",
                    p.name,
                    field("proxySecretRef")
                ),
                false,
            )
        })?;
    }
    let timeout = match spec.timeout.as_deref() {
        Some(t) => duration::parse(t).map_err(|e| {
            failure(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!("{} {t:?}: {e}", field("timeout")),
                true,
            )
        })?,
        None => DEFAULT_TIMEOUT,
    };
    let source = Source {
        url: spec.url.clone(),
        checkout: auto.spec.checkout_ref(spec.reference.as_ref()),
        auth,
    };
    Ok((source, timeout))
}

/// The commit signer from `spec.git.commit.signingKey`, if any.
pub async fn signer(
    ctx: &Context,
    auto: &ImageUpdateAutomation,
) -> Result<Option<Signer>, Failure> {
    let Some(key) = auto
        .spec
        .git_spec
        .as_ref()
        .and_then(|g| g.commit.signing_key.as_ref())
    else {
        return Ok(None);
    };
    let ns = auto.namespace().unwrap_or_default();
    let data = secret(
        &ctx.client,
        &ns,
        &key.secret_ref.name,
        "spec.git.commit.signingKey.secretRef",
        reason::INVALID_SOURCE_CONFIGURATION,
    )
    .await?;
    let kind = key.type_.as_deref().unwrap_or("gpg");
    Signer::from_secret_data(kind, &data)
        .map(Some)
        .map_err(|e| {
            failure(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!(
                    "secret '{ns}/{}' (spec.git.commit.signingKey): {e}",
                    key.secret_ref.name
                ),
                false,
            )
        })
}

/// The policies the automation applies: those of its namespace that its selector picks and that have a
/// latest image; with the map written to `status.observedPolicies`.
pub async fn policies(
    ctx: &Context,
    auto: &ImageUpdateAutomation,
    selector: &str,
) -> Result<(Vec<PolicyImage>, BTreeMap<String, ImageRef>), Failure> {
    let ns = auto.namespace().unwrap_or_default();
    let api: Api<ImagePolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.code == 400 => failure(
                reason::INVALID_POLICY_SELECTOR,
                format!("spec.policySelector {selector:?}: {}", s.message),
                true,
            ),
            _ => failure(
                reason::FAILURE,
                format!("cannot list the ImagePolicies of namespace '{ns}': {e}"),
                false,
            ),
        })?;
    let mut images = Vec::new();
    let mut observed = BTreeMap::new();
    for p in list.items {
        let Some(latest) = latest_ref(&p) else {
            continue;
        };
        images.push(latest.policy_image(&ns, &p.name_any()));
        observed.insert(p.name_any(), latest);
    }
    Ok((images, observed))
}

/// A policy's latest image: v1's `latestRef`, else v1beta2's `latestImage` split.
fn latest_ref(p: &ImagePolicy) -> Option<ImageRef> {
    let status = p.status.as_ref()?;
    if let Some(r) = &status.latest_ref {
        return Some(r.clone());
    }
    let image = status.latest_image.as_deref()?;
    let (name, tag, digest) = PolicyImage::split_reference(image);
    Some(ImageRef { name, tag, digest })
}
