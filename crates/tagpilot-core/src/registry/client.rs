//! The HTTP side: transports per TLS/proxy setting, authentication challenges and tokens, retries, limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;

use super::{Credentials, ImageName, RegistryError, Transport};

/// Largest response body read from a registry or token server.
pub(crate) const MAX_BODY: usize = 32 << 20;

/// A registry client shared by every scan of a process: transports keyed by their settings, a token cache
/// (per registry, repository and credentials) and a concurrency limit per registry host.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    transports: Mutex<HashMap<Transport, reqwest::Client>>,
    tokens: Mutex<HashMap<String, Token>>,
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Registries that answered over plain HTTP after HTTPS failed: later requests start there.
    plain_http: Mutex<std::collections::HashSet<String>>,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_registry: usize,
    retries: u32,
    backoff: Duration,
}

#[derive(Clone)]
struct Token {
    value: String,
    expires: Instant,
}

/// What a registry asked for in its `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Settings of a [`RegistryClient`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Requests in flight per registry host, across all scans (default 8).
    pub per_registry_concurrency: usize,
    /// Retries of a request on 408, 429, 5xx and connection errors (default 4).
    pub retries: u32,
    /// First backoff, doubled on each retry unless the registry sends `Retry-After` (default 500 ms).
    pub backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            per_registry_concurrency: 8,
            retries: 4,
            backoff: Duration::from_millis(500),
        }
    }
}

/// A request's target and identity.
pub(crate) struct Target<'a> {
    pub image: &'a ImageName,
    pub credentials: &'a Credentials,
    pub transport: &'a Transport,
}

impl Default for RegistryClient {
    fn default() -> Self {
        RegistryClient::new(ClientOptions::default())
    }
}

impl RegistryClient {
    /// A client with these options.
    pub fn new(options: ClientOptions) -> RegistryClient {
        RegistryClient {
            inner: Arc::new(Inner {
                transports: Mutex::default(),
                tokens: Mutex::default(),
                challenges: Mutex::default(),
                plain_http: Mutex::default(),
                limits: Mutex::default(),
                per_registry: options.per_registry_concurrency.max(1),
                retries: options.retries,
                backoff: options.backoff,
            }),
        }
    }

    fn http(&self, transport: &Transport) -> Result<reqwest::Client, RegistryError> {
        let mut map = self.inner.transports.lock().unwrap();
        if let Some(c) = map.get(transport) {
            return Ok(c.clone());
        }
        let client = transport.build()?;
        map.insert(transport.clone(), client.clone());
        Ok(client)
    }

