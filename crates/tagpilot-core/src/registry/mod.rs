//! Registry client: list an image repository's tags and resolve digests, as ImageRepository scans need.
//!
//! - Image names and canonical names as Flux shows them ([`ImageName`]).
//! - Credentials from `kubernetes.io/dockerconfigjson` payloads ([`DockerConfig`]): Basic, the Bearer token
//!   challenge (tokens cached per registry, repository and credentials until shortly before they expire),
//!   identity tokens; a wrong password is reported as "authentication failed" with the registry's message.
//! - Transport per setting ([`Transport`]): custom CA, client certificate (mTLS), plain HTTP (`insecure`),
//!   HTTP(S) proxy with credentials. On loopback and private addresses plain HTTP is tried when HTTPS cannot
//!   connect, as go-containerregistry does.
//! - Listing ([`RegistryClient::list_tags`]): `n` per page (default 1000), `Link: <...>; rel="next"`
//!   (relative or absolute, never to another scheme or host; a Link that drops the port, as Nexus's do, keeps
//!   ours), `last=` when a full page comes without Link, a stop when a page brings no new tag, `n` halved on
//!   413 or `TOO_MANY_TAGS_REQUESTED`; retries with backoff on 408, 429, 5xx and connection errors honouring
//!   `Retry-After`; a concurrency limit per registry; bodies capped at 32 MiB.
//! - Digests ([`RegistryClient::digest`]) by `HEAD` of the manifest with the index and manifest media types.
//!
//! Credentials never appear in errors, logs or `Debug` output, and go only to the registry's own scheme, host
//! and port: a redirect is followed only within them, a `Link` elsewhere is refused, and the one protocol
//! exception, the Bearer token realm, is never plain HTTP for an HTTPS registry and never gets the client
//! certificate when it is another host.
//!
//! A registry is outside input: a `tags/list` page is parsed as a stream straight into the set of tags (no
//! intermediate list), names that are not OCI tags (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) are dropped and
//! counted, and a repository may hold at most [`ScanRequest::max_tags`] tags.

pub mod access;
mod client;
pub mod content;
mod credentials;
mod digest;
mod page;
mod pager;
mod reference;
pub mod scan;
pub mod secrets;
pub mod share;
mod tags;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

pub use client::{ClientOptions, RegistryClient, error_text};
pub use credentials::{Credentials, DockerConfig, DockerConfigError};
pub use reference::{DOCKER_HUB, ImageName, ReferenceError};
pub use tags::{DEFAULT_MAX_TAGS, ScanRequest, ScanResult};

use pager::{next_link_target, resolve_link};

/// The default `exclusionList` of an ImageRepository.
pub const DEFAULT_EXCLUSIONS: &[&str] = &["^.*\\.sig$"];

/// The media types a digest is resolved for: multi-arch indexes first, then single manifests.
pub const MANIFEST_MEDIA_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// How to reach a registry: TLS roots and client certificate, plain HTTP, proxy. Secrets are not printed.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Transport {
    /// PEM CA certificates trusted in addition to the system's (`ca.crt`).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key for mTLS (`tls.crt`, `tls.key`).
    pub client_identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// Plain HTTP (`spec.insecure`).
    pub insecure: bool,
    /// An HTTP(S) proxy URL and optional credentials (`proxySecretRef`).
    pub proxy: Option<Proxy>,
}

/// A proxy from `proxySecretRef`: `address`, optional `username` and `password`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Proxy {
    /// `http://proxy:3128`.
    pub address: String,
    /// Optional user.
    pub username: Option<String>,
    /// Optional password.
    pub password: Option<String>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client_identity_pem.is_some())
            .field("insecure", &self.insecure)
            .field("proxy", &self.proxy.as_ref().map(|p| p.address.as_str()))
            .finish()
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({})", self.address)
    }
}

