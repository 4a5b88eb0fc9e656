//! Authentication from a GitRepository secret, as libgit2 callbacks.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use super::GitError;

/// Credentials and trust for one repository, from the secret's keys: `username`, `password`, `bearerToken`,
/// `ca.crt`, `identity`, `known_hosts`. `Debug` shows which are set, never their values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitAuth {
    /// HTTPS user (Basic).
    pub username: Option<String>,
    /// HTTPS password, or the SSH key's passphrase.
    pub password: Option<String>,
    /// HTTPS bearer token.
    pub bearer_token: Option<String>,
    /// PEM CA certificates for HTTPS.
    pub ca_pem: Option<Vec<u8>>,
    /// An SSH private key (PEM or OpenSSH format).
    pub identity: Option<String>,
    /// known_hosts lines; SSH host keys are checked against them strictly.
    pub known_hosts: Option<String>,
    /// An HTTP(S) proxy URL (from a GitRepository's `proxySecretRef`), credentials included.
    pub proxy: Option<String>,
    /// Who the credentials are when the password rotates (a GitHub App's installation tokens): kept clones
    /// are keyed by this instead of the password, so a new token reuses the clone.
    pub identity_key: Option<String>,
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitAuth")
            .field("username", &self.username)
            .field("password", &self.password.is_some())
            .field("bearer_token", &self.bearer_token.is_some())
            .field("ca", &self.ca_pem.is_some())
            .field("identity", &self.identity.is_some())
            .field("known_hosts", &self.known_hosts.is_some())
            .field("proxy", &self.proxy.is_some())
            .finish()
    }
}

impl GitAuth {
    /// From a Secret's data (values already base64-decoded).
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<GitAuth, GitError> {
        let text = |key: &str| -> Result<Option<String>, GitError> {
            data.get(key)
                .map(|v| {
                    String::from_utf8(v.clone()).map_err(|_| {
                        GitError::InvalidAuth(format!("secret key \"{key}\" is not UTF-8 text"))
                    })
                })
                .transpose()
        };
        let auth = GitAuth {
            username: text("username")?,
            password: text("password")?,
            bearer_token: text("bearerToken")?,
            ca_pem: data.get("ca.crt").or_else(|| data.get("caFile")).cloned(),
            identity: text("identity")?,
            known_hosts: text("known_hosts")?,
            proxy: None,
            identity_key: None,
        };
        if auth.bearer_token.is_some() && auth.username.is_some() {
            return Err(GitError::InvalidAuth(
                "the secret has both bearerToken and username: use one".into(),
            ));
        }
        Ok(auth)
    }

    /// HTTP headers to send (a bearer token).
    pub(crate) fn extra_headers(&self) -> Vec<String> {
        self.bearer_token
            .iter()
            .map(|t| format!("Authorization: Bearer {t}"))
            .collect()
    }

    /// Sets the proxy from a proxy Secret's keys `address`, `username`, `password` (Flux's
    /// `proxySecretRef`); the credentials go into the proxy URL.
    pub fn set_proxy_from_secret_data(
        &mut self,
        data: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(), GitError> {
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(address) = text("address") else {
            return Err(GitError::InvalidAuth(
                "the proxy secret has no \"address\" key".into(),
            ));
        };
        let Some((scheme, rest)) = address.split_once("://") else {
            return Err(GitError::InvalidAuth(format!(
                "the proxy address {address:?} is not a URL (http://host:port)"
            )));
        };
        self.proxy = Some(match (text("username"), text("password")) {
            (Some(u), p) => format!(
                "{scheme}://{}:{}@{rest}",
                percent_encode(&u),
                percent_encode(&p.unwrap_or_default())
            ),
            _ => address.clone(),
        });
        Ok(())
    }

    /// libgit2 proxy options: the configured proxy, or none (libgit2 does not read the environment here).
    pub(crate) fn proxy_options(&self) -> git2::ProxyOptions<'static> {
        let mut p = git2::ProxyOptions::new();
        if let Some(url) = &self.proxy {
            p.url(url);
        }
        p
    }

