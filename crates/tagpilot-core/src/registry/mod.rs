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
mod credentials;
mod page;
mod reference;
pub mod scan;
pub mod secrets;

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

pub use client::{ClientOptions, RegistryClient, error_text};
pub use credentials::{Credentials, DockerConfig, DockerConfigError};
pub use reference::{DOCKER_HUB, ImageName, ReferenceError};

use client::{Target, accept, read_body, registry_message};

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

/// One scan: what to list and how.
#[derive(Clone, Debug)]
pub struct ScanRequest<'a> {
    /// The repository.
    pub image: &'a ImageName,
    /// Credentials (anonymous when none).
    pub credentials: &'a Credentials,
    /// TLS, plain HTTP, proxy.
    pub transport: &'a Transport,
    /// Tags excluded from the result.
    pub exclusions: &'a Exclusions,
    /// `n` per page (default 1000).
    pub page_size: u32,
    /// Deadline for the whole scan.
    pub timeout: Duration,
    /// The most tags the repository may hold ([`DEFAULT_MAX_TAGS`]); more is [`RegistryError::TooManyTags`].
    pub max_tags: usize,
}

/// The default of `--max-tags-per-repository`.
pub const DEFAULT_MAX_TAGS: usize = 100_000;

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

/// The tags of a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanResult {
    /// Distinct tags after exclusion, byte-wise descending (as Flux stores them).
    pub tags: Vec<String>,
    /// How many tags the exclusion list removed.
    pub excluded: usize,
    /// Pages read.
    pub pages: u32,
    /// HTTP requests made (including token requests and retries).
    pub requests: u32,
    /// Names the registry listed that are not OCI tags (dropped).
    pub invalid: usize,
}

impl RegistryClient {
    /// Lists every tag of a repository.
    pub async fn list_tags(&self, req: &ScanRequest<'_>) -> Result<ScanResult, RegistryError> {
        let image = req.image.canonical();
        let seconds = req.timeout.as_secs();
        tokio::time::timeout(req.timeout, self.list_tags_inner(req))
            .await
            .unwrap_or(Err(RegistryError::Timeout { image, seconds }))
    }

    async fn list_tags_inner(&self, req: &ScanRequest<'_>) -> Result<ScanResult, RegistryError> {
        let registry = req.image.registry.as_str();
        let target = Target {
            image: req.image,
            credentials: req.credentials,
            transport: req.transport,
        };
        // Known once the registry has answered over it.
        let mut scheme: Option<&str> = None;
        let mut n = req.page_size.max(1);
        let mut last: Option<String> = None;
        let mut next_link: Option<reqwest::Url> = None;
        let mut tags: HashSet<String> = HashSet::new();
        let mut invalid = 0usize;
        let (mut pages, mut requests) = (0u32, 0u32);
        loop {
            let headers = accept("application/json");
            let resp = match (next_link.take(), scheme) {
                (Some(link), _) => {
                    self.send(&target, Method::GET, link.as_str(), headers, &mut requests)
                        .await?
                }
                (None, known) => {
                    let mut path = format!("/v2/{}/tags/list?n={n}", req.image.repository);
                    if let Some(l) = &last {
                        path.push_str("&last=");
                        path.push_str(&form_urlencode(l));
                    }
                    match known {
                        Some(scheme) => {
                            let url = format!("{scheme}://{registry}{path}");
                            self.send(&target, Method::GET, &url, headers, &mut requests)
                                .await?
                        }
                        None => {
                            let (resp, answered) = self
                                .send_first(&target, Method::GET, &path, headers, &mut requests)
                                .await?;
                            scheme = Some(answered);
                            resp
                        }
                    }
                }
            };
            let status = resp.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST {
                let message = registry_message(resp).await;
                if (status == StatusCode::PAYLOAD_TOO_LARGE
                    || message.contains("TOO_MANY_TAGS_REQUESTED"))
                    && n > 1
                {
                    // Quay allows at most 100; below that, halve.
                    n = if n > 100 { 100 } else { (n / 2).max(1) };
                    tracing::debug!(
                        registry,
                        n,
                        "registry refused the page size; asking for fewer tags"
                    );
                    continue;
                }
                return Err(RegistryError::Status {
                    registry: registry.into(),
                    status: status.as_u16(),
                    message,
                });
            }
            if status == StatusCode::NOT_FOUND {
                return Err(RegistryError::NotFound {
                    image: req.image.canonical(),
                    message: registry_message(resp).await,
                });
            }
            if !status.is_success() {
                return Err(RegistryError::Status {
                    registry: registry.into(),
                    status: status.as_u16(),
                    message: registry_message(resp).await,
                });
            }
            let link = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let page_url = resp.url().clone();
            let body = read_body(resp, registry).await?;
            let page = page::read(&body, &mut tags, req.max_tags).map_err(|e| match e {
                page::Error::TooMany => RegistryError::TooManyTags {
                    image: req.image.canonical(),
                    limit: req.max_tags,
                },
                page::Error::Json(e) => RegistryError::Protocol {
                    registry: registry.into(),
                    message: format!("tags/list reply is not the expected JSON: {e}"),
                },
            })?;
            drop(body);
            pages += 1;
            invalid += page.invalid;
            if page.new == 0 {
                break;
            }
            if let Some(link) = link.as_deref().and_then(next_link_target) {
                next_link = Some(resolve_link(&page_url, link, registry)?);
                continue;
            }
            if page.count == n as usize {
                last = page.last;
                continue;
            }
            break;
        }
        let before = tags.len();
        let mut tags: Vec<String> = tags
            .into_iter()
            .filter(|t| !req.exclusions.excludes(t))
            .collect();
        let excluded = before - tags.len();
        tags.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ScanResult {
            tags,
            excluded,
            pages,
            requests,
            invalid,
        })
    }

    /// The digest a tag is pulled by (the index digest for a multi-arch image).
    pub async fn digest(
        &self,
        image: &ImageName,
        tag: &str,
        credentials: &Credentials,
        transport: &Transport,
    ) -> Result<String, RegistryError> {
        let registry = image.registry.as_str();
        let mut requests = 0;
        let target = Target {
            image,
            credentials,
            transport,
        };
        let path = format!("/v2/{}/manifests/{tag}", image.repository);
        let headers = accept(MANIFEST_MEDIA_TYPES);
        let (resp, scheme) = self
            .send_first(&target, Method::HEAD, &path, headers.clone(), &mut requests)
            .await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                image: format!("{}:{tag}", image.canonical()),
                message: "manifest unknown".into(),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                registry: registry.into(),
                status: status.as_u16(),
                message: status.to_string(),
            });
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            return Ok(d.to_string());
        }
        // No digest header: fetch the manifest and hash it.
        let url = format!("{scheme}://{registry}{path}");
        let resp = self
            .send(&target, Method::GET, &url, headers, &mut requests)
            .await?;
        let body = read_body(resp, registry).await?;
        Ok(format!("sha256:{:x}", Sha256::digest(&body)))
    }

    /// Sends the first request to a registry: over plain HTTP when `insecure`, else over HTTPS, and then over
    /// plain HTTP when a loopback or private registry cannot be reached over TLS (see [`may_fall_back`]), as
    /// go-containerregistry pings both. Returns the response and the scheme that answered; when plain HTTP
    /// does not answer with success either, the HTTPS error is the useful one and is returned.
    async fn send_first(
        &self,
        target: &Target<'_>,
        method: Method,
        path: &str,
        headers: reqwest::header::HeaderMap,
        requests: &mut u32,
    ) -> Result<(reqwest::Response, &'static str), RegistryError> {
        let registry = &target.image.registry;
        let known_plain = target.image.is_local() && self.known_plain_http(registry);
        let first = if target.transport.insecure || known_plain {
            "http"
        } else {
            "https"
        };
        let url = format!("{first}://{registry}{path}");
        match self
            .send(target, method.clone(), &url, headers.clone(), requests)
            .await
        {
            Err(https_error) if first == "https" && may_fall_back(target.image, &https_error) => {
                let url = format!("http://{registry}{path}");
                match self.send(target, method, &url, headers, requests).await {
                    Ok(resp) if resp.status().is_success() => {
                        self.remember_plain_http(registry);
                        Ok((resp, "http"))
                    }
                    _ => Err(https_error),
                }
            }
            result => result.map(|resp| (resp, first)),
        }
    }
}

