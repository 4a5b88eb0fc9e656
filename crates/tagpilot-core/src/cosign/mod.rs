//! cosign signature verification, offline, for the ImagePolicy `spec.verify` gate (tagpilot extension).
//!
//! Signatures in cosign's "simple signing" layout (cosign's `SIGNATURE_SPEC.md`): the manifest tagged
//! `sha256-<hex>.sig` beside the image, one layer per signature whose blob is the signed payload and whose
//! annotations hold the base64 signature (`dev.cosignproject.cosign/signature`) and, keyless, the Fulcio
//! certificate and the Rekor bundle. A signature counts when it verifies over the exact payload bytes, the
//! payload names the image's digest with cosign's type, and:
//! - with keys: one of the Secret's `*.pub` keys (ECDSA P-256, PEM) verifies it (no transparency log, as Flux
//!   verifies with keys);
//! - keyless ([`keyless`]): the certificate chains to a Fulcio CA of the trusted root at the time Rekor
//!   recorded the entry, with the code-signing usage; its identity matches a `matchOIDCIdentity` entry; the
//!   Rekor SignedEntryTimestamp verifies with a log key of the trusted root; and the entry's body carries this
//!   signature, certificate and payload hash.
//!
//! cosign v3's default, a Sigstore bundle stored as an OCI referrer of the image, is read when the `.sig`
//! layout has no valid signature ([`bundle`]). Not checked here: the certificate's embedded SCT, and Rekor v2
//! entries (no inclusion promise; their time needs an RFC 3161 timestamp authority).

mod bundle;
mod ecdsa;
pub mod keyless;
mod payload;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::registry::content::is_sha256_digest;
use crate::registry::secrets::SecretData;
use crate::registry::{Credentials, ImageName, RegistryClient, RegistryError, Transport};

pub use ecdsa::P256Key;
pub use keyless::TrustedRoot;

/// cosign's simple-signing layer media type.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The signature annotation.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The certificate annotation (keyless).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// The chain annotation (keyless).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";
/// The Rekor bundle annotation.
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// Most signature layers looked at.
const MAX_LAYERS: usize = 16;
/// Largest payload read.
const MAX_PAYLOAD: usize = 64 << 10;

/// A spec that cannot verify anything; the message names the Secret and the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VerifierError(pub String);

/// How signatures are checked: keys, or keyless with identities and a trusted root.
pub struct Verifier {
    kind: Kind,
    fingerprint: String,
}

enum Kind {
    Keys(Vec<(String, P256Key)>),
    Keyless {
        root: TrustedRoot,
        identities: Vec<(regex::Regex, regex::Regex)>,
    },
}

impl Verifier {
    /// A verifier with every `*.pub` key of a Secret (`secret` is `namespace/name`, for messages).
    pub fn with_keys(secret: &str, data: &SecretData) -> Result<Verifier, VerifierError> {
        let mut keys = Vec::new();
        let mut h = Sha256::new();
        for (name, value) in data.iter().filter(|(k, _)| k.ends_with(".pub")) {
            let key = std::str::from_utf8(value)
                .ok()
                .and_then(P256Key::from_pem)
                .ok_or_else(|| {
                    VerifierError(format!(
                        "secret '{secret}' (spec.verify.secretRef): key '{name}' is not a PEM ECDSA P-256 public key"
                    ))
                })?;
            h.update(name.as_bytes());
            h.update(value);
            keys.push((name.clone(), key));
        }
        if keys.is_empty() {
            return Err(VerifierError(format!(
                "secret '{secret}' (spec.verify.secretRef) has no '*.pub' key"
            )));
        }
        Ok(Verifier {
            kind: Kind::Keys(keys),
            fingerprint: format!("keys:{:x}", h.finalize()),
        })
    }