impl Transport {
    fn build(&self) -> Result<reqwest::Client, RegistryError> {
        let invalid = |what: &str, e: reqwest::Error| {
            RegistryError::InvalidTransport(format!("{what}: {}", error_chain(&e)))
        };
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            // Redirects only within the first request's scheme, host and port (at most 5): credentials and
            // the client certificate never follow one elsewhere; such a redirect reaches the caller, which
            // refuses it.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let first = &attempt.previous()[0];
                let same = attempt.url().scheme() == first.scheme()
                    && attempt.url().host_str() == first.host_str()
                    && attempt.url().port_or_known_default() == first.port_or_known_default();
                if same && attempt.previous().len() <= 5 {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .pool_max_idle_per_host(8)
            .user_agent(concat!("tagpilot/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &self.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(ca).map_err(|e| invalid("ca.crt", e))?;
            if certs.is_empty() {
                return Err(RegistryError::InvalidTransport(
                    "ca.crt holds no PEM certificate".into(),
                ));
            }
            b = b.tls_certs_merge(certs);
        }
        if let Some((cert, key)) = &self.client_identity_pem {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            b = b.identity(
                reqwest::Identity::from_pem(&pem).map_err(|e| invalid("tls.crt/tls.key", e))?,
            );
        }
        if let Some(p) = &self.proxy {
            let mut proxy =
                reqwest::Proxy::all(&p.address).map_err(|e| invalid("proxy address", e))?;
            if let Some(u) = &p.username {
                proxy = proxy.basic_auth(u, p.password.as_deref().unwrap_or(""));
            }
            b = b.proxy(proxy);
        }
        b.build().map_err(|e| invalid("TLS settings", e))
    }
}

/// What went wrong talking to a registry. Messages name the registry or image and never hold credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Credentials missing or refused.
    #[error("authentication failed for registry {registry}: {message}")]
    AuthenticationFailed {
        /// Registry host.
        registry: String,
        /// The registry's own message.
        message: String,
    },
    /// The repository does not exist (or is hidden from these credentials).
    #[error("repository {image} not found: {message}")]
    NotFound {
        /// Canonical image name (with `:tag` for a manifest).
        image: String,
        /// The registry's message.
        message: String,
    },
    /// Connection, TLS or proxy failure.
    #[error("cannot reach registry {registry}: {message}")]
    Unreachable {
        /// Registry host.
        registry: String,
        /// What the transport said.
        message: String,
    },
    /// A reply the protocol does not allow (bad JSON, missing header, huge body, a Link to another host).
    #[error("registry {registry}: {message}")]
    Protocol {
        /// Registry host.
        registry: String,
        /// What was wrong.
        message: String,
    },
    /// An unexpected status.
    #[error("registry {registry} answered {status}: {message}")]
    Status {
        /// Registry host.
        registry: String,
        /// HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
    /// The whole scan took longer than its timeout.
    #[error("scanning {image} timed out after {seconds} s")]
    Timeout {
        /// Canonical image name.
        image: String,
        /// The timeout.
        seconds: u64,
    },
    /// CA, client certificate or proxy settings that cannot be used.
    #[error("invalid registry transport settings: {0}")]
    InvalidTransport(String),
    /// The repository holds more tags than the limit.
    #[error(
        "{image} has more than {limit} tags (the limit is --max-tags-per-repository); not stored"
    )]
    TooManyTags {
        /// Canonical image name.
        image: String,
        /// The limit.
        limit: usize,
    },
    /// An exclusion pattern that does not compile.
    #[error("invalid exclusionList pattern \"{pattern}\": {reason}")]
    InvalidExclusion {
        /// The pattern.
        pattern: String,
        /// The compiler's message.
        reason: String,
    },
}

impl RegistryError {
    fn from_transport(registry: &str, e: reqwest::Error) -> RegistryError {
        let message = error_chain(&e);
        if e.is_timeout() {
            return RegistryError::Unreachable {
                registry: registry.into(),
                message: format!("timed out: {message}"),
            };
        }
        if e.is_body() || e.is_decode() {
            return RegistryError::Protocol {
                registry: registry.into(),
                message,
            };
        }
        RegistryError::Unreachable {
            registry: registry.into(),
            message,
        }
    }
}

/// An error and its sources, without the URL (the image is named elsewhere).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        let text = text.split(" for url (").next().unwrap_or(&text).to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// Compiled `exclusionList` patterns (Go RE2 semantics, unanchored; see [`crate::re2`]).
#[derive(Clone, Debug)]
pub struct Exclusions(Vec<regex::bytes::Regex>);

impl Exclusions {
    /// Compiles the patterns; an empty list means no exclusion (pass [`DEFAULT_EXCLUSIONS`] for Flux's default).
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Exclusions, RegistryError> {
        patterns
            .iter()
            .map(|p| {
                crate::re2::compile(p.as_ref()).map_err(|reason| RegistryError::InvalidExclusion {
                    pattern: p.as_ref().to_string(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()
            .map(Exclusions)
    }

    /// Whether a tag is excluded.
    pub fn excludes(&self, tag: &str) -> bool {
        self.0.iter().any(|r| r.is_match(tag.as_bytes()))
    }
}

/// Reads a `tags/list` page into `tags` (at most `limit`); for the fuzz targets.
#[doc(hidden)]
pub fn page_read(body: &[u8], tags: &mut HashSet<String>, limit: usize) -> Result<usize, String> {
    page::read(body, tags, limit)
        .map(|p| p.count)
        .map_err(|e| format!("{e:?}"))
}

/// Parses a `WWW-Authenticate` header; for the fuzz targets.
#[doc(hidden)]
pub fn parse_challenge_for_fuzzing(header: &str) -> bool {
    client::parse_challenge(header).is_some()
}

/// Resolves a `Link` header against a page as a scan does; for the fuzz targets.
#[doc(hidden)]
pub fn resolve_link_for_fuzzing(page: &reqwest::Url, header: &str) -> Result<reqwest::Url, String> {
    let target = next_link_target(header).ok_or("no next link")?;
    resolve_link(page, target, "reg.example:5000").map_err(|e| e.to_string())
}

/// Whether a name is an OCI tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions() {
        let e = Exclusions::new(DEFAULT_EXCLUSIONS).unwrap();
        assert!(e.excludes("sha256-abc.sig"));
        assert!(!e.excludes("1.0.0"));
        let err = Exclusions::new(&["(["]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid exclusionList pattern \"([\""),
            "{err}"
        );
    }

    #[test]
    fn transports_reject_bad_pem_without_quoting_it() {
        let t = Transport {
            ca_pem: Some(b"not a certificate".to_vec()),
            ..Default::default()
        };
        let e = t.build().unwrap_err();
        assert!(matches!(e, RegistryError::InvalidTransport(_)), "{e}");
        let t = Transport {
            client_identity_pem: Some((b"x".to_vec(), b"SECRETKEY".to_vec())),
            ..Default::default()
        };
        assert!(!t.build().unwrap_err().to_string().contains("SECRETKEY"));
        assert!(!format!("{t:?}").contains("SECRETKEY"));
    }
}
