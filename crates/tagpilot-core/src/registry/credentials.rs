//! Registry credentials, from a `kubernetes.io/dockerconfigjson` payload or given directly.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// How to authenticate to a registry. `Debug` never shows a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials (anonymous tokens are still fetched when a registry asks for them).
    #[default]
    Anonymous,
    /// User name and password (or access token) for Basic auth and the token server.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in a Docker config), exchanged at the token server.
    IdentityToken(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credentials {
    /// A fingerprint for cache keys: a hash, so that no secret is kept in a key.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        match self {
            Credentials::Anonymous => h.update(b"anonymous"),
            Credentials::Basic { username, password } => {
                h.update(b"basic\0");
                h.update(username.as_bytes());
                h.update(b"\0");
                h.update(password.as_bytes());
            }
            Credentials::IdentityToken(t) => {
                h.update(b"identity\0");
                h.update(t.as_bytes());
            }
        }
        format!("{:x}", h.finalize())[..16].to_string()
    }
}

/// A Docker config (`.dockerconfigjson`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(Clone, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthEntry(<redacted>)")
    }
}

/// A Docker config that cannot be read; the message never quotes its content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DockerConfigError {
    /// Not JSON of the expected shape.
    #[error("invalid docker config JSON: {0}")]
    Json(String),
    /// An `auth` field that is not base64 of `user:password`.
    #[error("invalid docker config: the auth entry for \"{0}\" is not base64 of user:password")]
    Auth(String),
}

impl DockerConfig {
    /// Parses a `.dockerconfigjson` payload.
    pub fn from_json(bytes: &[u8]) -> Result<DockerConfig, DockerConfigError> {
        // Only the location of a JSON error is kept: serde's message may quote the secret text.
        serde_json::from_slice(bytes).map_err(|e| {
            DockerConfigError::Json(format!("line {} column {}", e.line(), e.column()))
        })
    }

    /// The credentials for `registry` (host with port): entries keyed by the host, `https://host/v1/`,
    /// `http://host`, and for Docker Hub `index.docker.io`, `docker.io` and `https://index.docker.io/v1/`.
    pub fn credentials_for(
        &self,
        registry: &str,
    ) -> Result<Option<Credentials>, DockerConfigError> {
        let hub = registry == super::DOCKER_HUB;
        let entry = self.auths.iter().find(|(key, _)| {
            let host = normalize_key(key);
            host == registry
                || (hub
                    && matches!(
                        host,
                        "docker.io" | "registry-1.docker.io" | "index.docker.io"
                    ))
        });
        let Some((key, entry)) = entry else {
            return Ok(None);
        };
        if let Some(token) = entry.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.clone())));
        }
        if let Some(auth) = entry.auth.as_ref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| DockerConfigError::Auth(key.clone()))?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| DockerConfigError::Auth(key.clone()))?;
            return Ok(Some(Credentials::Basic {
                username: username.into(),
                password: password.into(),
            }));
        }
        match (&entry.username, &entry.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::Basic {
                username: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }
}

/// `https://host:port/v1/` -> `host:port`.
fn normalize_key(key: &str) -> &str {
    let key = key.split_once("://").map_or(key, |(_, rest)| rest);
    key.split('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> Option<Credentials> {
        Some(Credentials::Basic {
            username: u.into(),
            password: p.into(),
        })
    }

    #[test]
    fn finds_credentials_by_every_key_form() {
        let json = br#"{"auths": {
            "ghcr.io": {"auth": "dXNlcjpwYXNz"},
            "https://index.docker.io/v1/": {"username": "hub", "password": "secret"},
            "http://127.0.0.1:5000": {"identitytoken": "refresh-me"},
            "https://quay.io/v1/": {"auth": "dTpwOmNvbG9u"}
        }}"#;
        let c = DockerConfig::from_json(json).unwrap();
        assert_eq!(c.credentials_for("ghcr.io").unwrap(), basic("user", "pass"));
        assert_eq!(
            c.credentials_for("index.docker.io").unwrap(),
            basic("hub", "secret")
        );
        assert_eq!(
            c.credentials_for("127.0.0.1:5000").unwrap(),
            Some(Credentials::IdentityToken("refresh-me".into()))
        );
        assert_eq!(c.credentials_for("quay.io").unwrap(), basic("u", "p:colon"));
        assert_eq!(c.credentials_for("gcr.io").unwrap(), None);
        assert_eq!(
            c.credentials_for("127.0.0.1").unwrap(),
            None,
            "the port is part of the host"
        );
    }

    #[test]
    fn errors_and_debug_never_show_secrets() {
        let e = DockerConfig::from_json(br#"{"auths": {"x": {"auth": "topsecret!!"}}}"#)
            .unwrap()
            .credentials_for("x");
        let msg = e.unwrap_err().to_string();
        assert!(!msg.contains("topsecret"), "{msg}");
        let e = DockerConfig::from_json(br#"{"auths": {"x": "topsecret"}}"#)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("topsecret"), "{e}");
        let c = basic("me", "hunter2").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_ne!(c.fingerprint(), basic("me", "other").unwrap().fingerprint());
        assert!(!c.fingerprint().contains("hunter2"));
    }
}
