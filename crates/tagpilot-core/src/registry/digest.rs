//! The digest a tag is pulled by: `Docker-Content-Digest` of a HEAD on the manifest, else the hash of the
//! manifest itself.

use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use super::client::{Target, accept, read_body};
use super::{
    Credentials, ImageName, MANIFEST_MEDIA_TYPES, RegistryClient, RegistryError, Transport,
};

impl RegistryClient {
    /// The digest a tag is pulled by (the index digest for a multi-arch image).
    pub async fn digest(
        &self,
        image: &ImageName,
        tag: &str,
        credentials: &Credentials,
        transport: &Transport,
    ) -> Result<String, RegistryError> {
        let registry = image.registry.as_str();
        let mut requests = 0;
        let target = Target {
            image,
            credentials,
            transport,
        };
        let path = format!("/v2/{}/manifests/{tag}", image.repository);
        let headers = accept(MANIFEST_MEDIA_TYPES);
        let (resp, scheme) = self
            .send_first(&target, Method::HEAD, &path, headers.clone(), &mut requests)
            .await?;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                image: format!("{}:{tag}", image.canonical()),
                message: "manifest unknown".into(),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                registry: registry.into(),
                status: status.as_u16(),
                message: status.to_string(),
            });
        }
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            return Ok(d.to_string());
        }
        // No digest header: fetch the manifest and hash it.
        let url = format!("{scheme}://{registry}{path}");
        let resp = self
            .send(&target, Method::GET, &url, headers, &mut requests)
            .await?;
        let body = read_body(resp, registry).await?;
        Ok(format!("sha256:{:x}", Sha256::digest(&body)))
    }
}
