//! Azure Container Registry login without a stored password: an Entra ID (AAD) token from workload identity
//! (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`, as AKS injects
//! them) or from the instance metadata service's managed identity, exchanged at
//! `https://<registry>/oauth2/exchange` for an ACR refresh token. The registry login is
//! `00000000-0000-0000-0000-000000000000` and that token.
//!
//! `AZURE_IMDS_ENDPOINT` points at another metadata service and `TAGPILOT_ACR_EXCHANGE_URL` at another exchange
//! endpoint (tests, private links).

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::{CloudError, Env};
use crate::registry::Credentials;

/// The user name of ACR logins with a refresh token.
pub const ACR_USER: &str = "00000000-0000-0000-0000-000000000000";

fn err(step: &'static str, message: impl Into<String>) -> CloudError {
    CloudError {
        provider: "azure",
        step,
        message: message.into(),
    }
}

static HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+\.azurecr\.(?:io|cn|de|us)(?::[0-9]+)?$").expect("a valid pattern")
});

/// Whether `host` is an ACR registry (`<name>.azurecr.io`, and the sovereign clouds' domains).
pub fn is_registry(host: &str) -> bool {
    HOST.is_match(host)
}

/// Registry credentials from the workload's Azure identity.
pub async fn login(
    http: &reqwest::Client,
    env: &Env,
    host: &str,
) -> Result<(Credentials, Duration), CloudError> {
    let (aad, tenant) = match env.get("AZURE_FEDERATED_TOKEN_FILE") {
        Some(file) => workload_identity(http, env, file).await?,
        None => (managed_identity(http, env).await?, String::new()),
    };
    const STEP: &str = "ACR token exchange";
    let url = env
        .get("TAGPILOT_ACR_EXCHANGE_URL")
        .map(str::to_string)
        .unwrap_or_else(|| format!("https://{host}/oauth2/exchange"));
    let mut form = vec![
        ("grant_type", "access_token"),
        ("service", host),
        ("access_token", aad.as_str()),
    ];
    if !tenant.is_empty() {
        form.push(("tenant", tenant.as_str()));
    }
    let body = super::answer(
        http.post(&url).form(&form),
        &url,
        "azure",
        STEP,
        &["/errors/0/message", "/error"],
    )
    .await?;
    let refresh = body["refresh_token"]
        .as_str()
        .ok_or_else(|| err(STEP, "the answer has no refresh_token"))?;
    Ok((
        Credentials::Basic {
            username: ACR_USER.into(),
            password: refresh.to_string(),
        },
        // ACR refresh tokens last three hours.
        Duration::from_secs(3 * 3600),
    ))
}

async fn workload_identity(
    http: &reqwest::Client,
    env: &Env,
    file: &str,
) -> Result<(String, String), CloudError> {
    const STEP: &str = "workload identity (Entra ID token)";
    let assertion = std::fs::read_to_string(file).map_err(|e| {
        err(
            STEP,
            format!("cannot read the federated token file {file}: {e}"),
        )
    })?;
    let (Some(client), Some(tenant)) = (env.get("AZURE_CLIENT_ID"), env.get("AZURE_TENANT_ID"))
    else {
        return Err(err(STEP, "AZURE_CLIENT_ID and AZURE_TENANT_ID must be set"));
    };
    let authority = env
        .get("AZURE_AUTHORITY_HOST")
        .unwrap_or("https://login.microsoftonline.com/");
    let url = format!(
        "{}/{tenant}/oauth2/v2.0/token",
        authority.trim_end_matches('/')
    );
    let body = super::answer(
        http.post(&url).form(&[
            ("client_id", client),
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.trim()),
            ("scope", "https://management.azure.com/.default"),
        ]),
        &url,
        "azure",
        STEP,
        &["/error_description"],
    )
    .await?;
    let token = body["access_token"]
        .as_str()
        .ok_or_else(|| err(STEP, "the answer has no access_token"))?;
    Ok((token.to_string(), tenant.to_string()))
}

async fn managed_identity(http: &reqwest::Client, env: &Env) -> Result<String, CloudError> {
    const STEP: &str = "managed identity (IMDS token)";
    let base = env
        .get("AZURE_IMDS_ENDPOINT")
        .unwrap_or("http://169.254.169.254");
    let mut url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F",
        base.trim_end_matches('/')
    );
    if let Some(client) = env.get("AZURE_CLIENT_ID") {
        url.push_str(&format!("&client_id={client}"));
    }
    let body = super::answer(
        http.get(&url)
            .header("Metadata", "true")
            .timeout(Duration::from_secs(5)),
        base,
        "azure",
        STEP,
        &["/error_description"],
    )
    .await?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| err(STEP, "the answer has no access_token"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_hosts() {
        for h in ["myregistry.azurecr.io", "reg.azurecr.cn", "reg.azurecr.us"] {
            assert!(super::is_registry(h), "{h}");
        }
        for h in ["azurecr.io", "reg.azurecr.io.evil.com", "ghcr.io"] {
            assert!(!super::is_registry(h), "{h}");
        }
    }
}
