//! The walk: the policy's best tag, checked against the gates; when it fails, the next best, and so on.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::{AgeSource, GateCache, Gates, ImageFacts, facts_of_manifest};
use crate::cosign::Verifier;
use crate::policy::{Policy, SelectError};
use crate::registry::{Credentials, ImageName, RegistryClient, RegistryError, Transport};
use crate::tagstore::StoredTags;

/// Most tags checked against the gates in one evaluation (each costs registry requests).
pub const MAX_CHECKED: usize = 64;
/// Most candidate tags a newestBuild policy orders (each needs its image's creation time).
pub const MAX_NEWEST_BUILD: usize = 5_000;
/// Requests in flight for one newestBuild policy.
const CONCURRENCY: usize = 8;
/// How far in the future a `created` may lie before it is not believed (clock skew).
const SKEW: Duration = Duration::from_secs(300);

/// What the walk needs besides the policy and the tags.
pub struct GateContext<'a> {
    /// The registry client (shared limits).
    pub registry: &'a RegistryClient,
    /// The repository's image.
    pub image: &'a ImageName,
    /// Its credentials.
    pub credentials: &'a Credentials,
    /// Its transport.
    pub transport: &'a Transport,
    /// What is known already.
    pub cache: &'a GateCache,
    /// The repository's last scan (its `lastScanResult.scanTime`): a tag's digest is asked once per scan.
    pub scan: &'a str,
    /// The signature checker, when `spec.verify` is set.
    pub verifier: Option<&'a Verifier>,
    /// Now.
    pub now: jiff::Timestamp,
}

/// A tag the gates turned down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The tag.
    pub tag: String,
    /// Why, in words (`no cosign signature`, `lacks platform linux/arm64`, ...).
    pub why: String,
    /// Turned down by signature verification.
    pub unverified: bool,
}

/// The pick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The tag.
    pub tag: String,
    /// Its digest, when the registry was asked.
    pub digest: Option<String>,
    /// Better tags by the policy that the gates turned down, best first.
    pub skipped: Vec<Skip>,
    /// The soonest a skipped tag becomes old enough.
    pub eligible_at: Option<jiff::Timestamp>,
    /// Registry requests this choice needed.
    pub checked: usize,
}

/// No tag could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The policy itself picks nothing (no tags, none in range, ...).
    #[error(transparent)]
    Select(#[from] SelectError),
    /// The registry could not be asked.
    #[error("{tag}: {source}")]
    Registry {
        /// The tag being checked.
        tag: String,
        /// The error.
        source: RegistryError,
    },
    /// Every candidate was turned down (or the first [`MAX_CHECKED`] were).
    #[error("{}", none_eligible(.skipped, *.limit_reached))]
    NoneEligible {
        /// What was turned down, best first.
        skipped: Vec<Skip>,
        /// The soonest a skipped tag becomes old enough.
        eligible_at: Option<jiff::Timestamp>,
        /// Whether the walk stopped at [`MAX_CHECKED`].
        limit_reached: bool,
    },
    /// A newestBuild policy with more candidates than [`MAX_NEWEST_BUILD`].
    #[error(
        "policy.newestBuild orders {count} tags by their images' creation time, more than {MAX_NEWEST_BUILD}: \
         narrow the candidates with spec.filterTags"
    )]
    TooManyCandidates {
        /// The candidates after the filter.
        count: usize,
    },
}

impl GateError {
    /// Whether a signature check turned a candidate down.
    pub fn unverified(&self) -> bool {
        matches!(self, GateError::NoneEligible { skipped, .. } if skipped.iter().any(|s| s.unverified))
    }
}

/// Longest reason shown per skipped tag.
const MAX_WHY: usize = 300;

/// `1.2.4 (no cosign signature), 1.2.3 (...)`, at most five, then how many more. Reasons quote what registries
/// and certificates say: each is one line, without control characters or URL credentials, and capped.
pub fn describe(skipped: &[Skip]) -> String {
    let mut parts: Vec<String> = skipped
        .iter()
        .take(5)
        .map(|s| {
            let why: String = s.why.chars().filter(|c| !c.is_control()).collect();
            let why = crate::sanitize::cap(&crate::sanitize::text(&why), MAX_WHY);
            format!("{} ({why})", s.tag)
        })
        .collect();
    if skipped.len() > 5 {
        parts.push(format!("and {} more", skipped.len() - 5));
    }
    parts.join(", ")
}

