//! One way to call a provider: its authentication header, JSON in and out, bodies capped, errors with the
//! provider's own message, rate limits turned into a wait.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Credentials, Forge, ForgeError, Provider};

/// The largest answer read from a provider.
pub const MAX_BODY: usize = 8 << 20;
/// The longest provider message kept in an error.
const MAX_MESSAGE: usize = 300;
/// A rate limit's wait is kept within these bounds.
const MIN_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// GitLab and Gitea often send no `Retry-After` with a 429: wait this long.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// The status (2xx).
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The JSON body (`null` when empty).
    pub body: Value,
}

/// A client for provider APIs: rustls, 30 s per call, no redirects (a token is never sent elsewhere).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tagpilot/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl Forge {
    /// Calls `path` (with its query, relative to the API URL) with the repository's credentials. A GitHub App
    /// token the provider refuses (401) is exchanged again once.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ForgeError> {
        let token = self.token().await?;
        match send(self, &method, path, body, &token).await {
            Err(ForgeError::Api { status: 401, .. })
                if matches!(self.credentials, Credentials::GitHubApp(_)) =>
            {
                if let Credentials::GitHubApp(a) = &self.credentials {
                    super::app::forget(a);
                }
                let token = self.token().await?;
                send(self, &method, path, body, &token).await
            }
            other => other,
        }
    }
}

async fn send(
    forge: &Forge,
    method: &Method,
    path: &str,
    body: Option<&Value>,
    token: &str,
) -> Result<Answer, ForgeError> {
    let url = format!("{}{path}", forge.api_url);
    let mut req = forge.http.request(method.clone(), &url);
    req = match forge.provider {
        Provider::GitHub => req
            .bearer_auth(token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28"),
        Provider::GitLab => req
            .header("PRIVATE-TOKEN", token)
            .header("Accept", "application/json"),
        Provider::Gitea => req
            .header("Authorization", format!("token {token}"))
            .header("Accept", "application/json"),
    };
    if let Some(b) = body {
        req = req.json(b);
    }
    exchange(forge.provider, method, path, &url, req).await
}

/// Sends `req` and reads the answer: 2xx as JSON, else the provider's error.
pub(crate) async fn exchange(
    provider: Provider,
    method: &Method,
    path: &str,
    url: &str,
    req: reqwest::RequestBuilder,
) -> Result<Answer, ForgeError> {
    let name = provider.name();
    let transport = |message: String| ForgeError::Transport {
        provider: name,
        url: crate::sanitize::url(url),
        message: crate::sanitize::message(&message),
    };
    let resp = req.send().await.map_err(|e| transport(e.to_string()))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = read_capped(resp).await.map_err(transport)?;
    if status.is_success() {
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| transport(format!("HTTP {status}: the answer is not JSON: {e}")))?
        };
        return Ok(Answer {
            status,
            headers,
            body,
        });
    }
    let message = error_message(&bytes);
    if let Some(retry_after) = rate_limit(provider, status, &headers, &message) {
        return Err(ForgeError::RateLimited {
            provider: name,
            message,
            retry_after,
        });
    }
    Err(ForgeError::Api {
        provider: name,
        method: method_name(method),
        path: path.split('?').next().unwrap_or(path).to_string(),
        status: status.as_u16(),
        message,
    })
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "request",
    }
}

/// The body, at most [`MAX_BODY`] bytes.
async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let too_large = || format!("answer larger than {} MiB", MAX_BODY >> 20);
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The provider's message: GitHub's `message` with its `errors[].message`, GitLab's `message` (a string, a
/// list or a map of field errors) or `error`, Gitea's `message`; else the text. One line, capped, no
/// credentials.
pub fn error_message(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let mut parts = Vec::new();
            for key in ["message", "error", "error_description"] {
                if let Some(m) = v.get(key) {
                    parts.push(flatten(m));
                }
            }
            if let Some(errors) = v.get("errors").and_then(Value::as_array) {
                for e in errors.iter().take(5) {
                    parts.push(match e.get("message") {
                        Some(m) => flatten(m),
                        None => flatten(e),
                    });
                }
            }
            if parts.is_empty() {
                String::from_utf8_lossy(body).into_owned()
            } else {
                parts.join(": ")
            }
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::sanitize::cap(crate::sanitize::text(one_line.trim()).as_str(), MAX_MESSAGE)
}

