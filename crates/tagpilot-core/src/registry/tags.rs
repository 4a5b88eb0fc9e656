//! Listing a repository's tags: the request, the result, and the loop over pages ([`super::pager`]) with the
//! page-size fallback; every page read straight into the set of tags ([`super::page`]).

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use super::client::{Target, accept, read_body, registry_message};
use super::pager::{Next, Pager};
use super::{Credentials, Exclusions, ImageName, RegistryClient, RegistryError, Transport, page};

/// One scan: what to list and how.
#[derive(Clone, Debug)]
pub struct ScanRequest<'a> {
    /// The repository.
    pub image: &'a ImageName,
    /// Credentials (anonymous when none).
    pub credentials: &'a Credentials,
    /// TLS, plain HTTP, proxy.
    pub transport: &'a Transport,
    /// Tags excluded from the result.
    pub exclusions: &'a Exclusions,
    /// `n` per page (default 1000).
    pub page_size: u32,
    /// Deadline for the whole scan.
    pub timeout: Duration,
    /// The most tags the repository may hold ([`DEFAULT_MAX_TAGS`]); more is [`RegistryError::TooManyTags`].
    pub max_tags: usize,
}

/// The default of `--max-tags-per-repository`.
pub const DEFAULT_MAX_TAGS: usize = 100_000;

/// The tags of a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanResult {
    /// Distinct tags after exclusion, byte-wise descending (as Flux stores them).
    pub tags: Vec<String>,
    /// How many tags the exclusion list removed.
    pub excluded: usize,
    /// Pages read.
    pub pages: u32,
    /// HTTP requests made (including token requests and retries).
    pub requests: u32,
    /// Names the registry listed that are not OCI tags (dropped).
    pub invalid: usize,
}

impl RegistryClient {
    /// Lists every tag of a repository.
    pub async fn list_tags(&self, req: &ScanRequest<'_>) -> Result<ScanResult, RegistryError> {
        let image = req.image.canonical();
        let seconds = req.timeout.as_secs();
        tokio::time::timeout(req.timeout, self.list_tags_inner(req))
            .await
            .unwrap_or(Err(RegistryError::Timeout { image, seconds }))
    }

    async fn list_tags_inner(&self, req: &ScanRequest<'_>) -> Result<ScanResult, RegistryError> {
        let registry = req.image.registry.as_str();
        let target = Target {
            image: req.image,
            credentials: req.credentials,
            transport: req.transport,
        };
        // Known once the registry has answered over it.
        let mut scheme: Option<&str> = None;
        let mut pager = Pager::new(req.page_size);
        let mut tags: HashSet<String> = HashSet::new();
        let mut invalid = 0usize;
        let (mut pages, mut requests) = (0u32, 0u32);
        loop {
            let headers = accept("application/json");
            let resp = match (pager.next(&req.image.repository), scheme) {
                (Next::Link(link), _) => {
                    self.send(&target, Method::GET, link.as_str(), headers, &mut requests)
                        .await?
                }
                (Next::Path(path), Some(scheme)) => {
                    let url = format!("{scheme}://{registry}{path}");
                    self.send(&target, Method::GET, &url, headers, &mut requests)
                        .await?
                }
                (Next::Path(path), None) => {
                    let (resp, answered) = self
                        .send_first(&target, Method::GET, &path, headers, &mut requests)
                        .await?;
                    scheme = Some(answered);
                    resp
                }
            };
            let status = resp.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST {
                let message = registry_message(resp).await;
                if (status == StatusCode::PAYLOAD_TOO_LARGE
                    || message.contains("TOO_MANY_TAGS_REQUESTED"))
                    && pager.fewer()
                {
                    tracing::debug!(
                        registry,
                        n = pager.size(),
                        "registry refused the page size; asking for fewer tags"
                    );
                    continue;
                }
                return Err(RegistryError::Status {
                    registry: registry.into(),
                    status: status.as_u16(),
                    message,
                });
            }
            if status == StatusCode::NOT_FOUND {
                return Err(RegistryError::NotFound {
                    image: req.image.canonical(),
                    message: registry_message(resp).await,
                });
            }
            if !status.is_success() {
                return Err(RegistryError::Status {
                    registry: registry.into(),
                    status: status.as_u16(),
                    message: registry_message(resp).await,
                });
            }
            let link = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let page_url = resp.url().clone();
            let body = read_body(resp, registry).await?;
            let page = page::read(&body, &mut tags, req.max_tags).map_err(|e| match e {
                page::Error::TooMany => RegistryError::TooManyTags {
                    image: req.image.canonical(),
                    limit: req.max_tags,
                },
                page::Error::Json(e) => RegistryError::Protocol {
                    registry: registry.into(),
                    message: format!("tags/list reply is not the expected JSON: {e}"),
                },
            })?;
            drop(body);
            pages += 1;
            invalid += page.invalid;
            if !pager.advance(&page, link.as_deref(), &page_url, registry)? {
                break;
            }
        }
        let before = tags.len();
        let mut tags: Vec<String> = tags
            .into_iter()
            .filter(|t| !req.exclusions.excludes(t))
            .collect();
        let excluded = before - tags.len();
        tags.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ScanResult {
            tags,
            excluded,
            pages,
            requests,
            invalid,
        })
    }
}