    fn limit(&self, registry: &str) -> Arc<Semaphore> {
        let mut map = self.inner.limits.lock().unwrap();
        map.entry(registry.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.per_registry)))
            .clone()
    }

    /// Sends one request to the registry with authentication and retries; returns the final response, which
    /// may still be an error status other than 401 (the caller decides what it means).
    pub(crate) async fn send(
        &self,
        t: &Target<'_>,
        method: Method,
        url: &str,
        headers: HeaderMap,
        stats: &mut u32,
    ) -> Result<reqwest::Response, RegistryError> {
        let http = self.http(t.transport)?;
        let registry = &t.image.registry;
        // Credentials belong to the registry's host and port: a request elsewhere is refused, not sent
        // without them (it would be a Link or redirect the registry has no business making).
        let parsed = reqwest::Url::parse(url).map_err(|_| RegistryError::Protocol {
            registry: registry.clone(),
            message: format!("invalid URL {url:?}"),
        })?;
        if !is_registry_origin(&parsed, registry) {
            return Err(RegistryError::Protocol {
                registry: registry.clone(),
                message: format!(
                    "refusing to send a request for {registry} to another host: {}",
                    crate::sanitize::url(url)
                ),
            });
        }
        let https = parsed.scheme() == "https";
        let token_key = format!(
            "{registry}/{}#{}",
            t.image.repository,
            t.credentials.fingerprint()
        );
        let mut authorization = self.cached_authorization(registry, &token_key, t.credentials);
        let mut authenticated_once = false;
        loop {
            let mut req = http.request(method.clone(), url).headers(headers.clone());
            if let Some(a) = &authorization {
                req = req.header(reqwest::header::AUTHORIZATION, a.as_str());
            }
            let resp = self.with_retries(registry, req, stats).await?;
            if resp.status().is_redirection() {
                // Only a redirect to another scheme, host or port is left unfollowed.
                let to = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(crate::sanitize::url)
                    .unwrap_or_default();
                return Err(RegistryError::Protocol {
                    registry: registry.clone(),
                    message: format!(
                        "refusing to follow a redirect to another scheme, host or port ({}): {}",
                        resp.status(),
                        crate::sanitize::cap(&to, 200)
                    ),
                });
            }
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            let message = registry_message(resp).await;
            if authenticated_once || challenge.is_none() {
                return Err(RegistryError::AuthenticationFailed {
                    registry: registry.clone(),
                    message,
                });
            }
            let challenge = challenge.unwrap();
            self.inner
                .challenges
                .lock()
                .unwrap()
                .insert(registry.clone(), challenge.clone());
            authorization = Some(match challenge {
                Challenge::Basic => match t.credentials {
                    Credentials::Basic { username, password } => basic(username, password),
                    _ => {
                        return Err(RegistryError::AuthenticationFailed {
                            registry: registry.clone(),
                            message,
                        });
                    }
                },
                Challenge::Bearer { realm, service } => {
                    if https && !realm.to_ascii_lowercase().starts_with("https://") {
                        return Err(RegistryError::Protocol {
                            registry: registry.clone(),
                            message: format!(
                                "refusing the token realm {}: not HTTPS for an HTTPS registry",
                                crate::sanitize::cap(&crate::sanitize::url(&realm), 200)
                            ),
                        });
                    }
                    let scope = format!("repository:{}:pull", t.image.repository);
                    let token = self
                        .fetch_token(&http, t, &realm, service.as_deref(), &scope, stats)
                        .await?;
                    self.inner
                        .tokens
                        .lock()
                        .unwrap()
                        .insert(token_key.clone(), token.clone());
                    format!("Bearer {}", token.value)
                }
            });
            authenticated_once = true;
        }
    }

    /// The Authorization to send up front when the registry's challenge is known (saves a round trip).
    fn cached_authorization(
        &self,
        registry: &str,
        token_key: &str,
        creds: &Credentials,
    ) -> Option<String> {
        match self.inner.challenges.lock().unwrap().get(registry)? {
            Challenge::Basic => match creds {
                Credentials::Basic { username, password } => Some(basic(username, password)),
                _ => None,
            },
            Challenge::Bearer { .. } => {
                let tokens = self.inner.tokens.lock().unwrap();
                let t = tokens.get(token_key)?;
                (t.expires > Instant::now() + Duration::from_secs(5))
                    .then(|| format!("Bearer {}", t.value))
            }
        }
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        t: &Target<'_>,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        stats: &mut u32,
    ) -> Result<Token, RegistryError> {
        let registry = &t.image.registry;
        let realm_url = reqwest::Url::parse(realm).map_err(|_| RegistryError::Protocol {
            registry: registry.clone(),
            message: format!("the token realm \"{realm}\" is not a URL"),
        })?;
        // The realm is the protocol's one other host: it gets the credentials (that is what it is for) but
        // not the registry's client certificate.
        let other_host = !is_registry_origin(&realm_url, registry);
        let stripped;
        let http = if other_host && t.transport.client_identity_pem.is_some() {
            let mut without = t.transport.clone();
            without.client_identity_pem = None;
            stripped = self.http(&without)?;
            &stripped
        } else {
            http
        };
        let mut query: Vec<(&str, &str)> = vec![("scope", scope)];
        if let Some(s) = service {
            query.push(("service", s));
        }
        let req = match t.credentials {
            Credentials::IdentityToken(refresh) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                    ("client_id", "tagpilot"),
                ];
                form.extend(query.iter().copied());
                http.post(realm_url).form(&form)
            }
            Credentials::Basic { username, password } => http
                .get(realm_url)
                .query(&query)
                .header(reqwest::header::AUTHORIZATION, basic(username, password)),
            Credentials::Anonymous => http.get(realm_url).query(&query),
        };
        let resp = self.with_retries(registry, req, stats).await?;
        let status = resp.status();
        if !status.is_success() {
            let message = registry_message(resp).await;
            return Err(
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    RegistryError::AuthenticationFailed {
                        registry: registry.clone(),
                        message,
                    }
                } else {
                    RegistryError::Protocol {
                        registry: registry.clone(),
                        message: format!("token server answered {status}: {message}"),
                    }
                },
            );
        }
        let body = read_body(resp, registry).await?;
        #[derive(serde::Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let reply: TokenReply =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                registry: registry.clone(),
                message: format!("token server reply is not JSON: {e}"),
            })?;
        let value = reply
            .token
            .or(reply.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Protocol {
                registry: registry.clone(),
                message: "token server reply has no token".into(),
            })?;
        let lifetime = Duration::from_secs(reply.expires_in.unwrap_or(60).max(60));
        Ok(Token {
            value,
            expires: Instant::now() + lifetime,
        })
    }

    /// Sends with the registry's concurrency limit, retrying 408, 429, 5xx and connection errors with
    /// exponential backoff or the registry's `Retry-After`. A refused connection (nothing listens) and a failed
    /// TLS handshake are not retried here, as go-containerregistry does not: the reconcile's own backoff
    /// retries them, without holding a worker for seconds.
    async fn with_retries(
        &self,
        registry: &str,
        req: reqwest::RequestBuilder,
        stats: &mut u32,
    ) -> Result<reqwest::Response, RegistryError> {
        let limit = self.limit(registry);
        let mut backoff = self.inner.backoff;
        let mut attempt = 0;
        loop {
            let this = req
                .try_clone()
                .expect("registry requests have no streaming body");
            let result = {
                let _permit = limit.acquire().await.expect("the limiter is never closed");
                *stats += 1;
                this.send().await
            };
            let retryable = match &result {
                Ok(r) => matches!(r.status().as_u16(), 408 | 429 | 500 | 502 | 503 | 504),
                // A TLS handshake that fails (a plain-HTTP server, a protocol mismatch) fails again.
                Err(e) => {
                    (e.is_connect() || e.is_timeout() || e.is_request())
                        && !is_tls_failure(e)
                        && !is_connection_refused(e)
                }
            };
            if !retryable || attempt >= self.inner.retries {
                return result.map_err(|e| RegistryError::from_transport(registry, e));
            }
            let wait = result
                .as_ref()
                .ok()
                .and_then(retry_after)
                .unwrap_or(backoff)
                .min(Duration::from_secs(60));
            tracing::debug!(registry, attempt, ?wait, "retrying registry request");
            tokio::time::sleep(wait).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        }
    }
}