fn none_eligible(skipped: &[Skip], limit: bool) -> String {
    let mut m = format!(
        "no candidate tag passes the policy's gates: {}",
        describe(skipped)
    );
    if limit {
        m.push_str(&format!(" (stopped after {MAX_CHECKED} tags)"));
    }
    m
}

/// What a walk has seen so far.
#[derive(Default)]
struct Walk {
    skipped: Vec<Skip>,
    eligible_at: Option<jiff::Timestamp>,
    checked: usize,
}

impl Walk {
    /// Counts one more candidate; `false` when [`MAX_CHECKED`] were checked already.
    fn next(&mut self) -> bool {
        if self.checked == MAX_CHECKED {
            return false;
        }
        self.checked += 1;
        true
    }

    fn young(&mut self, at: jiff::Timestamp) {
        self.eligible_at = Some(self.eligible_at.map_or(at, |e| e.min(at)));
    }

    fn chosen(self, tag: String, digest: String) -> Choice {
        Choice {
            tag,
            digest: Some(digest),
            skipped: self.skipped,
            eligible_at: self.eligible_at,
            checked: self.checked,
        }
    }

    fn none(self, limit_reached: bool) -> GateError {
        GateError::NoneEligible {
            skipped: self.skipped,
            eligible_at: self.eligible_at,
            limit_reached,
        }
    }
}

/// Chooses the latest tag of `stored` by `policy` that passes `gates`.
pub async fn choose(
    ctx: &GateContext<'_>,
    policy: &Policy,
    gates: &Gates,
    stored: &StoredTags,
) -> Result<Choice, GateError> {
    let mut walk = Walk::default();
    if gates.newest_build {
        for (tag, digest, facts) in newest_first(ctx, policy, stored).await? {
            if !walk.next() {
                return Err(walk.none(true));
            }
            let found = Found {
                digest,
                facts: Some(facts),
            };
            match check(ctx, gates, stored, &tag, found, &mut walk).await? {
                Ok(digest) => return Ok(walk.chosen(tag, digest)),
                Err(skip) => walk.skipped.push(skip),
            }
        }
        return Err(walk.none(false));
    }
    let mut remaining = stored.to_vec();
    loop {
        let tag = match policy.select(&remaining) {
            Ok(t) => t.to_string(),
            Err(e) if walk.skipped.is_empty() => return Err(e.into()),
            Err(_) => return Err(walk.none(false)),
        };
        if !walk.next() {
            return Err(walk.none(true));
        }
        let verdict = match find(ctx, gates, &tag).await? {
            Some(found) => check(ctx, gates, stored, &tag, found, &mut walk).await?,
            None => Err(Skip {
                tag: tag.clone(),
                why: "no longer in the registry".into(),
                unverified: false,
            }),
        };
        match verdict {
            Ok(digest) => return Ok(walk.chosen(tag, digest)),
            Err(skip) => {
                walk.skipped.push(skip);
                remaining.retain(|t| *t != tag);
            }
        }
    }
}

/// A tag's digest and, when the gates need them, its image's facts.
struct Found {
    digest: String,
    facts: Option<Arc<ImageFacts>>,
}