    /// A keyless verifier: `trusted_root.json` of the object `source` describes (`secret 'ns/name'
    /// (spec.verify.trustedRootSecretRef)`, for messages), and (issuer, subject) patterns.
    pub fn keyless(
        source: &str,
        data: &SecretData,
        identities: Vec<(regex::Regex, regex::Regex)>,
    ) -> Result<Verifier, VerifierError> {
        let json = data
            .get("trusted_root.json")
            .ok_or_else(|| VerifierError(format!("{source} has no key 'trusted_root.json'")))?;
        let root = TrustedRoot::parse(json)
            .map_err(|e| VerifierError(format!("{source} key 'trusted_root.json': {e}")))?;
        let mut h = Sha256::new();
        h.update(json);
        for (i, s) in &identities {
            h.update(i.as_str().as_bytes());
            h.update([0]);
            h.update(s.as_str().as_bytes());
            h.update([0]);
        }
        Ok(Verifier {
            kind: Kind::Keyless { root, identities },
            fingerprint: format!("keyless:{:x}", h.finalize()),
        })
    }

    /// Identifies the verifier's material: a cached result holds only for the same keys, root and identities.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Verifies `image@digest`: `Ok(Ok(what verified it))`, `Ok(Err(why not))`, or a registry error (not a
    /// verdict: the registry could not be asked).
    pub async fn verify(
        &self,
        registry: &RegistryClient,
        image: &ImageName,
        digest: &str,
        credentials: &Credentials,
        transport: &Transport,
    ) -> Result<Result<String, String>, RegistryError> {
        if !is_sha256_digest(digest) {
            return Ok(Err(format!("unsupported digest {digest}")));
        }
        let tag = format!("{}.sig", digest.replacen(':', "-", 1));
        let mut reasons = Vec::new();
        match registry
            .manifest(image, &tag, credentials, transport)
            .await?
        {
            None => {}
            Some(manifest) => match serde_json::from_slice::<SignatureManifest>(&manifest.body) {
                Err(_) => reasons.push(format!("{tag} is not a cosign signature manifest")),
                Ok(doc) => {
                    for layer in doc
                        .layers
                        .iter()
                        .filter(|l| l.media_type == SIMPLE_SIGNING)
                        .take(MAX_LAYERS)
                    {
                        let payload = match registry
                            .blob(image, &layer.digest, MAX_PAYLOAD, credentials, transport)
                            .await
                        {
                            Ok(p) => p,
                            Err(RegistryError::NotFound { .. }) => {
                                reasons.push("a signature's payload is missing".to_string());
                                continue;
                            }
                            Err(e) => return Err(e),
                        };
                        match self.check(&payload, &layer.annotations, digest) {
                            Ok(by) => return Ok(Ok(by)),
                            Err(why) if !reasons.contains(&why) => reasons.push(why),
                            Err(_) => {}
                        }
                    }
                }
            },
        }
        for b in bundle::fetch(registry, image, digest, credentials, transport).await? {
            match self.check_bundle(&b, digest) {
                Ok(by) => return Ok(Ok(by)),
                Err(why) if !reasons.contains(&why) => reasons.push(why),
                Err(_) => {}
            }
        }
        if reasons.is_empty() {
            return Ok(Err(format!(
                "not signed: no cosign signature ({tag}) and no Sigstore bundle referring to it"
            )));
        }
        Ok(Err(format!(
            "no valid cosign signature: {}",
            reasons.join("; ")
        )))
    }

    /// Checks one Sigstore bundle (cosign v3) for the image `digest`.
    pub fn check_bundle(&self, bundle: &[u8], digest: &str) -> Result<String, String> {
        bundle::check(&self.kind, bundle, digest)
    }

    /// Checks one signature layer (its payload bytes and annotations) for the image `digest`.
    pub fn check(
        &self,
        payload: &[u8],
        annotations: &std::collections::BTreeMap<String, String>,
        digest: &str,
    ) -> Result<String, String> {
        let signature = annotations
            .get(SIGNATURE_ANNOTATION)
            .and_then(|s| STANDARD.decode(s.trim()).ok())
            .ok_or("a signature layer without a base64 signature")?;
        let by = match &self.kind {
            Kind::Keys(keys) => keys
                .iter()
                .find(|(_, k)| k.verify(payload, &signature))
                .map(|(name, _)| format!("key {name}"))
                .ok_or("signature does not verify with any key of spec.verify.secretRef")?,
            Kind::Keyless { root, identities } => {
                keyless::check(root, identities, payload, &signature, annotations)?
            }
        };
        payload::check(payload, digest)?;
        Ok(by)
    }
}

#[derive(Deserialize)]
struct SignatureManifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}
