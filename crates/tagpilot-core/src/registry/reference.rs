//! Image names as `spec.image` gives them, and their canonical form as Flux shows it.

use std::fmt;

/// An image repository without tag or digest: a registry host (with port) and a repository path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageName {
    /// `index.docker.io`, `ghcr.io`, `127.0.0.1:5000`, ...
    pub registry: String,
    /// `library/alpine`, `stefanprodan/podinfo`, ...
    pub repository: String,
}

/// Why `spec.image` is not an image name; the message names the problem and the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Empty.
    #[error("image name is empty")]
    Empty,
    /// `https://...`.
    #[error("image \"{0}\" must not have a scheme (remove \"{1}://\")")]
    Scheme(String, String),
    /// `repo:tag` or `repo@digest`.
    #[error("image \"{0}\" must not have a tag or digest (remove \"{1}\")")]
    TagOrDigest(String, String),
    /// Bad characters or shape.
    #[error("image \"{0}\" is not a valid repository name: {1}")]
    Invalid(String, String),
}

/// The registry Docker Hub images are listed from.
pub const DOCKER_HUB: &str = "index.docker.io";

impl ImageName {
    /// Parses an image name: `alpine`, `docker.io/x/y`, `ghcr.io/x/y`, `127.0.0.1:5000/x`.
    pub fn parse(image: &str) -> Result<ImageName, ReferenceError> {
        let invalid = |why: &str| ReferenceError::Invalid(image.to_string(), why.to_string());
        if image.trim().is_empty() {
            return Err(ReferenceError::Empty);
        }
        if let Some((scheme, _)) = image.split_once("://") {
            return Err(ReferenceError::Scheme(
                image.to_string(),
                scheme.to_string(),
            ));
        }
        if let Some(at) = image.find('@') {
            return Err(ReferenceError::TagOrDigest(
                image.to_string(),
                image[at..].to_string(),
            ));
        }
        let (first, rest) = match image.split_once('/') {
            Some((f, r)) if f.contains(['.', ':']) || f == "localhost" => (Some(f), r),
            _ => (None, image),
        };
        if let Some(colon) = rest.rfind(':') {
            return Err(ReferenceError::TagOrDigest(
                image.to_string(),
                rest[colon..].to_string(),
            ));
        }
        let registry = match first {
            None | Some("docker.io" | "index.docker.io" | "registry-1.docker.io") => {
                DOCKER_HUB.to_string()
            }
            Some(host) => {
                if !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
                {
                    return Err(invalid("the registry host has invalid characters"));
                }
                host.to_string()
            }
        };
        let mut repository = rest.to_string();
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        for component in repository.split('/') {
            if component.is_empty() {
                return Err(invalid("empty path component"));
            }
            let ok_chars = component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
            let edges = component.starts_with(|c: char| c.is_ascii_alphanumeric())
                && component.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !ok_chars || !edges {
                return Err(invalid(&format!(
                    "path component \"{component}\" must be lowercase letters, digits and separators (. _ -)"
                )));
            }
        }
        if repository.len() > 255 {
            return Err(invalid("longer than 255 characters"));
        }
        Ok(ImageName {
            registry,
            repository,
        })
    }

    /// `registry/repository`, as Flux reports `status.canonicalImageName`.
    pub fn canonical(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The host without port (`[::1]` keeps its brackets).
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if r.starts_with('[') {
            return r.find(']').map_or(r, |end| &r[..=end]);
        }
        match r.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit()) => {
                host
            }
            _ => r,
        }
    }

    /// Whether the registry is on a loopback or private address, where plain HTTP is tried after HTTPS fails
    /// (as go-containerregistry does).
    pub fn is_local(&self) -> bool {
        let host = self.host().trim_start_matches('[').trim_end_matches(']');
        if host == "localhost" || host.ends_with(".local") {
            return true;
        }
        match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private(),
            Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback(),
            Err(_) => false,
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(s: &str) -> String {
        ImageName::parse(s).unwrap().canonical()
    }

    #[test]
    fn canonical_names_as_flux_shows_them() {
        assert_eq!(canonical("alpine"), "index.docker.io/library/alpine");
        assert_eq!(canonical("docker.io/x/y"), "index.docker.io/x/y");
        assert_eq!(
            canonical("docker.io/alpine"),
            "index.docker.io/library/alpine"
        );
        assert_eq!(
            canonical("stefanprodan/podinfo"),
            "index.docker.io/stefanprodan/podinfo"
        );
        assert_eq!(
            canonical("ghcr.io/stefanprodan/podinfo"),
            "ghcr.io/stefanprodan/podinfo"
        );
        assert_eq!(
            canonical("127.0.0.1:5000/team/app"),
            "127.0.0.1:5000/team/app"
        );
        assert_eq!(canonical("localhost/app"), "localhost/app");
        assert_eq!(
            canonical("registry.example.com:443/a/b/c"),
            "registry.example.com:443/a/b/c"
        );
    }

    #[test]
    fn schemes_tags_and_digests_are_errors_naming_the_problem() {
        assert_eq!(
            ImageName::parse("https://ghcr.io/a/b")
                .unwrap_err()
                .to_string(),
            "image \"https://ghcr.io/a/b\" must not have a scheme (remove \"https://\")"
        );
        assert_eq!(
            ImageName::parse("ghcr.io/a/b:1.0").unwrap_err().to_string(),
            "image \"ghcr.io/a/b:1.0\" must not have a tag or digest (remove \":1.0\")"
        );
        assert!(matches!(
            ImageName::parse("alpine:3"),
            Err(ReferenceError::TagOrDigest(..))
        ));
        assert!(matches!(
            ImageName::parse("127.0.0.1:5000/app:1"),
            Err(ReferenceError::TagOrDigest(..))
        ));
        assert!(matches!(
            ImageName::parse("a/b@sha256:00"),
            Err(ReferenceError::TagOrDigest(..))
        ));
        for bad in ["ghcr.io/A/b", "ghcr.io//b", "ghcr.io/-a", "a b", ""] {
            assert!(ImageName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_registries() {
        assert!(ImageName::parse("127.0.0.1:5000/a").unwrap().is_local());
        assert!(ImageName::parse("localhost:5000/a").unwrap().is_local());
        assert!(ImageName::parse("10.1.2.3/a").unwrap().is_local());
        assert!(!ImageName::parse("ghcr.io/a").unwrap().is_local());
        assert_eq!(
            ImageName::parse("127.0.0.1:5000/a").unwrap().host(),
            "127.0.0.1"
        );
    }
}
