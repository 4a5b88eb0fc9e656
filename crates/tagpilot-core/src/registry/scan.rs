//! One ImageRepository scan, for both drivers: list the tags with the access decided by
//! [`super::access`], store them, and record the result in the status; a registry error becomes the
//! failure both drivers report.

use std::collections::HashSet;

use crate::api::conditions::{self, reason};
use crate::api::{CheckedRepository, ImageRepository, ImageRepositoryStatus, ScanResultStatus};
use crate::failure::{Failure, Ready};
use crate::lookup::Lookup;
use crate::registry::access::{AccessSettings, access};
use crate::registry::{Credentials, RegistryClient, RegistryError, ScanRequest, Transport};
use crate::tagstore::TagStore;

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
}

/// `repo`'s spec checked, as a failure both drivers report (Stalled: only a spec change mends it).
pub fn checked(repo: &ImageRepository) -> Result<CheckedRepository, Failure> {
    repo.spec
        .check()
        .map_err(|e| Failure::stalled(e.reason, e.message))
}

/// Decides `repo`'s registry access ([`access`]), scans its checked spec, stores the tags and records the
/// scan in `status`.
#[allow(clippy::too_many_arguments)]
pub async fn scan_repository<L: Lookup>(
    lookup: &L,
    settings: &AccessSettings<'_>,
    registry: &RegistryClient,
    store: &TagStore,
    repo: &ImageRepository,
    checked: &CheckedRepository,
    max_tags: usize,
    status: &mut ImageRepositoryStatus,
) -> Result<Scanned, Failure> {
    let (credentials, transport) = access(lookup, settings, repo, &checked.image).await?;
    scan(
        registry,
        store,
        repo,
        checked,
        &credentials,
        &transport,
        max_tags,
        status,
    )
    .await
}

/// Scans `repo` (its spec `checked`), stores the tags and records the scan in `status`.
#[allow(clippy::too_many_arguments)]
async fn scan(
    registry: &RegistryClient,
    store: &TagStore,
    repo: &ImageRepository,
    checked: &CheckedRepository,
    credentials: &Credentials,
    transport: &Transport,
    max_tags: usize,
    status: &mut ImageRepositoryStatus,
) -> Result<Scanned, Failure> {
    let namespace = repo.metadata.namespace.as_deref().unwrap_or("default");
    let name = repo.metadata.name.as_deref().unwrap_or_default();
    let result = registry
        .list_tags(&ScanRequest {
            image: &checked.image,
            credentials,
            transport,
            exclusions: &checked.exclusions,
            page_size: 1000,
            timeout: checked.timeout,
            max_tags,
        })
        .await
        .map_err(|e| scan_failure(&e))?;
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
    Ok(Scanned {
        ready: Ready {
            event: changed.then(|| message.clone()),
            message,
            requeue: Some(checked.interval),
            metadata: Default::default(),
        },
        count,
        requests: result.requests,
        invalid: result.invalid,
        new_tags,
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