fn flatten(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(flatten).collect::<Vec<_>>().join(", "),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k} {}", flatten(v)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// A rate limit's wait, if the answer is one. GitHub: 403 or 429 with `x-ratelimit-remaining: 0` (until
/// `x-ratelimit-reset`) or with `retry-after` (secondary limits), or a 403 saying "secondary rate limit";
/// GitLab and Gitea: 429 (`Retry-After`, `RateLimit-Reset`, else a minute).
pub fn rate_limit(
    provider: Provider,
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
    let now = jiff::Timestamp::now().as_second();
    let until = |reset: Option<&str>| {
        reset
            .and_then(|v| v.parse::<i64>().ok())
            .map(|r| Duration::from_secs((r - now).max(0) as u64))
    };
    let wait = match provider {
        Provider::GitHub => {
            if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
                return None;
            }
            if let Some(s) = retry_after {
                Duration::from_secs(s)
            } else if header("x-ratelimit-remaining") == Some("0") {
                until(header("x-ratelimit-reset")).unwrap_or(DEFAULT_WAIT)
            } else if status == StatusCode::TOO_MANY_REQUESTS
                || message.to_ascii_lowercase().contains("rate limit")
            {
                DEFAULT_WAIT
            } else {
                return None;
            }
        }
        Provider::GitLab | Provider::Gitea => {
            if status != StatusCode::TOO_MANY_REQUESTS {
                return None;
            }
            retry_after
                .map(Duration::from_secs)
                .or_else(|| until(header("ratelimit-reset")))
                .unwrap_or(DEFAULT_WAIT)
        }
    };
    Some(wait.clamp(MIN_WAIT, MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn provider_messages_one_line_without_credentials() {
        let gh = br#"{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for o:b."}],"documentation_url":"https://docs.github.com"}"#;
        assert_eq!(
            error_message(gh),
            "Validation Failed: A pull request already exists for o:b."
        );
        let gl = br#"{"message":["Another open merge request already exists for this source branch: !7"]}"#;
        assert_eq!(
            error_message(gl),
            "Another open merge request already exists for this source branch: !7"
        );
        let gl = br#"{"message":{"title":["can't be blank"]}}"#;
        assert_eq!(error_message(gl), "title can't be blank");
        let leak = b"bad\nthing at https://user:s3cret@host/x";
        let m = error_message(leak);
        assert!(!m.contains("s3cret") && !m.contains('\n'), "{m}");
        assert!(error_message(&vec![b'a'; 10_000]).len() < 400);
    }

    #[test]
    fn rate_limits_wait_for_their_reset() {
        let mut h = HeaderMap::new();
        let reset = jiff::Timestamp::now().as_second() + 120;
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&reset.to_string()).unwrap(),
        );
        let w = rate_limit(
            Provider::GitHub,
            StatusCode::FORBIDDEN,
            &h,
            "API rate limit exceeded",
        )
        .unwrap();
        assert!((118..=120).contains(&w.as_secs()), "{w:?}");
        // A 403 that is not a limit is a permission error.
        let none = HeaderMap::new();
        assert_eq!(
            rate_limit(
                Provider::GitHub,
                StatusCode::FORBIDDEN,
                &none,
                "Resource not accessible"
            ),
            None
        );
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("30"));
        assert_eq!(
            rate_limit(Provider::GitHub, StatusCode::FORBIDDEN, &h, "secondary"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            rate_limit(Provider::GitLab, StatusCode::TOO_MANY_REQUESTS, &h, ""),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            rate_limit(Provider::Gitea, StatusCode::TOO_MANY_REQUESTS, &none, ""),
            Some(DEFAULT_WAIT)
        );
        assert_eq!(
            rate_limit(Provider::Gitea, StatusCode::FORBIDDEN, &h, ""),
            None
        );
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("999999"));
        assert_eq!(
            rate_limit(Provider::GitLab, StatusCode::TOO_MANY_REQUESTS, &h, ""),
            Some(MAX_WAIT)
        );
    }
}