    /// Fetch options carrying these credentials: callbacks, headers and proxy.
    pub(crate) fn fetch_options(&self, url: &str) -> git2::FetchOptions<'static> {
        let mut options = git2::FetchOptions::new();
        options.remote_callbacks(self.callbacks(url));
        options.proxy_options(self.proxy_options());
        let headers = self.extra_headers();
        let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        options.custom_headers(&header_refs);
        options.follow_redirects(self.redirects());
        options
    }

    /// Which redirects libgit2 may follow: none with a bearer token (a custom header goes wherever a redirect
    /// leads), else the first request's, as git does (credentials then go only to the configured host: see
    /// [`GitAuth::callbacks`]).
    pub(crate) fn redirects(&self) -> git2::RemoteRedirect {
        if self.bearer_token.is_some() {
            git2::RemoteRedirect::None
        } else {
            git2::RemoteRedirect::Initial
        }
    }

    /// libgit2 callbacks: credentials (each kind offered once, so a wrong one fails instead of looping) and
    /// the server check (SSH host keys against known_hosts; TLS against `ca.crt` when given).
    pub(crate) fn callbacks(&self, url: &str) -> RemoteCallbacks<'static> {
        let mut cb = RemoteCallbacks::new();
        let me = self.clone();
        let tried_userpass = Cell::new(false);
        let tried_key = Cell::new(false);
        let configured = url.to_string();
        cb.credentials(move |asking, username_from_url, allowed| {
            // Credentials go to the configured scheme, host and port only, wherever an HTTP redirect led (SSH
            // has no redirects).
            let http = configured.starts_with("http://") || configured.starts_with("https://");
            if http && !same_origin(&configured, asking) {
                return Err(git2::Error::from_str(&format!(
                    "refusing to send the credentials for {} to {}",
                    origin(&configured),
                    origin(asking)
                )));
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
                && !tried_userpass.replace(true)
                && let (Some(u), Some(p)) = (&me.username, &me.password)
            {
                return Cred::userpass_plaintext(u, p);
            }
            if allowed.contains(CredentialType::SSH_KEY)
                && !tried_key.replace(true)
                && let Some(key) = &me.identity
            {
                let user = username_from_url
                    .or(me.username.as_deref())
                    .unwrap_or("git");
                return Cred::ssh_key_from_memory(user, None, key, me.password.as_deref());
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(
                    username_from_url
                        .or(me.username.as_deref())
                        .unwrap_or("git"),
                );
            }
            Err(git2::Error::from_str(
                "authentication failed: the server refused the credentials given",
            ))
        });
        let me = self.clone();
        let port = url_port(url);
        cb.certificate_check(move |cert, host| {
            if let Some(hostkey) = cert.as_hostkey() {
                let presented = hostkey.hostkey().unwrap_or_default();
                let Some(known) = &me.known_hosts else {
                    return Err(git2::Error::from_str(&format!(
                        "no known_hosts given: refusing the host key of {host}"
                    )));
                };
                return if known_host_matches(known, host, port, presented) {
                    Ok(CertificateCheckStatus::CertificateOk)
                } else {
                    Err(git2::Error::from_str(&format!(
                        "the host key of {host} is not in known_hosts"
                    )))
                };
            }
            match (&me.ca_pem, cert.as_x509()) {
                (Some(ca), Some(x509)) if verify_with_ca(ca, x509.data(), host) => {
                    Ok(CertificateCheckStatus::CertificateOk)
                }
                _ => Ok(CertificateCheckStatus::CertificatePassthrough),
            }
        });
        cb
    }
}

/// `scheme://host:port` of a URL (userinfo dropped, default port made explicit); the text itself otherwise.
fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        "ssh" => "22",
        _ => "",
    };
    let has_port = hostport.rsplit_once(':').is_some_and(|(h, p)| {
        !h.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
    });
    if has_port || default.is_empty() {
        format!("{scheme}://{}", hostport.to_ascii_lowercase())
    } else {
        format!("{scheme}://{}:{default}", hostport.to_ascii_lowercase())
    }
}

/// Whether two URLs have the same scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    origin(a) == origin(b)
}

