//! A repository's identity on its provider, read from the clone URL; the provider and the API URL when the
//! host says them.

use super::{ForgeError, Provider};

/// A repository on a provider.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RepoId {
    /// `http` or `https` (an SSH URL's API is `https`).
    pub scheme: String,
    /// The host, with the port of an HTTP(S) URL (an SSH port is not the API's).
    pub host: String,
    /// The path without leading `/` and trailing `.git`: `owner/repo`, or GitLab's `group/sub/project`.
    pub path: String,
}

impl RepoId {
    /// Reads `https://host[:port]/a/b(.git)`, `ssh://git@host[:port]/a/b.git` or `git@host:a/b.git`.
    pub fn parse(url: &str) -> Result<RepoId, ForgeError> {
        let bad = |why: &str| {
            ForgeError::Config(format!(
                "repository URL {:?}: {why}",
                crate::sanitize::url(url)
            ))
        };
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) => (s.to_ascii_lowercase(), rest),
            None => match url.split_once(':') {
                // scp-like: user@host:path
                Some((userhost, path)) if userhost.contains('@') && !path.starts_with('/') => {
                    ("scp".to_string(), url)
                }
                _ => return Err(bad("not an http(s), ssh or scp-like URL")),
            },
        };
        let (authority, path) = if scheme == "scp" {
            let (userhost, path) = rest.split_once(':').unwrap_or((rest, ""));
            (userhost, path)
        } else {
            rest.split_once('/').unwrap_or((rest, ""))
        };
        let hostport = authority.rsplit('@').next().unwrap_or(authority);
        let host = match scheme.as_str() {
            "http" | "https" => hostport.to_string(),
            "ssh" | "scp" => hostport.split(':').next().unwrap_or(hostport).to_string(),
            _ => return Err(bad("not an http(s), ssh or scp-like URL")),
        };
        let path = path
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_matches('/')
            .trim_end_matches(".git")
            .to_string();
        if host.is_empty() || path.split('/').filter(|s| !s.is_empty()).count() < 2 {
            return Err(bad("no owner/repository path"));
        }
        Ok(RepoId {
            scheme: if scheme == "http" { "http" } else { "https" }.to_string(),
            host: host.to_ascii_lowercase(),
            path,
        })
    }

    /// GitHub's and Gitea's `owner/repo` (the first two path segments), each percent-encoded.
    pub fn owner_repo(&self) -> String {
        let mut parts = self.path.split('/');
        let owner = parts.next().unwrap_or_default();
        let repo = parts.next().unwrap_or_default();
        format!("{}/{}", encode(owner), encode(repo))
    }

    /// The owner (first path segment).
    pub fn owner(&self) -> &str {
        self.path.split('/').next().unwrap_or_default()
    }

    /// GitLab's project id: the whole path as one encoded segment (`group%2Fsub%2Fproject`).
    pub fn project_id(&self) -> String {
        encode(&self.path)
    }
}

/// Percent-encodes everything but unreserved characters (so `/` becomes `%2F`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The provider a host is known to be: github.com and GHE.com (`*.ghe.com`), gitlab.com, codeberg.org
/// (Forgejo). Other hosts must say (`spec.pullRequest.provider`).
pub fn infer_provider(repo: &RepoId) -> Option<Provider> {
    let host = repo.host.split(':').next().unwrap_or(&repo.host);
    match host {
        "github.com" | "www.github.com" => Some(Provider::GitHub),
        h if h.ends_with(".ghe.com") => Some(Provider::GitHub),
        "gitlab.com" => Some(Provider::GitLab),
        "codeberg.org" => Some(Provider::Gitea),
        _ => None,
    }
}

/// The API URL of a provider's server as its clone URL gives it: `https://api.github.com` for github.com,
/// `https://api.SUB.ghe.com`, `https://HOST/api/v3` for GitHub Enterprise Server, `/api/v4` for GitLab,
/// `/api/v1` for Gitea and Forgejo. A server under a sub-path needs `spec.pullRequest.apiURL`.
pub fn default_api_url(provider: Provider, repo: &RepoId) -> String {
    let host = &repo.host;
    let base = format!("{}://{host}", repo.scheme);
    match provider {
        Provider::GitHub if host == "github.com" || host == "www.github.com" => {
            "https://api.github.com".into()
        }
        Provider::GitHub if host.ends_with(".ghe.com") => format!("https://api.{host}"),
        Provider::GitHub => format!("{base}/api/v3"),
        Provider::GitLab => format!("{base}/api/v4"),
        Provider::Gitea => format!("{base}/api/v1"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_urls_of_every_form() {
        let r =
            RepoId::parse("https://github.com/fluxcd/flux2-kustomize-helm-example.git").unwrap();
        assert_eq!(
            (r.host.as_str(), r.path.as_str()),
            ("github.com", "fluxcd/flux2-kustomize-helm-example")
        );
        assert_eq!(r.owner_repo(), "fluxcd/flux2-kustomize-helm-example");
        let r = RepoId::parse("ssh://git@gitlab.com:2222/group/sub/proj.git").unwrap();
        assert_eq!(
            (r.scheme.as_str(), r.host.as_str()),
            ("https", "gitlab.com")
        );
        assert_eq!(r.project_id(), "group%2Fsub%2Fproj");
        let r = RepoId::parse("git@codeberg.org:forgejo/forgejo.git").unwrap();
        assert_eq!(
            (r.host.as_str(), r.path.as_str()),
            ("codeberg.org", "forgejo/forgejo")
        );
        let r = RepoId::parse("http://user:pw@127.0.0.1:8080/git/o/r").unwrap();
        assert_eq!(
            (r.scheme.as_str(), r.host.as_str()),
            ("http", "127.0.0.1:8080")
        );
        let e = RepoId::parse("https://user:s3cret@host/onlyone").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(RepoId::parse("ftp://host/a/b").is_err());
    }

    #[test]
    fn providers_and_api_urls_from_hosts() {
        let p = |u| {
            let r = RepoId::parse(u).unwrap();
            (
                infer_provider(&r),
                infer_provider(&r).map(|p| default_api_url(p, &r)),
            )
        };
        assert_eq!(
            p("https://github.com/o/r"),
            (
                Some(Provider::GitHub),
                Some("https://api.github.com".into())
            )
        );
        assert_eq!(
            p("https://acme.ghe.com/o/r"),
            (
                Some(Provider::GitHub),
                Some("https://api.acme.ghe.com".into())
            )
        );
        assert_eq!(
            p("git@gitlab.com:g/p.git"),
            (
                Some(Provider::GitLab),
                Some("https://gitlab.com/api/v4".into())
            )
        );
        assert_eq!(
            p("https://codeberg.org/o/r.git"),
            (
                Some(Provider::Gitea),
                Some("https://codeberg.org/api/v1".into())
            )
        );
        assert_eq!(p("https://git.example.com/o/r").0, None);
        let r = RepoId::parse("https://ghes.example.com/o/r").unwrap();
        assert_eq!(
            default_api_url(Provider::GitHub, &r),
            "https://ghes.example.com/api/v3"
        );
    }
}
