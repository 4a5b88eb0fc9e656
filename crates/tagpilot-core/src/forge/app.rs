//! GitHub App authentication: a JWT (RS256, 9 minutes, `iss` = the app's ID) signed with the app's private
//! key is exchanged for an installation token (`POST /app/installations/{id}/access_tokens`; the
//! installation is looked up from the repository when its ID is not given). Tokens are cached per API URL,
//! app, installation and key, and reused until five minutes before they expire; a token the provider
//! refuses is forgotten ([`forget`]). The same tokens authenticate git over HTTPS (user `x-access-token`).
//!
//! The Secret's keys are Flux source-controller's: `githubAppID`, `githubAppInstallationID` (optional here),
//! `githubAppPrivateKey` (PEM, PKCS#1 or PKCS#8), `githubAppBaseURL` (optional).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use super::{ForgeError, Provider, RepoId};

/// A token is exchanged again when less than this is left of it.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// Tokens kept at most (the cache is emptied when full, never wrong).
const MAX_CACHED: usize = 1000;
/// The git user name that goes with an installation token.
pub const GIT_USER: &str = "x-access-token";

/// A GitHub App's credentials.
#[derive(Clone)]
pub struct GitHubApp {
    /// The app's ID (or client ID), the JWT's `iss`.
    pub app_id: String,
    /// The installation; looked up from the repository when None.
    pub installation_id: Option<String>,
    /// The API URL (`https://api.github.com`, or a server's `/api/v3`).
    pub api_url: String,
    key: Arc<RsaKeyPair>,
    /// SHA-256 of the key's DER, for the cache key.
    key_id: String,
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

/// An installation token.
#[derive(Clone, Debug)]
pub struct InstallationToken {
    /// The token.
    pub token: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

impl GitHubApp {
    /// Reads the app from a Secret's data (Flux's keys); `default_api` is used when the Secret has no
    /// `githubAppBaseURL`. Errors name the key, never a value.
    pub fn from_secret_data(
        data: &BTreeMap<String, Vec<u8>>,
        default_api: &str,
    ) -> Result<Option<GitHubApp>, ForgeError> {
        let text = |k: &str| -> Result<Option<String>, ForgeError> {
            data.get(k)
                .map(|v| {
                    String::from_utf8(v.clone())
                        .map(|s| s.trim().to_string())
                        .map_err(|_| ForgeError::Config(format!("key {k:?} is not UTF-8 text")))
                })
                .transpose()
        };
        let Some(app_id) = text("githubAppID")? else {
            return Ok(None);
        };
        let pem = text("githubAppPrivateKey")?.ok_or_else(|| {
            ForgeError::Config(
                "key \"githubAppPrivateKey\" is required with \"githubAppID\"".into(),
            )
        })?;
        let (key, der) = parse_key(&pem)?;
        let api_url = text("githubAppBaseURL")?
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| default_api.to_string())
            .trim_end_matches('/')
            .to_string();
        Ok(Some(GitHubApp {
            app_id,
            installation_id: text("githubAppInstallationID")?.filter(|s| !s.is_empty()),
            api_url,
            key: Arc::new(key),
            key_id: crate::hex::encode(&sha2_digest(&der)),
        }))
    }

