//! Google Artifact Registry and GCR login without a stored key: an access token from the metadata server (GKE
//! Workload Identity, the node's service account), or from a workload identity federation credential file
//! (`GOOGLE_APPLICATION_CREDENTIALS` of type `external_account`: STS token exchange, then optional service
//! account impersonation). The registry login is `oauth2accesstoken` and the token.
//!
//! `GCE_METADATA_HOST` (`host:port`) points at another metadata server, as Google's libraries allow.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::{CloudError, Env};
use crate::registry::Credentials;

fn err(step: &'static str, message: impl Into<String>) -> CloudError {
    CloudError {
        provider: "gcp",
        step,
        message: message.into(),
    }
}

static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:[a-z]+\.)?gcr\.io|[a-z0-9-]+-docker\.pkg\.dev)(?::[0-9]+)?$")
        .expect("a valid pattern")
});

/// Whether `host` is GCR (`gcr.io`, `eu.gcr.io`, ...) or Artifact Registry (`<location>-docker.pkg.dev`).
pub fn is_registry(host: &str) -> bool {
    HOST.is_match(host)
}

/// Registry credentials from the workload's Google identity.
pub async fn login(
    http: &reqwest::Client,
    env: &Env,
) -> Result<(Credentials, Duration), CloudError> {
    let (token, lifetime) = match env.get("GOOGLE_APPLICATION_CREDENTIALS") {
        Some(file) => federated(http, file).await?,
        None => metadata(http, env).await?,
    };
    Ok((
        Credentials::Basic {
            username: "oauth2accesstoken".into(),
            password: token,
        },
        lifetime,
    ))
}

async fn metadata(http: &reqwest::Client, env: &Env) -> Result<(String, Duration), CloudError> {
    const STEP: &str = "metadata server token";
    let host = env
        .get("GCE_METADATA_HOST")
        .unwrap_or("metadata.google.internal");
    let url = format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token");
    let body = super::answer(
        http.get(&url)
            .header("Metadata-Flavor", "Google")
            .timeout(Duration::from_secs(5)),
        &url,
        "gcp",
        STEP,
        &[],
    )
    .await?;
    token_of(&body, "access_token", STEP)
}

/// The token at `field` of a token answer and its lifetime (`expires_in`, at most 12 hours).
pub fn token_of(
    body: &serde_json::Value,
    field: &str,
    step: &'static str,
) -> Result<(String, Duration), CloudError> {
    let token = body[field]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| err(step, format!("the answer has no {field}")))?;
    let lifetime = body["expires_in"].as_u64().unwrap_or(3600).min(12 * 3600);
    Ok((token.to_string(), Duration::from_secs(lifetime)))
}

async fn federated(http: &reqwest::Client, file: &str) -> Result<(String, Duration), CloudError> {
    const STEP: &str = "workload identity federation (STS token exchange)";
    let config: serde_json::Value = std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| err(STEP, format!("cannot read the credential file {file}")))?;
    if config["type"] != "external_account" {
        return Err(err(
            STEP,
            format!("{file}: type {:?} is not external_account", config["type"]),
        ));
    }
    let source = config["credential_source"]["file"]
        .as_str()
        .ok_or_else(|| err(STEP, format!("{file}: credential_source.file is missing")))?;
    let subject = std::fs::read_to_string(source)
        .map_err(|e| err(STEP, format!("cannot read the subject token {source}: {e}")))?;
    let token_url = config["token_url"]
        .as_str()
        .unwrap_or("https://sts.googleapis.com/v1/token");
    let body = super::answer(
        http.post(token_url).form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("audience", config["audience"].as_str().unwrap_or_default()),
            ("scope", "https://www.googleapis.com/auth/cloud-platform"),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            (
                "subject_token_type",
                config["subject_token_type"]
                    .as_str()
                    .unwrap_or("urn:ietf:params:oauth:token-type:jwt"),
            ),
            ("subject_token", subject.trim()),
        ]),
        token_url,
        "gcp",
        STEP,
        &["/error_description"],
    )
    .await?;
    let (federated, lifetime) = token_of(&body, "access_token", STEP)?;
    let Some(impersonate) = config["service_account_impersonation_url"].as_str() else {
        return Ok((federated, lifetime));
    };
    const IMPERSONATE: &str = "service account impersonation";
    let body = super::answer(
        http.post(impersonate).bearer_auth(&federated).json(
            &serde_json::json!({"scope": ["https://www.googleapis.com/auth/cloud-platform"]}),
        ),
        impersonate,
        "gcp",
        IMPERSONATE,
        &["/error/message"],
    )
    .await?;
    let token = body["accessToken"]
        .as_str()
        .ok_or_else(|| err(IMPERSONATE, "the answer has no accessToken"))?;
    Ok((token.to_string(), lifetime))
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_hosts() {
        for h in [
            "gcr.io",
            "eu.gcr.io",
            "us-docker.pkg.dev",
            "europe-west1-docker.pkg.dev",
        ] {
            assert!(super::is_registry(h), "{h}");
        }
        for h in ["ghcr.io", "docker.pkg.dev", "gcr.io.evil.com", "pkg.dev"] {
            assert!(!super::is_registry(h), "{h}");
        }
    }
}
