//! Webhook receivers (Flux's `Receiver` of notification.toolkit.fluxcd.io): the secret URL path, and the
//! verification of a call by the receiver's type, free of HTTP and cluster I/O.
//!
//! | type | what is checked |
//! |---|---|
//! | `generic` | nothing but the URL (the token is in the path) |
//! | `generic-hmac` | `X-Signature: <sha1\|sha256\|sha512>=<hex HMAC of the body with the token>` |
//! | `github` | `X-Hub-Signature-256` (or `X-Hub-Signature`, sha1) HMAC; `X-GitHub-Event` in `events` when set; `ping` answered |
//! | `dockerhub` | a Docker Hub push payload (`push_data.tag`, and `repository.repo_name` or `repository.repo_url`) |
//! | `harbor` | `Authorization` equals the token |
//! | `quay` | a Quay push payload (`docker_url`, `updated_tags`) |
//! | `nexus` | `X-Nexus-Webhook-Signature`: hex HMAC-SHA1 of the body with the token |
//! | `gcr` | a Pub/Sub push (`message.data`, base64 JSON with `action` INSERT) and an `Authorization: Bearer` Google ID token that is well formed, issued by Google, not expired, for the Secret's `email` and `audience` (both required, as Flux); its RSA signature needs Google's keys online and is not checked here |
//! | `acr` | an Azure Container Registry push payload (`action` push, `target.repository`) |
//!
//! Every comparison with a secret is constant-time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The receiver types served.
pub const TYPES: &[&str] = &[
    "generic",
    "generic-hmac",
    "github",
    "dockerhub",
    "harbor",
    "quay",
    "nexus",
    "gcr",
    "acr",
];

/// The largest body accepted (1 MiB).
pub const MAX_BODY: usize = 1 << 20;

/// Flux's webhook path: `/hook/` and the hex SHA-256 of token, name and namespace.
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    let digest = Sha256::digest(format!("{token}{name}{namespace}").as_bytes());
    format!("/hook/{}", crate::hex::encode(&digest))
}

/// Equality in time independent of where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// What a Receiver's Secret holds: the token, and for `gcr` the e-mail and audience the ID token must name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiverSecret {
    /// `token`.
    pub token: String,
    /// `email` (gcr).
    pub email: Option<String>,
    /// `audience` (gcr).
    pub audience: Option<String>,
}

impl ReceiverSecret {
    /// Reads the Secret's data; the error names the missing key (never a value).
    pub fn from_data(
        data: &std::collections::BTreeMap<String, Vec<u8>>,
    ) -> Result<ReceiverSecret, String> {
        let text = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Ok(ReceiverSecret {
            token: text("token").ok_or("required key 'token' is missing or empty")?,
            email: text("email"),
            audience: text("audience"),
        })
    }
}

/// What to do with a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: reconcile the resources. The note says what was announced (for the event).
    Accept(String),
    /// Valid but not a push (a ping, another event or action): answer 200 and do nothing.
    Ignore(String),
    /// Refused: answer with this status (400 or 401) and reason; no secret in the reason.
    Reject(u16, String),
}

