//! One ImageRepository scan, for both drivers: list the tags with the access decided by
//! [`super::access`], store them, and record the result in the status; a registry error becomes the
//! failure both drivers report.

use std::collections::HashSet;

use crate::api::conditions::{self, reason};
use crate::api::{CheckedRepository, ImageRepository, ImageRepositoryStatus, ScanResultStatus};
use crate::failure::{Failure, Ready};
use crate::lookup::Lookup;
use crate::registry::access::{AccessSettings, access};
use crate::registry::share::{self, SharedScans};
use crate::registry::{Credentials, RegistryClient, RegistryError, ScanRequest, Transport};
use crate::tagstore::TagStore;

/// What a scan runs with: the registry client, the tag store, the listings shared between objects of one
/// image ([`share`]) and the tag limit.
#[derive(Clone, Copy)]
pub struct Scanner<'a> {
    /// The registry client.
    pub registry: &'a RegistryClient,
    /// Where the tags are stored.
    pub store: &'a TagStore,
    /// The listings shared by objects of the same image, credentials and exclusions.
    pub shared: &'a SharedScans,
    /// `--max-tags-per-repository`.
    pub max_tags: usize,
}

/// A scan that succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanned {
    /// Ready's message, and the event when the tags changed.
    pub ready: Ready,
    /// How many tags.
    pub count: usize,
    /// HTTP requests made.
    pub requests: u32,
    /// Names the registry listed that are not OCI tags (dropped).
    pub invalid: usize,
    /// Up to ten tags that were not in the previous list (empty on a first scan or without change).
    pub new_tags: Vec<String>,
    /// The listing was another object's of the same image (this old); no registry request was made.
    pub shared: Option<std::time::Duration>,
}

/// `repo`'s spec checked, as a failure both drivers report (Stalled: only a spec change mends it).
pub fn checked(repo: &ImageRepository) -> Result<CheckedRepository, Failure> {
    repo.spec
        .check()
        .map_err(|e| Failure::stalled(e.reason, e.message))
}

/// Decides `repo`'s registry access ([`access`]), scans its checked spec, stores the tags and records the
/// scan in `status`. With `may_share` (a scan due by its interval, not one asked for or a retry), a listing
/// of the same image made for another object within this one's interval is taken instead ([`share`]).
pub async fn scan_repository<L: Lookup>(
    lookup: &L,
    settings: &AccessSettings<'_>,
    scanner: Scanner<'_>,
    repo: &ImageRepository,
    checked: &CheckedRepository,
    may_share: bool,
    status: &mut ImageRepositoryStatus,
) -> Result<Scanned, Failure> {
    let (credentials, transport) = access(lookup, settings, repo, &checked.image).await?;
    scan(
        scanner,
        repo,
        checked,
        (&credentials, &transport),
        may_share,
        status,
    )
    .await
}

/// Scans `repo` (its spec `checked`), stores the tags and records the scan in `status`.
async fn scan(
    scanner: Scanner<'_>,
    repo: &ImageRepository,
    checked: &CheckedRepository,
    (credentials, transport): (&Credentials, &Transport),
    may_share: bool,
    status: &mut ImageRepositoryStatus,
) -> Result<Scanned, Failure> {
    let store = scanner.store;
    let namespace = repo.metadata.namespace.as_deref().unwrap_or("default");
    let name = repo.metadata.name.as_deref().unwrap_or_default();
    let key = share::key(
        &checked.image.canonical(),
        credentials,
        transport,
        &checked.exclusion_list,
        scanner.max_tags,
    );
    let listed = scanner
        .shared
        .list(
            &key,
            &format!("{namespace}/{name}"),
            may_share.then_some(checked.interval),
            scanner.registry.list_tags(&ScanRequest {
                image: &checked.image,
                credentials,
                transport,
                exclusions: &checked.exclusions,
                page_size: 1000,
                timeout: checked.timeout,
                max_tags: scanner.max_tags,
            }),
        )
        .await
        .map_err(|e| scan_failure(&e))?;
    let result = &*listed.result;
    let store_failure = |e: crate::tagstore::TagStoreError| {
        Failure::retry(
            reason::FAILURE,
            format!("cannot store the tags of ImageRepository '{namespace}/{name}': {e}"),
        )
    };
    let old_revision = status
        .last_scan_result
        .as_ref()
        .and_then(|r| r.revision.clone());
    let previous = match &old_revision {
        Some(_) => store.read(namespace, name).map_err(store_failure)?,
        None => None,
    };
    let revision = store
        .write(namespace, name, &result.tags)
        .map_err(store_failure)?;
    let count = result.tags.len();
    status.canonical_image_name = Some(checked.image.canonical());
    status.last_scan_result = Some(ScanResultStatus {
        revision: Some(revision.clone()),
        tag_count: count as i64,
        scan_time: Some(conditions::now_rfc3339()),
        latest_tags: Some(result.tags.iter().take(10).cloned().collect()),
    });
    status.observed_exclusion_list = Some(checked.exclusion_list.clone());
    let message = format!("successful scan: found {count} tags with checksum {revision}");
    let changed = old_revision.as_deref() != Some(revision.as_str());
    let new_tags = match (&previous, changed) {
        (Some(prev), true) => {
            let before: HashSet<&str> = prev.iter().collect();
            result
                .tags
                .iter()
                .filter(|t| !before.contains(t.as_str()))
                .take(10)
                .cloned()
                .collect()
        }
        _ => Vec::new(),
    };
    // A shared listing: the next scan comes when that listing is an interval old (one listing per interval).
    let requeue = match listed.reused {
        Some(age) => checked
            .interval
            .saturating_sub(age)
            .max(std::time::Duration::from_secs(1)),
        None => checked.interval,
    };
    Ok(Scanned {
        ready: Ready {
            event: changed.then(|| message.clone()),
            message,
            requeue: Some(requeue),
            metadata: Default::default(),
        },
        count,
        requests: if listed.reused.is_some() {
            0
        } else {
            result.requests
        },
        invalid: result.invalid,
        new_tags,
        shared: listed.reused,
    })
}

/// The failure a scan error is reported as.
pub fn scan_failure(e: &RegistryError) -> Failure {
    let reason = match e {
        RegistryError::AuthenticationFailed { .. } => reason::AUTHENTICATION_FAILED,
        RegistryError::InvalidTransport(_) => reason::FAILURE,
        _ => reason::READ_OPERATION_FAILED,
    };
    Failure {
        // Over the tag limit: no retry helps until the limit or the registry changes.
        stalled: matches!(e, RegistryError::TooManyTags { .. }),
        ..Failure::retry(reason, format!("scan failed: {e}"))
    }
}