impl RegistryClient {
    /// Whether `registry` answered over plain HTTP after HTTPS failed.
    pub(crate) fn known_plain_http(&self, registry: &str) -> bool {
        self.inner.plain_http.lock().unwrap().contains(registry)
    }

    /// Records that `registry` answers over plain HTTP.
    pub(crate) fn remember_plain_http(&self, registry: &str) {
        self.inner
            .plain_http
            .lock()
            .unwrap()
            .insert(registry.to_string());
    }
}

/// Whether a request failed in the TLS handshake: rustls's error, possibly inside I/O errors (a plain-HTTP
/// server answering a ClientHello gives "received corrupt message of type InvalidContentType").
/// Whether nothing listens at the address (ECONNREFUSED anywhere in the error's sources).
fn is_connection_refused(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

fn is_tls_failure(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        // hyper-rustls wraps tokio-rustls's I/O error (InvalidData, rustls::Error) in another I/O error.
        let mut io = err.downcast_ref::<std::io::Error>();
        while let Some(inner) = io.and_then(std::io::Error::get_ref) {
            if inner.downcast_ref::<rustls::Error>().is_some() {
                return true;
            }
            io = inner.downcast_ref::<std::io::Error>();
        }
        cur = err.source();
    }
    false
}

fn basic(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate_to_unix(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(when.saturating_sub(now)))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
fn httpdate_to_unix(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + m * 60 + sec).ok()
}