/// The digest (once per scan) and facts (once per digest) of `tag`; `None` when the registry no longer has it.
async fn find(ctx: &GateContext<'_>, gates: &Gates, tag: &str) -> Result<Option<Found>, GateError> {
    let key = ctx.image.canonical();
    let registry_error = |source| GateError::Registry {
        tag: tag.to_string(),
        source,
    };
    let mut cached = ctx.cache.digest(&key, tag, ctx.scan);
    // Without facts needed, a HEAD is all; with them, a HEAD only for a tag seen before (most often the same
    // image, whose facts are known).
    if cached.is_none() && (!gates.needs_facts() || ctx.cache.seen_tag(&key, tag)) {
        let Some(d) = head_digest(ctx, tag).await.map_err(registry_error)? else {
            return Ok(None);
        };
        ctx.cache.put_digest(&key, tag, ctx.scan, &d);
        cached = Some(d);
    }
    if !gates.needs_facts() {
        return Ok(cached.map(|digest| Found {
            digest,
            facts: None,
        }));
    }
    let known = cached
        .as_deref()
        .and_then(|d| ctx.cache.facts(&key, d).map(|f| (d.to_string(), f)));
    if let Some((digest, facts)) = known {
        return Ok(Some(Found {
            digest,
            facts: Some(facts),
        }));
    }
    // Facts needed and not known: one GET of the manifest (by digest when the HEAD above gave it, else by tag)
    // gives the digest and what the facts are read from.
    let reference = cached.as_deref().unwrap_or(tag);
    let Some(manifest) = ctx
        .registry
        .manifest(ctx.image, reference, ctx.credentials, ctx.transport)
        .await
        .map_err(registry_error)?
    else {
        return Ok(None);
    };
    let digest = manifest.digest.clone();
    ctx.cache.put_digest(&key, tag, ctx.scan, &digest);
    let facts = match ctx.cache.facts(&key, &digest) {
        Some(f) => f,
        None => {
            let facts = Arc::new(
                facts_of_manifest(
                    ctx.registry,
                    ctx.image,
                    &manifest,
                    ctx.credentials,
                    ctx.transport,
                )
                .await
                .map_err(registry_error)?,
            );
            ctx.cache.put_facts(&key, &digest, facts.clone());
            facts
        }
    };
    Ok(Some(Found {
        digest,
        facts: Some(facts),
    }))
}

/// The candidates of a newestBuild policy, newest image first (ties: the byte-wise greatest tag first); tags
/// the registry no longer has are left out.
async fn newest_first(
    ctx: &GateContext<'_>,
    policy: &Policy,
    stored: &StoredTags,
) -> Result<Vec<(String, String, Arc<ImageFacts>)>, GateError> {
    let candidates: Vec<&str> = stored
        .iter()
        .filter(|t| policy.filter().is_none_or(|f| f.is_match(t)))
        .collect();
    if candidates.is_empty() {
        return Err(match policy.filter() {
            Some(f) if !stored.is_empty() => SelectError::NoTagMatchesFilter {
                pattern: f.pattern().to_string(),
            },
            _ => SelectError::EmptyTagList,
        }
        .into());
    }
    if candidates.len() > MAX_NEWEST_BUILD {
        return Err(GateError::TooManyCandidates {
            count: candidates.len(),
        });
    }
    let tags: Vec<String> = candidates.into_iter().map(str::to_string).collect();
    let found: Vec<Result<Option<(String, Found)>, GateError>> = futures::stream::iter(tags)
        .map(|tag| find_owned(ctx, tag))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut ordered = Vec::new();
    for f in found {
        if let Some((tag, found)) = f? {
            let facts = found.facts.unwrap_or_default();
            ordered.push((tag, found.digest, facts));
        }
    }
    ordered.sort_by(|a, b| b.2.created.cmp(&a.2.created).then_with(|| b.0.cmp(&a.0)));
    Ok(ordered)
}

