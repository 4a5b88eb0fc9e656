//! What an image's manifests say about it: the platforms it runs on and when it was built.

use serde::Deserialize;

use super::Platform;
use crate::registry::content::{Manifest, is_sha256_digest};
use crate::registry::{Credentials, ImageName, RegistryClient, RegistryError, Transport};

/// Largest image config read.
const MAX_CONFIG: usize = 4 << 20;
/// Most entries of an index looked at.
const MAX_INDEX_ENTRIES: usize = 256;

/// The facts the gates use, for one digest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// The platforms of an index's images, or the one platform of an image.
    pub platforms: Vec<Platform>,
    /// The config's `created` (for an index: its linux/amd64 image's, else its first image's); `None` when
    /// missing, unparsable or the Unix epoch (reproducible builds write zero).
    pub created: Option<jiff::Timestamp>,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<PlatformFields>,
}

/// `os`, `architecture`, `variant`: as an index entry's `platform` and an image config write them.
#[derive(Default, Deserialize)]
struct PlatformFields {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

impl PlatformFields {
    fn platform(&self) -> Option<Platform> {
        platform_of(&self.os, &self.architecture, self.variant.as_deref())
    }
}

#[derive(Deserialize)]
struct ManifestDoc {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
}

#[derive(Deserialize)]
struct ConfigDoc {
    #[serde(default)]
    created: Option<String>,
    #[serde(flatten)]
    platform: PlatformFields,
}

fn platform_of(os: &str, architecture: &str, variant: Option<&str>) -> Option<Platform> {
    // Attestation manifests of an index say `unknown/unknown`.
    if os.is_empty() || architecture.is_empty() || os == "unknown" {
        return None;
    }
    Some(Platform {
        os: os.to_string(),
        architecture: architecture.to_string(),
        variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
    })
}

fn created_of(config: &ConfigDoc) -> Option<jiff::Timestamp> {
    let t: jiff::Timestamp = config.created.as_deref()?.parse().ok()?;
    (t.as_second() > 0).then_some(t)
}

/// The facts of a manifest: an index's platforms come from the index, its creation time from the config of
/// its linux/amd64 image (else its first image); an image's from its config.
pub async fn facts_of_manifest(
    registry: &RegistryClient,
    image: &ImageName,
    manifest: &Manifest,
    credentials: &Credentials,
    transport: &Transport,
) -> Result<ImageFacts, RegistryError> {
    let protocol = |message: String| RegistryError::Protocol {
        registry: image.registry.clone(),
        message,
    };
    let doc: ManifestDoc = serde_json::from_slice(&manifest.body).map_err(|e| {
        protocol(format!(
            "manifest {}@{} is not a manifest: {e}",
            image.canonical(),
            manifest.digest
        ))
    })?;
    if let Some(entries) = doc.manifests {
        let mut platforms = Vec::new();
        let mut child = None;
        for entry in entries.iter().take(MAX_INDEX_ENTRIES) {
            let Some(p) = entry.platform.as_ref().and_then(PlatformFields::platform) else {
                continue;
            };
            let amd64 = p.os == "linux" && p.architecture == "amd64";
            if (child.is_none() || amd64) && !entry.media_type.contains("index") {
                child = Some(entry.digest.clone()).filter(|d| is_sha256_digest(d));
            }
            if !platforms.contains(&p) {
                platforms.push(p);
            }
        }
        let created = match child {
            Some(digest) => {
                let m = registry
                    .manifest(image, &digest, credentials, transport)
                    .await?
                    .ok_or_else(|| {
                        protocol(format!(
                            "index {}@{} names {digest}, which the registry does not have",
                            image.canonical(),
                            manifest.digest
                        ))
                    })?;
                let doc: ManifestDoc = serde_json::from_slice(&m.body).map_err(|e| {
                    protocol(format!("manifest {}@{digest}: {e}", image.canonical()))
                })?;
                match doc.config {
                    Some(c) => created_of(
                        &config(registry, image, &c.digest, credentials, transport).await?,
                    ),
                    None => None,
                }
            }
            None => None,
        };
        return Ok(ImageFacts { platforms, created });
    }
    let Some(c) = doc.config else {
        return Ok(ImageFacts::default());
    };
    let config = config(registry, image, &c.digest, credentials, transport).await?;
    Ok(ImageFacts {
        platforms: config.platform.platform().into_iter().collect(),
        created: created_of(&config),
    })
}

async fn config(
    registry: &RegistryClient,
    image: &ImageName,
    digest: &str,
    credentials: &Credentials,
    transport: &Transport,
) -> Result<ConfigDoc, RegistryError> {
    let body = registry
        .blob(image, digest, MAX_CONFIG, credentials, transport)
        .await?;
    serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
        registry: image.registry.clone(),
        message: format!("config {}@{digest} is not JSON: {e}", image.canonical()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_skips_zero_and_garbage() {
        let doc = |c: &str| ConfigDoc {
            created: Some(c.into()),
            platform: PlatformFields::default(),
        };
        assert_eq!(created_of(&doc("1970-01-01T00:00:00Z")), None);
        assert_eq!(created_of(&doc("yesterday")), None);
        assert_eq!(
            created_of(&doc("2026-11-01T10:00:00.123456789Z"))
                .unwrap()
                .as_second(),
            1_793_527_200
        );
    }

    #[test]
    fn attestations_are_not_platforms() {
        assert_eq!(platform_of("unknown", "unknown", None), None);
        assert_eq!(
            platform_of("linux", "arm", Some("v7")).unwrap().to_string(),
            "linux/arm/v7"
        );
    }
}