/// Percent-encodes a proxy user or password for the userinfo part of a URL.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The port of an `ssh://host:port/...` URL (22 by default, and for scp-like `user@host:path`).
fn url_port(url: &str) -> u16 {
    let Some(rest) = url.strip_prefix("ssh://") else {
        return 22;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    hostport
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(22)
}

/// Whether known_hosts lists `key` for `host` (`host` on port 22, `[host]:port` otherwise). Hashed entries and
/// `@cert-authority` lines are not supported and never match.
fn known_host_matches(known_hosts: &str, host: &str, port: u16, key: &[u8]) -> bool {
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    known_hosts.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(b64)) = (fields.next(), fields.next(), fields.next())
        else {
            return false;
        };
        if hosts.starts_with('#') || hosts.starts_with('@') {
            return false;
        }
        hosts.split(',').any(|h| h == name)
            && base64::engine::general_purpose::STANDARD
                .decode(b64)
                .is_ok_and(|k| k == key)
    })
}

/// Verifies a server certificate (DER) for `host` against the PEM CA certificates.
fn verify_with_ca(ca_pem: &[u8], der: &[u8], host: &str) -> bool {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_pem)
        .filter_map(Result::ok)
        .collect();
    let anchors: Vec<_> = cas
        .iter()
        .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
        .collect();
    if anchors.is_empty() {
        return false;
    }
    let der = CertificateDer::from(der);
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(host) else {
        return false;
    };
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .is_ok()
        && cert.verify_is_valid_for_subject_name(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert!(same_origin("https://h/a.git", "https://user:x@H:443/b"));
        assert!(same_origin(
            "http://h:8080/a",
            "http://h:8080/info/refs?service=git-upload-pack"
        ));
        assert!(!same_origin("https://h/a", "https://h2/a"));
        assert!(!same_origin("https://h/a", "http://h/a"));
        assert!(!same_origin("http://127.0.0.1:1/a", "http://127.0.0.2:1/a"));
        assert!(!same_origin("http://h:1/a", "http://h:2/a"));
    }

    #[test]
    fn proxy_from_secret_with_encoded_credentials() {
        let mut auth = GitAuth::default();
        let data: BTreeMap<String, Vec<u8>> = [
            ("address", "http://127.0.0.1:3128"),
            ("username", "u@corp"),
            ("password", "p:w/d"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
        auth.set_proxy_from_secret_data(&data).unwrap();
        assert_eq!(
            auth.proxy.as_deref(),
            Some("http://u%40corp:p%3Aw%2Fd@127.0.0.1:3128")
        );
        assert!(!format!("{auth:?}").contains("p%3Aw"), "{auth:?}");
        let e = GitAuth::default()
            .set_proxy_from_secret_data(&BTreeMap::new())
            .unwrap_err();
        assert!(e.to_string().contains("\"address\""), "{e}");
    }

    #[test]
    fn known_hosts_entries() {
        let key = b"abc";
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        let kh = format!(
            "# comment\n[127.0.0.1]:2222 ssh-ed25519 {b64}\ngithub.com,140.82.1.1 ssh-ed25519 {b64}\n"
        );
        assert!(known_host_matches(&kh, "127.0.0.1", 2222, key));
        assert!(!known_host_matches(&kh, "127.0.0.1", 22, key));
        assert!(known_host_matches(&kh, "github.com", 22, key));
        assert!(!known_host_matches(&kh, "github.com", 22, b"other"));
        assert_eq!(url_port("ssh://git@127.0.0.1:2222/repo.git"), 2222);
        assert_eq!(url_port("git@github.com:org/repo.git"), 22);
    }

    #[test]
    fn secret_data_and_debug() {
        let data: BTreeMap<String, Vec<u8>> = [
            ("username".to_string(), b"bot".to_vec()),
            ("password".to_string(), b"s3cret".to_vec()),
        ]
        .into();
        let auth = GitAuth::from_secret_data(&data).unwrap();
        assert_eq!(auth.username.as_deref(), Some("bot"));
        assert!(!format!("{auth:?}").contains("s3cret"));
        let both: BTreeMap<String, Vec<u8>> = [
            ("username".to_string(), b"bot".to_vec()),
            ("bearerToken".to_string(), b"t".to_vec()),
        ]
        .into();
        assert!(GitAuth::from_secret_data(&both).is_err());
    }
}