/// Whether an HTTPS failure may be retried over plain HTTP: a loopback or private registry that could not be
/// reached over TLS for a reason other than its certificate (as go-containerregistry pings both).
fn may_fall_back(image: &ImageName, e: &RegistryError) -> bool {
    matches!(e, RegistryError::Unreachable { message, .. } if !message.to_lowercase().contains("certificate"))
        && image.is_local()
}

/// The target of `rel="next"` in a Link header.
fn next_link_target(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>'))
    })
}

/// Resolves a Link target against the page URL; refuses another scheme or host. A Link without a port to the
/// same host keeps the page's port (Nexus drops it).
fn resolve_link(
    page: &reqwest::Url,
    link: &str,
    registry: &str,
) -> Result<reqwest::Url, RegistryError> {
    let refuse = |why: String| RegistryError::Protocol {
        registry: registry.into(),
        message: why,
    };
    let mut url = page
        .join(link)
        .map_err(|_| refuse(format!("invalid Link target \"{link}\"")))?;
    if url.host_str() == page.host_str()
        && url.port().is_none()
        && page.port().is_some()
        && url.scheme() == page.scheme()
    {
        let _ = url.set_port(page.port());
    }
    if url.scheme() != page.scheme()
        || url.host_str() != page.host_str()
        || url.port_or_known_default() != page.port_or_known_default()
    {
        return Err(refuse(format!(
            "refusing to follow a Link to another scheme or host: {url}"
        )));
    }
    Ok(url)
}

fn form_urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link_target(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link_target(r#"<https://x/prev>; rel="prev", <https://x/next>; rel=next"#),
            Some("https://x/next")
        );
        assert_eq!(next_link_target(r#"<https://x/a>; rel="last""#), None);
        let page = reqwest::Url::parse("https://reg.example:8443/v2/a/tags/list?n=2").unwrap();
        assert_eq!(
            resolve_link(&page, "/v2/a/tags/list?last=b", "r")
                .unwrap()
                .as_str(),
            "https://reg.example:8443/v2/a/tags/list?last=b"
        );
        assert_eq!(
            resolve_link(&page, "https://reg.example/v2/a/tags/list?last=b", "r")
                .unwrap()
                .as_str(),
            "https://reg.example:8443/v2/a/tags/list?last=b",
            "Nexus drops the port"
        );
        assert!(resolve_link(&page, "https://evil.example/v2/a/tags/list", "r").is_err());
        assert!(resolve_link(&page, "http://reg.example:8443/v2/a/tags/list", "r").is_err());
        assert!(resolve_link(&page, "https://reg.example:9999/v2/a/tags/list", "r").is_err());
    }

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