/// Parses `Basic realm="x"` or `Bearer realm="...",service="...",scope="..."`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut fields = HashMap::new();
    let mut rest = params;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq]
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        fields.insert(key, value.to_string());
        rest = next;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: fields.remove("realm")?,
            service: fields.remove("service"),
        }),
        _ => None,
    }
}

/// Whether `url` is on the registry's own host and port (`registry` is `host` or `host:port`).
pub(crate) fn is_registry_origin(url: &reqwest::Url, registry: &str) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let (reg_host, reg_port) = match registry.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || registry.starts_with('[') => match p.parse::<u16>() {
            Ok(port) => (h, Some(port)),
            Err(_) => (registry, None),
        },
        _ => (registry, None),
    };
    let reg_host = reg_host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case(reg_host)
        && match reg_port {
            Some(p) => url.port_or_known_default() == Some(p),
            None => url.port().is_none(),
        }
}

/// Reads a body up to [`MAX_BODY`].
pub(crate) async fn read_body(
    resp: reqwest::Response,
    registry: &str,
) -> Result<Vec<u8>, RegistryError> {
    read_capped(resp, registry, MAX_BODY).await
}

/// Reads a body up to `max` bytes (refused early when its Content-Length says more).
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    registry: &str,
    max: usize,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::Protocol {
        registry: registry.to_string(),
        message: if max.is_multiple_of(1 << 20) {
            format!("response larger than {} MiB", max >> 20)
        } else {
            format!("response larger than {max} bytes")
        },
    };
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| RegistryError::from_transport(registry, e))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The registry's own error message: `errors[].message` of a distribution error body, else the text; capped
/// and redacted (it is the registry's text).
pub(crate) async fn registry_message(resp: reqwest::Response) -> String {
    crate::sanitize::message(&registry_message_uncapped(resp).await)
}

async fn registry_message_uncapped(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = read_body(resp, "").await.unwrap_or_default();
    error_text(status, &body)
}

/// The message of an error answer: `errors[].code: message` of a distribution error body, else its text (200
/// characters), else the status.
pub fn error_text(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|x| match (&x.code, &x.message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') {
        status.to_string()
    } else {
        text.chars().take(200).collect()
    }
}

/// A header map with one header.
pub(crate) fn accept(value: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(reqwest::header::ACCEPT, HeaderValue::from_static(value));
    h
}

impl RegistryClient {
    /// Sends the first request to a registry: over plain HTTP when `insecure`, else over HTTPS, and then over
    /// plain HTTP when a loopback or private registry cannot be reached over TLS (see [`may_fall_back`]), as
    /// go-containerregistry pings both. Returns the response and the scheme that answered; when plain HTTP
    /// does not answer with success either, the HTTPS error is the useful one and is returned.
    pub(super) async fn send_first(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_recognised_and_not_retried() {
        // A port nobody listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/v2/"))
            .send()
            .await
            .unwrap_err();
        assert!(is_connection_refused(&err), "{err:?}");
        assert!(!is_tls_failure(&err));

        let client = RegistryClient::default();
        let mut requests = 0;
        let req = client
            .http(&Transport::default())
            .unwrap()
            .get(format!("http://127.0.0.1:{port}/v2/"));
        let result = client.with_retries("127.0.0.1", req, &mut requests).await;
        assert!(result.is_err());
        assert_eq!(requests, 1, "not retried");
    }

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge("Basic realm=\"registry\""),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge("bearer realm=https://x/token, service=svc"),
            Some(Challenge::Bearer {
                realm: "https://x/token".into(),
                service: Some("svc".into())
            })
        );
        assert_eq!(
            parse_challenge("Bearer service=\"x\""),
            None,
            "a bearer challenge needs a realm"
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            httpdate_to_unix("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(httpdate_to_unix("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(httpdate_to_unix("not a date"), None);
    }
}
