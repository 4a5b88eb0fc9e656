//! Registry credentials from a cloud workload identity (`spec.provider`): AWS ECR (SigV4, the credential
//! chain, `GetAuthorizationToken`), Google Artifact Registry and GCR (metadata server or workload identity
//! federation), Azure ACR (workload identity or managed identity, then the ACR token exchange).

pub mod aws;
pub mod azure;
pub mod gcp;
pub mod sigv4;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::registry::Credentials;

/// Why a cloud login failed: the provider, the step (metadata, token exchange, registry) and what the remote
/// said; never a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {step}: {message}")]
pub struct CloudError {
    /// `aws`, `gcp`, `azure`.
    pub provider: &'static str,
    /// The step that failed.
    pub step: &'static str,
    /// What went wrong.
    pub message: String,
}

/// The provider whose registry `host` is (`aws` for ECR, `gcp` for GCR and Artifact Registry, `azure` for ACR).
pub fn provider_of(host: &str) -> Option<&'static str> {
    if aws::ecr_registry(host).is_some() {
        Some("aws")
    } else if gcp::is_registry(host) {
        Some("gcp")
    } else if azure::is_registry(host) {
        Some("azure")
    } else {
        None
    }
}

/// Sends `req` (to `url`) and reads its JSON answer. A failed connection or a failure status is an error of
/// `provider`'s `step` with what the remote said: the first string found at the JSON pointers `why`.
pub(crate) async fn answer(
    req: reqwest::RequestBuilder,
    url: &str,
    provider: &'static str,
    step: &'static str,
    why: &[&str],
) -> Result<serde_json::Value, CloudError> {
    let fail = |message: String| CloudError {
        provider,
        step,
        message,
    };
    let resp = req.send().await.map_err(|e| fail(format!("{url}: {e}")))?;
    let status = resp.status();
    let body: serde_json::Value =
        serde_json::from_slice(&read_capped(resp).await.map_err(fail)?).unwrap_or_default();
    if !status.is_success() {
        let said = why
            .iter()
            .find_map(|p| body.pointer(p).and_then(|v| v.as_str()))
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        return Err(fail(format!("{url} answered {status}{said}")));
    }
    Ok(body)
}

/// The most a cloud endpoint's answer may hold (1 MiB): a token answer is a few KiB.
pub const MAX_ANSWER: usize = 1 << 20;

/// Reads an answer's body up to [`MAX_ANSWER`].
pub(crate) async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("the answer is larger than {MAX_ANSWER} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `a gcp`, `an aws`, `an azure`.
pub fn with_article(provider: &str) -> String {
    let article = if provider.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {provider}")
}

/// Logs in to `host` with `provider`'s workload identity: registry credentials and how long they last.
pub async fn login(
    provider: &str,
    http: &reqwest::Client,
    env: &Env,
    host: &str,
) -> Result<(Credentials, Duration), CloudError> {
    let registry = provider_of(host);
    if registry != Some(provider) || !matches!(provider, "aws" | "gcp" | "azure") {
        return Err(CloudError {
            provider: match provider {
                "aws" => "aws",
                "gcp" => "gcp",
                "azure" => "azure",
                _ => "cloud",
            },
            step: "registry host",
            message: format!(
                "{host:?} is not {} registry{}",
                with_article(provider),
                registry
                    .map(|r| format!(" (it is {r}'s)"))
                    .unwrap_or_default()
            ),
        });
    }
    match provider {
        "aws" => aws::login(http, env, host).await,
        "gcp" => gcp::login(http, env).await,
        _ => azure::login(http, env, host).await,
    }
}

/// Cloud logins by provider and registry host, reused until five minutes before they expire, at most
/// `max_duration`, and at most `max_size` of them (Flux's `--token-cache-max-size` and
/// `--token-cache-max-duration`; the one expiring first makes room).
pub struct Logins {
    cache: Mutex<HashMap<String, (Credentials, Instant)>>,
    max_size: usize,
    max_duration: Duration,
}

impl Default for Logins {
    /// Flux's defaults: 100 logins, one hour.
    fn default() -> Logins {
        Logins::new(100, Duration::from_secs(3600))
    }
}

impl Logins {
    /// A cache of at most `max_size` logins (0: none cached), each kept at most `max_duration`.
    pub fn new(max_size: usize, max_duration: Duration) -> Logins {
        Logins {
            cache: Mutex::default(),
            max_size,
            max_duration,
        }
    }

    /// Credentials for `host` with `provider` (from the cache, or a new [`login`]).
    pub async fn credentials_for(
        &self,
        provider: &str,
        http: &reqwest::Client,
        env: &Env,
        host: &str,
    ) -> Result<Credentials, CloudError> {
        let key = format!("{provider}/{host}");
        if let Some((c, until)) = self.cache.lock().expect("login cache").get(&key)
            && Instant::now() < *until
        {
            return Ok(c.clone());
        }
        let (credentials, lifetime) = login(provider, http, env, host).await?;
        self.keep(key, &credentials, lifetime);
        Ok(credentials)
    }

    /// Caches a login for `lifetime` less five minutes, within the cache's bounds.
    fn keep(&self, key: String, credentials: &Credentials, lifetime: Duration) {
        if self.max_size == 0 {
            return;
        }
        let until = Instant::now()
            + lifetime
                .saturating_sub(Duration::from_secs(300))
                .min(self.max_duration);
        let mut cache = self.cache.lock().expect("login cache");
        let now = Instant::now();
        cache.retain(|_, (_, u)| *u > now);
        while cache.len() >= self.max_size && !cache.contains_key(&key) {
            let Some(first) = cache
                .iter()
                .min_by_key(|(_, (_, u))| *u)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            cache.remove(&first);
        }
        cache.insert(key, (credentials.clone(), until));
    }
}

/// The environment variables the providers read.
const PREFIXES: &[&str] = &["AWS_", "GCE_", "GOOGLE_", "AZURE_", "TAGPILOT_"];

/// Where the environment says things are (read once per call; injectable in tests).
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Env {
        Env {
            vars: std::env::vars()
                .filter(|(k, _)| PREFIXES.iter().any(|p| k.starts_with(p)))
                .collect(),
        }
    }

    /// An environment of these variables.
    pub fn of(pairs: &[(&str, &str)]) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// A variable, when set and not empty.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.vars
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn creds(u: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: "p".into(),
        }
    }

    #[test]
    fn the_cache_keeps_its_size_and_duration_bounds() {
        let l = Logins::new(2, Duration::from_secs(600));
        l.keep("a".into(), &creds("a"), Duration::from_secs(3600));
        l.keep("b".into(), &creds("b"), Duration::from_secs(420));
        l.keep("c".into(), &creds("c"), Duration::from_secs(3600));
        let cache = l.cache.lock().unwrap();
        assert_eq!(cache.len(), 2);
        assert!(!cache.contains_key("b"), "the one expiring first made room");
        let (_, until) = &cache["a"];
        assert!(
            *until <= Instant::now() + Duration::from_secs(600),
            "capped at max_duration"
        );
        drop(cache);
        let none = Logins::new(0, Duration::from_secs(600));
        none.keep("a".into(), &creds("a"), Duration::from_secs(3600));
        assert!(none.cache.lock().unwrap().is_empty());
    }
}