/// The digest of `tag` by a HEAD; `None` when the registry does not have the tag. The digest names manifests
/// and signature tags in later paths, so it must be `sha256:<64 hex>`.
async fn head_digest(ctx: &GateContext<'_>, tag: &str) -> Result<Option<String>, RegistryError> {
    let digest = match ctx
        .registry
        .digest(ctx.image, tag, ctx.credentials, ctx.transport)
        .await
    {
        Ok(d) => d,
        Err(RegistryError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !crate::registry::content::is_sha256_digest(&digest) {
        return Err(RegistryError::Protocol {
            registry: ctx.image.registry.clone(),
            message: format!(
                "a digest that is not sha256:<hex>: {:?}",
                crate::sanitize::cap(&digest, 100)
            ),
        });
    }
    Ok(Some(digest))
}

/// Gates that need only the image's facts (for ordering by creation time).
const FACTS_ONLY: Gates = Gates {
    verify: None,
    minimum_age: None,
    platforms: Vec::new(),
    newest_build: true,
};

async fn find_owned(
    ctx: &GateContext<'_>,
    tag: String,
) -> Result<Option<(String, Found)>, GateError> {
    Ok(find(ctx, &FACTS_ONLY, &tag).await?.map(|f| (tag, f)))
}

/// Checks one tag against the platform, age and signature gates: `Ok(digest)` or the reason it is skipped.
async fn check(
    ctx: &GateContext<'_>,
    gates: &Gates,
    stored: &StoredTags,
    tag: &str,
    found: Found,
    walk: &mut Walk,
) -> Result<Result<String, Skip>, GateError> {
    let skip = |why: String, unverified: bool| {
        Ok(Err(Skip {
            tag: tag.to_string(),
            why,
            unverified,
        }))
    };
    let facts = found.facts.unwrap_or_default();
    let missing: Vec<String> = gates
        .platforms
        .iter()
        .filter(|want| !facts.platforms.iter().any(|have| want.satisfied_by(have)))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        let have: Vec<String> = facts.platforms.iter().map(ToString::to_string).collect();
        return skip(
            format!(
                "lacks platform {} (has {})",
                missing.join(", "),
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            ),
            false,
        );
    }
    if let Some((minimum, source)) = gates.minimum_age {
        let first_seen = stored.first_seen(tag).unwrap_or(ctx.now);
        let (basis, what) = match source {
            AgeSource::Created => match facts.created.filter(|c| *c <= ctx.now + SKEW) {
                Some(c) => (c, "built"),
                None => (first_seen, "first seen"),
            },
            AgeSource::FirstSeen => (first_seen, "first seen"),
        };
        let eligible = basis.checked_add(minimum).unwrap_or(jiff::Timestamp::MAX);
        if eligible > ctx.now {
            walk.young(eligible);
            return skip(
                format!(
                    "{what} {}, younger than minimumAge {}; eligible at {}",
                    basis.round(jiff::Unit::Second).unwrap_or(basis),
                    crate::api::duration::format(minimum),
                    eligible.round(jiff::Unit::Second).unwrap_or(eligible)
                ),
                false,
            );
        }
    }
    if let Some(verifier) = ctx.verifier {
        let key = ctx.image.canonical();
        if ctx
            .cache
            .verified(&key, &found.digest, verifier.fingerprint())
            .is_none()
        {
            match verifier
                .verify(
                    ctx.registry,
                    ctx.image,
                    &found.digest,
                    ctx.credentials,
                    ctx.transport,
                )
                .await
            {
                Ok(Ok(by)) => {
                    ctx.cache
                        .put_verified(&key, &found.digest, verifier.fingerprint(), &by)
                }
                Ok(Err(why)) => return skip(why, true),
                Err(source) => {
                    return Err(GateError::Registry {
                        tag: tag.to_string(),
                        source,
                    });
                }
            }
        }
    }
    Ok(Ok(found.digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_are_one_clean_capped_line_each() {
        let skip = |tag: &str, why: &str| Skip {
            tag: tag.into(),
            why: why.into(),
            unverified: true,
        };
        let long = "x".repeat(1000);
        let skipped = vec![
            skip(
                "1.6.0",
                "signed by https://user:hunter2@evil.example/\nFAKE: Ready\u{7}",
            ),
            skip("1.5.0", &long),
            skip("1.4.0", "a"),
            skip("1.3.0", "b"),
            skip("1.2.0", "c"),
            skip("1.1.0", "d"),
        ];
        let d = describe(&skipped);
        assert!(
            !d.contains('\n') && !d.contains('\u{7}') && !d.contains("hunter2"),
            "{d}"
        );
        assert!(
            d.contains("1.6.0 (signed by https://user:***@evil.example/FAKE: Ready)"),
            "{d}"
        );
        assert!(d.len() < 600, "{}", d.len());
        assert!(d.ends_with("and 1 more"), "{d}");
    }
}