    /// The app's JWT, valid from a minute ago for nine minutes (GitHub allows at most ten).
    pub fn jwt(&self) -> Result<String, ForgeError> {
        let now = jiff::Timestamp::now().as_second();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = json!({"iat": now - 60, "exp": now + 540, "iss": self.app_id});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| ForgeError::Config("githubAppPrivateKey: signing failed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    /// Who the app's installation tokens are (API URL, app, installation, key), without any secret.
    pub fn identity(&self, repo: Option<&RepoId>) -> String {
        self.cache_key(repo)
    }

    fn cache_key(&self, repo: Option<&RepoId>) -> String {
        let installation = match (&self.installation_id, repo) {
            (Some(id), _) => id.clone(),
            (None, Some(r)) => format!("repo:{}/{}", r.host, r.path),
            (None, None) => String::new(),
        };
        format!(
            "{}|{}|{}|{}",
            self.api_url, self.app_id, installation, self.key_id
        )
    }
}

fn sha2_digest(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

fn parse_key(pem: &str) -> Result<(RsaKeyPair, Vec<u8>), ForgeError> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let bad = |why: &str| ForgeError::Config(format!("key \"githubAppPrivateKey\": {why}"));
    let der =
        PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| bad("not a PEM private key"))?;
    let key = match &der {
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err(bad("not an RSA key (GitHub App keys are RSA)")),
    }
    .map_err(|_| bad("not a usable RSA key"))?;
    Ok((key, der.secret_der().to_vec()))
}

type Cache = Mutex<HashMap<String, InstallationToken>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Forgets the cached tokens of `app` (after the provider refused one).
pub fn forget(app: &GitHubApp) {
    let prefix = format!("{}|{}|", app.api_url, app.app_id);
    cache()
        .lock()
        .expect("token cache")
        .retain(|k, _| !k.starts_with(&prefix));
}

/// An installation token for `app` (for the installation on `repo` when the app has no installation ID),
/// from the cache while more than [`REFRESH_BEFORE`] of it is left.
pub async fn installation_token(
    http: &reqwest::Client,
    app: &GitHubApp,
    repo: Option<&RepoId>,
) -> Result<InstallationToken, ForgeError> {
    let key = app.cache_key(repo);
    let now = jiff::Timestamp::now().as_second();
    if let Some(t) = cache().lock().expect("token cache").get(&key)
        && t.expires_at - now > REFRESH_BEFORE.as_secs() as i64
    {
        return Ok(t.clone());
    }
    let jwt = app.jwt()?;
    let installation = match (&app.installation_id, repo) {
        (Some(id), _) => id.clone(),
        (None, Some(r)) => {
            let path = format!("/repos/{}/installation", r.owner_repo());
            let a = call(http, app, Method::GET, &path, &jwt, None).await?;
            match a.get("id") {
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(not_described(&path)),
            }
        }
        (None, None) => {
            return Err(ForgeError::Config(
                "key \"githubAppInstallationID\" is required".into(),
            ));
        }
    };
    if !installation.bytes().all(|b| b.is_ascii_digit()) || installation.is_empty() {
        return Err(ForgeError::Config(
            "key \"githubAppInstallationID\" is not a number".into(),
        ));
    }
    let path = format!("/app/installations/{installation}/access_tokens");
    let a = call(http, app, Method::POST, &path, &jwt, Some(&json!({}))).await?;
    let token = a
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| not_described(&path))?
        .to_string();
    let expires_at = a
        .get("expires_at")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .ok_or_else(|| not_described(&path))?
        .as_second();
    let t = InstallationToken { token, expires_at };
    let mut c = cache().lock().expect("token cache");
    if c.len() >= MAX_CACHED {
        c.clear();
    }
    c.insert(key, t.clone());
    Ok(t)
}

fn not_described(path: &str) -> ForgeError {
    ForgeError::Transport {
        provider: "github",
        url: path.to_string(),
        message: "the answer is not what GitHub's API describes".into(),
    }
}

async fn call(
    http: &reqwest::Client,
    app: &GitHubApp,
    method: Method,
    path: &str,
    jwt: &str,
    body: Option<&Value>,
) -> Result<Value, ForgeError> {
    let url = format!("{}{path}", app.api_url);
    let mut req = http
        .request(method.clone(), &url)
        .bearer_auth(jwt)
        .header("Accept", "application/vnd.github+json")
        .header("X-GitHub-Api-Version", "2022-11-28");
    if let Some(b) = body {
        req = req.json(b);
    }
    super::http::exchange(Provider::GitHub, &method, path, &url, req)
        .await
        .map(|a| a.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_without_an_app_or_with_a_bad_key() {
        let data = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<u8>> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        assert!(
            GitHubApp::from_secret_data(&data(&[("token", "x")]), "https://api.github.com")
                .unwrap()
                .is_none()
        );
        let e = GitHubApp::from_secret_data(&data(&[("githubAppID", "1")]), "u").unwrap_err();
        assert!(e.to_string().contains("githubAppPrivateKey"), "{e}");
        let e = GitHubApp::from_secret_data(
            &data(&[
                ("githubAppID", "1"),
                (
                    "githubAppPrivateKey",
                    "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n",
                ),
            ]),
            "u",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("githubAppPrivateKey") && !e.to_string().contains("c2Vj"),
            "{e}"
        );
    }
}
