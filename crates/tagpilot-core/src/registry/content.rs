//! Manifests and blobs by reference, for the policy gates: the same credentials, transport, retries and
//! concurrency limit as scans, smaller caps, and every body checked against the digest it was asked by.

use reqwest::Method;
use reqwest::header::HeaderMap;
use sha2::{Digest, Sha256};

use super::client::{Target, accept, read_capped, registry_message};
use super::{
    Credentials, ImageName, MANIFEST_MEDIA_TYPES, RegistryClient, RegistryError, Transport,
};

/// Largest manifest read (the OCI distribution spec's recommended limit for registries).
pub const MAX_MANIFEST: usize = 4 << 20;

/// A manifest or index as the registry served it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The `Content-Type` (or the body's `mediaType`).
    pub media_type: String,
    /// `sha256:<hex>` of the body.
    pub digest: String,
    /// The body, exactly as served (signatures are checked over these bytes).
    pub body: Vec<u8>,
}

impl RegistryClient {
    /// The manifest `reference` (a tag or a digest) of `image`; `Ok(None)` when the registry does not have it.
    /// A manifest asked for by digest must hash to it.
    pub async fn manifest(
        &self,
        image: &ImageName,
        reference: &str,
        credentials: &Credentials,
        transport: &Transport,
    ) -> Result<Option<Manifest>, RegistryError> {
        let path = format!("/v2/{}/manifests/{reference}", image.repository);
        let Some(resp) = self
            .get(
                image,
                &path,
                accept(MANIFEST_MEDIA_TYPES),
                &[404],
                credentials,
                transport,
            )
            .await?
        else {
            return Ok(None);
        };
        let header_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_string());
        let body = read_capped(resp, &image.registry, MAX_MANIFEST).await?;
        let digest = format!("sha256:{:x}", Sha256::digest(&body));
        if reference.starts_with("sha256:") && reference != digest {
            return Err(RegistryError::Protocol {
                registry: image.registry.clone(),
                message: format!(
                    "manifest {}@{reference} hashes to {digest}",
                    image.canonical()
                ),
            });
        }
        let media_type = serde_json::from_slice::<MediaTypeOnly>(&body)
            .ok()
            .and_then(|m| m.media_type)
            .or(header_type)
            .unwrap_or_default();
        Ok(Some(Manifest {
            media_type,
            digest,
            body,
        }))
    }

    /// The referrers of `image@digest` (an OCI index), or `None` when the registry has no referrers API.
    pub async fn referrers(
        &self,
        image: &ImageName,
        digest: &str,
        credentials: &Credentials,
        transport: &Transport,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let path = format!("/v2/{}/referrers/{digest}", image.repository);
        let index = accept("application/vnd.oci.image.index.v1+json");
        // No referrers API: 404 (docker distribution), or a registry that refuses the route.
        let Some(resp) = self
            .get(
                image,
                &path,
                index,
                &[404, 400, 405],
                credentials,
                transport,
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(
            read_capped(resp, &image.registry, MAX_MANIFEST).await?,
        ))
    }

    /// The blob `digest` of `image`, at most `max` bytes, checked against its digest.
    pub async fn blob(
        &self,
        image: &ImageName,
        digest: &str,
        max: usize,
        credentials: &Credentials,
        transport: &Transport,
    ) -> Result<Vec<u8>, RegistryError> {
        if !is_sha256_digest(digest) {
            return Err(RegistryError::Protocol {
                registry: image.registry.clone(),
                message: format!(
                    "unsupported blob digest {:?}",
                    crate::sanitize::cap(digest, 100)
                ),
            });
        }
        let path = format!("/v2/{}/blobs/{digest}", image.repository);
        let resp = self
            .get(
                image,
                &path,
                HeaderMap::new(),
                &[404],
                credentials,
                transport,
            )
            .await?
            .ok_or_else(|| RegistryError::NotFound {
                image: format!("{}@{digest}", image.canonical()),
                message: "blob unknown".into(),
            })?;
        let body = read_capped(resp, &image.registry, max).await?;
        let got = format!("sha256:{:x}", Sha256::digest(&body));
        if got != digest {
            return Err(RegistryError::Protocol {
                registry: image.registry.clone(),
                message: format!("blob {}@{digest} hashes to {got}", image.canonical()),
            });
        }
        Ok(body)
    }
}

impl RegistryClient {
    /// A GET with authentication, retries and limits: `None` when the status is one of `absent`, an error for
    /// any other status but success.
    async fn get(
        &self,
        image: &ImageName,
        path: &str,
        accept: HeaderMap,
        absent: &[u16],
        credentials: &Credentials,
        transport: &Transport,
    ) -> Result<Option<reqwest::Response>, RegistryError> {
        let target = Target {
            image,
            credentials,
            transport,
        };
        let mut requests = 0;
        let (resp, _) = self
            .send_first(&target, Method::GET, path, accept, &mut requests)
            .await?;
        let status = resp.status();
        if absent.contains(&status.as_u16()) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                registry: image.registry.clone(),
                status: status.as_u16(),
                message: registry_message(resp).await,
            });
        }
        Ok(Some(resp))
    }
}

#[derive(serde::Deserialize)]
struct MediaTypeOnly {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
}

/// Whether `s` is `sha256:` and 64 lower-case hex digits.
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}
