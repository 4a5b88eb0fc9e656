//! Gates a tag passes before an ImagePolicy may pick it (tagpilot extensions, off by default): a cosign
//! signature, a minimum age, required platforms; and the newestBuild order, which needs the same image facts.
//!
//! The policy's order is kept: the best tag by the policy is checked first, and only when it fails is the next
//! best asked for ([`choose`]), so the registry is asked about the tags above the pick and the pick itself,
//! never the whole list (newestBuild, which orders by image facts, is the exception). What the registry says is
//! cached by digest ([`GateCache`]): a rescan asks only for each candidate tag's digest.

mod cache;
mod choose;
mod facts;

use std::time::Duration;

pub use cache::GateCache;
pub use choose::{
    Choice, GateContext, GateError, MAX_CHECKED, MAX_NEWEST_BUILD, Skip, choose, describe,
};
pub use facts::{ImageFacts, facts_of_manifest};

/// The checked gates of one ImagePolicy.
#[derive(Clone, Debug, Default)]
pub struct Gates {
    /// `spec.verify`.
    pub verify: Option<VerifySpec>,
    /// `spec.minimumAge` and `spec.ageSource`.
    pub minimum_age: Option<(Duration, AgeSource)>,
    /// `spec.platforms`: every one must be in the tag's image.
    pub platforms: Vec<Platform>,
    /// `policy.newestBuild`: order by the image's creation time.
    pub newest_build: bool,
}

impl Gates {
    /// Whether any gate is on (else the policy selects from the tags alone, as Flux).
    pub fn any(&self) -> bool {
        self.verify.is_some()
            || self.minimum_age.is_some()
            || !self.platforms.is_empty()
            || self.newest_build
    }

    /// Whether the image's manifest and config are needed (platforms, creation time).
    pub(crate) fn needs_facts(&self) -> bool {
        !self.platforms.is_empty()
            || self.newest_build
            || matches!(self.minimum_age, Some((_, AgeSource::Created)))
    }
}

/// What a tag's age counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgeSource {
    /// The config's `created`, else the first sighting.
    Created,
    /// The first sighting only.
    FirstSeen,
}

/// How signatures are checked.
#[derive(Clone, Debug)]
pub enum VerifySpec {
    /// Public keys: every `*.pub` entry of this Secret.
    Keys {
        /// The Secret's name (the policy's namespace).
        secret: String,
    },
    /// Keyless: Fulcio certificates matched by (issuer, subject) patterns, against this trusted root.
    Keyless {
        /// Where `trusted_root.json` is.
        trusted_root: TrustedRootSource,
        /// (issuer, subject) patterns, anchored.
        identities: Vec<(regex::Regex, regex::Regex)>,
    },
}

/// The object holding `trusted_root.json` (the policy's namespace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustedRootSource {
    /// `spec.verify.trustedRootSecretRef`.
    Secret(String),
    /// `spec.verify.trustedRootConfigMapRef`.
    ConfigMap(String),
}

/// A platform `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`.
    pub architecture: String,
    /// `v8`, `v7`.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.len() <= 32
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| valid(p)) {
            return Err(
                "expected os/architecture[/variant], such as linux/arm64 or linux/arm/v7".into(),
            );
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// Whether an image of `have` runs here: same os and architecture, and the variant when one is asked for.
    pub fn satisfied_by(&self, have: &Platform) -> bool {
        self.os == have.os
            && self.architecture == have.architecture
            && (self.variant.is_none() || self.variant == have.variant)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Compiles a pattern that must match a whole value (as Flux's `matchOIDCIdentity` regexes are used).
pub fn anchored(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse_and_match() {
        let want = Platform::parse("linux/arm64").unwrap();
        assert!(want.satisfied_by(&Platform::parse("linux/arm64/v8").unwrap()));
        assert!(!want.satisfied_by(&Platform::parse("linux/amd64").unwrap()));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(!v7.satisfied_by(&Platform::parse("linux/arm/v6").unwrap()));
        assert_eq!(v7.to_string(), "linux/arm/v7");
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "Linux/amd64",
            "a/b/c/d",
            "linux/amd64 ",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identities_match_whole_values() {
        let r = anchored("https://github.com/org/.*").unwrap();
        assert!(r.is_match("https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main"));
        assert!(!r.is_match("evil https://github.com/org/x"));
        assert!(anchored("(").is_err());
    }
}