/// The request headers, names in any case.
pub trait Headers {
    /// The value of a header, if present.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn hmac_hex(algo: &str, key: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], body: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("HMAC takes any key");
        m.update(body);
        m.finalize().into_bytes().to_vec()
    }
    Some(match algo {
        "sha1" => mac::<Hmac<sha1::Sha1>>(key, body),
        "sha256" => mac::<Hmac<Sha256>>(key, body),
        "sha512" => mac::<Hmac<Sha512>>(key, body),
        _ => return None,
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks `<algo>=<hex>` against the HMAC of `body` with `token`.
fn check_signature(
    header: Option<&str>,
    name: &str,
    token: &str,
    body: &[u8],
) -> Result<(), Verdict> {
    let Some(value) = header else {
        return Err(Verdict::Reject(401, format!("missing {name} header")));
    };
    let (algo, sig) = value.split_once('=').unwrap_or(("", value));
    let Some(expected) = hmac_hex(&algo.to_ascii_lowercase(), token.as_bytes(), body) else {
        return Err(Verdict::Reject(
            401,
            format!("{name}: unsupported algorithm {algo:?} (sha1, sha256, sha512)"),
        ));
    };
    match unhex(sig.trim()) {
        Some(given) if constant_time_eq(&given, &expected) => Ok(()),
        _ => Err(Verdict::Reject(401, format!("{name}: signature mismatch"))),
    }
}

fn json(body: &[u8]) -> Result<serde_json::Value, Verdict> {
    serde_json::from_slice(body)
        .map_err(|e| Verdict::Reject(400, format!("the body is not JSON: {e}")))
}

fn field<'v>(v: &'v serde_json::Value, path: &[&str]) -> Option<&'v str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

/// Verifies a call to a receiver of type `kind` with its Secret (and its `events` filter).
pub fn verify(
    kind: &str,
    secret: &ReceiverSecret,
    events: &[String],
    headers: &dyn Headers,
    body: &[u8],
) -> Verdict {
    match verify_inner(kind, secret, events, headers, body) {
        Ok(v) | Err(v) => v,
    }
}

fn verify_inner(
    kind: &str,
    secret: &ReceiverSecret,
    events: &[String],
    headers: &dyn Headers,
    body: &[u8],
) -> Result<Verdict, Verdict> {
    let token = secret.token.as_str();
    Ok(match kind {
        "generic" => Verdict::Accept("generic call".into()),
        "generic-hmac" => {
            check_signature(headers.get("X-Signature"), "X-Signature", token, body)?;
            Verdict::Accept("generic-hmac call".into())
        }
        "github" => {
            match headers.get("X-Hub-Signature-256") {
                Some(sig) => check_signature(Some(sig), "X-Hub-Signature-256", token, body)?,
                None => check_signature(
                    headers.get("X-Hub-Signature"),
                    "X-Hub-Signature",
                    token,
                    body,
                )?,
            }
            let event = headers.get("X-GitHub-Event").unwrap_or_default();
            if event == "ping" {
                return Ok(Verdict::Ignore("GitHub ping".into()));
            }
            if !events.is_empty() && !events.iter().any(|e| e.eq_ignore_ascii_case(event)) {
                return Ok(Verdict::Ignore(format!(
                    "GitHub event {event:?} is not in spec.events"
                )));
            }
            Verdict::Accept(format!("GitHub {event} event"))
        }
        "dockerhub" => {
            let v = json(body)?;
            let (Some(tag), Some(repo)) = (
                field(&v, &["push_data", "tag"]),
                field(&v, &["repository", "repo_name"])
                    .or_else(|| field(&v, &["repository", "repo_url"])),
            ) else {
                return Err(Verdict::Reject(
                    400,
                    "not a Docker Hub push payload (push_data.tag, repository.repo_name or repo_url)"
                        .into(),
                ));
            };
            Verdict::Accept(format!("Docker Hub push of {repo}:{tag}"))
        }
        "harbor" => {
            let given = headers.get("Authorization").unwrap_or_default();
            if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
                return Err(Verdict::Reject(401, "Authorization header mismatch".into()));
            }
            let v = json(body)?;
            let what = field(&v, &["type"]).unwrap_or("event");
            Verdict::Accept(format!("Harbor {what}"))
        }
        "quay" => {
            let v = json(body)?;
            let (Some(url), Some(tags)) = (
                field(&v, &["docker_url"]),
                v.get("updated_tags").and_then(|t| t.as_array()),
            ) else {
                return Err(Verdict::Reject(
                    400,
                    "not a Quay push payload (docker_url, updated_tags)".into(),
                ));
            };
            let tags: Vec<&str> = tags.iter().filter_map(|t| t.as_str()).collect();
            Verdict::Accept(format!("Quay push of {url}:{}", tags.join(",")))
        }
        "nexus" => {
            let sig = headers
                .get("X-Nexus-Webhook-Signature")
                .map(|s| format!("sha1={s}"));
            check_signature(sig.as_deref(), "X-Nexus-Webhook-Signature", token, body)?;
            let v = json(body)?;
            let action = field(&v, &["action"]).unwrap_or("event");
            Verdict::Accept(format!("Nexus {action}"))
        }
        "gcr" => {
            let missing = |key: &str| {
                Verdict::Reject(
                    400,
                    format!("the Secret has no '{key}' key, which gcr receivers require"),
                )
            };
            let email = secret.email.as_deref().ok_or_else(|| missing("email"))?;
            let audience = secret
                .audience
                .as_deref()
                .ok_or_else(|| missing("audience"))?;
            check_google_token(headers.get("Authorization"), email, audience)?;
            let v = json(body)?;
            let Some(data) = field(&v, &["message", "data"]) else {
                return Err(Verdict::Reject(
                    400,
                    "not a Pub/Sub push (message.data)".into(),
                ));
            };
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|_| Verdict::Reject(400, "message.data is not base64".into()))?;
            let event = json(&decoded)?;
            let action = field(&event, &["action"]).unwrap_or_default();
            if action != "INSERT" {
                return Ok(Verdict::Ignore(format!(
                    "GCR action {action:?} is not INSERT"
                )));
            }
            let tag = field(&event, &["tag"])
                .unwrap_or_else(|| field(&event, &["digest"]).unwrap_or("?"));
            Verdict::Accept(format!("GCR insert of {tag}"))
        }
        "acr" => {
            let v = json(body)?;
            let (Some(action), Some(repo)) =
                (field(&v, &["action"]), field(&v, &["target", "repository"]))
            else {
                return Err(Verdict::Reject(
                    400,
                    "not an ACR payload (action, target.repository)".into(),
                ));
            };
            if action != "push" {
                return Ok(Verdict::Ignore(format!(
                    "ACR action {action:?} is not push"
                )));
            }
            let tag = field(&v, &["target", "tag"]).unwrap_or("?");
            Verdict::Accept(format!("ACR push of {repo}:{tag}"))
        }
        other => Verdict::Reject(400, format!("receiver type {other:?} is not supported")),
    })
}

/// The checks of a Google ID token that need no network: three parts, a JSON payload issued by Google for
/// `email` and `audience`, not expired.
fn check_google_token(header: Option<&str>, email: &str, audience: &str) -> Result<(), Verdict> {
    use base64::Engine;
    let reject = |why: &str| Verdict::Reject(401, format!("Authorization: {why}"));
    let token = header
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| reject("missing bearer token"))?;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(reject("not a JWT"));
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| reject("the JWT payload is not base64url"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|_| reject("the JWT payload is not JSON"))?;
    let iss = claims["iss"].as_str().unwrap_or_default();
    if iss != "accounts.google.com" && iss != "https://accounts.google.com" {
        return Err(reject("the token is not issued by Google"));
    }
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if exp <= now {
        return Err(reject("the token has expired"));
    }
    if claims["email"].as_str() != Some(email) {
        return Err(reject("the token is not for the Secret's e-mail"));
    }
    let aud_matches = match &claims["aud"] {
        serde_json::Value::String(a) => a == audience,
        serde_json::Value::Array(list) => list.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    };
    if !aud_matches {
        return Err(reject("the token is not for the Secret's audience"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
