//! cosign v3's signatures: a Sigstore bundle (`application/vnd.dev.sigstore.bundle.v0.3+json`) holding a DSSE
//! envelope of an in-toto statement about the image, stored as an OCI artifact whose `subject` is the image.
//! Found through the referrers API (`/v2/<name>/referrers/<digest>`) or, where the registry has none, the
//! referrers tag `sha256-<hex>` (an index); at most [`MAX_BUNDLES`] bundles are read.
//!
//! A bundle counts when its DSSE signature over the pre-authentication encoding verifies, its statement is
//! cosign's signature predicate (`https://sigstore.dev/cosign/sign/v1`) for the image's digest, and: with keys,
//! a key verifies it; keyless, its certificate and Rekor entry pass [`super::keyless`]'s checks (an entry of
//! kind `dsse` with an inclusion promise, whose body records this payload, signature and certificate).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Kind;
use super::keyless::{LogEntry, TrustedRoot, pem_certificates, verify_certificate, verify_entry};
use crate::registry::{Credentials, ImageName, RegistryClient, RegistryError, Transport};

/// Most bundles read for one image.
pub const MAX_BUNDLES: usize = 8;
/// Largest bundle read.
const MAX_BUNDLE: usize = 1 << 20;
/// The bundle media types (the artifact type of the manifests that hold them).
const BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// cosign's signature predicate.
const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    digest: String,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    media_type: String,
}

#[derive(Deserialize)]
struct ArtifactManifest {
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// The bundles stored for `image@digest` (raw JSON), via the referrers API or its fallback tag.
pub async fn fetch(
    registry: &RegistryClient,
    image: &ImageName,
    digest: &str,
    credentials: &Credentials,
    transport: &Transport,
) -> Result<Vec<Vec<u8>>, RegistryError> {
    let index = match registry
        .referrers(image, digest, credentials, transport)
        .await?
    {
        Some(body) => body,
        None => {
            let tag = digest.replacen(':', "-", 1);
            match registry
                .manifest(image, &tag, credentials, transport)
                .await?
            {
                Some(m) => m.body,
                None => return Ok(Vec::new()),
            }
        }
    };
    let Ok(index) = serde_json::from_slice::<Index>(&index) else {
        return Ok(Vec::new());
    };
    let mut bundles = Vec::new();
    for d in index
        .manifests
        .iter()
        .filter(|d| {
            crate::registry::content::is_sha256_digest(&d.digest)
                && d.artifact_type
                    .as_deref()
                    .is_none_or(|t| t.starts_with(BUNDLE_PREFIX))
        })
        .take(MAX_BUNDLES)
    {
        let Some(m) = registry
            .manifest(image, &d.digest, credentials, transport)
            .await?
        else {
            continue;
        };
        let Ok(m) = serde_json::from_slice::<ArtifactManifest>(&m.body) else {
            continue;
        };
        // The registry's fallback index also lists other referrers (attestations, SBOMs): the layer says.
        let layer = m
            .layers
            .iter()
            .find(|l| l.media_type.starts_with(BUNDLE_PREFIX));
        let (Some(layer), true) = (
            layer,
            m.artifact_type
                .as_deref()
                .is_none_or(|t| t.starts_with(BUNDLE_PREFIX)),
        ) else {
            continue;
        };
        match registry
            .blob(image, &layer.digest, MAX_BUNDLE, credentials, transport)
            .await
        {
            Ok(b) => bundles.push(b),
            Err(RegistryError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(bundles)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    #[serde(default)]
    media_type: String,
    verification_material: Material,
    #[serde(default)]
    dsse_envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    #[serde(default)]
    certificate: Option<RawBytes>,
    #[serde(default)]
    x509_certificate_chain: Option<Chain>,
    #[serde(default)]
    tlog_entries: Vec<TlogEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct Chain {
    #[serde(default)]
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogEntry {
    log_index: Value,
    log_id: KeyId,
    kind_version: KindVersion,
    integrated_time: Value,
    #[serde(default)]
    inclusion_promise: Option<Promise>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyId {
    key_id: String,
}

#[derive(Deserialize)]
struct KindVersion {
    kind: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload: String,
    payload_type: String,
    #[serde(default)]
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Deserialize)]
struct EnvelopeSignature {
    sig: String,
}

/// An int64 as protobuf's JSON writes it (a string) or as a number.
fn int64(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// DSSE's pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Checks that the statement is cosign's signature of `digest`.
fn statement_signs(payload: &[u8], digest: &str) -> Result<(), String> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|_| "a bundle whose statement is not JSON".to_string())?;
    let predicate = v["predicateType"].as_str().unwrap_or_default();
    if predicate != SIGN_PREDICATE {
        return Err(format!(
            "a bundle of predicate {:?}, not cosign's signature",
            crate::sanitize::cap(predicate, 80)
        ));
    }
    let want = digest.strip_prefix("sha256:").unwrap_or_default();
    let names = v["subject"]
        .as_array()
        .map(|s| {
            s.iter()
                .any(|s| s["digest"]["sha256"].as_str() == Some(want))
        })
        .unwrap_or(false);
    if !names {
        return Err("a bundle signing another image".into());
    }
    Ok(())
}

/// Checks one bundle for `digest`; `Ok` says what verified it.
pub(super) fn check(kind: &Kind, bundle: &[u8], digest: &str) -> Result<String, String> {
    let b: Bundle = serde_json::from_slice(bundle).map_err(|e| {
        format!(
            "a bundle that does not parse: {}",
            crate::sanitize::cap(&e.to_string(), 120)
        )
    })?;
    if !b.media_type.starts_with(BUNDLE_PREFIX) {
        return Err("not a Sigstore bundle".into());
    }
    let envelope = b
        .dsse_envelope
        .ok_or("a bundle without a DSSE envelope (not an image signature)")?;
    let payload = STANDARD
        .decode(&envelope.payload)
        .map_err(|_| "a DSSE payload that is not base64".to_string())?;
    let signed = pae(&envelope.payload_type, &payload);
    let signatures: Vec<Vec<u8>> = envelope
        .signatures
        .iter()
        .take(4)
        .filter_map(|s| STANDARD.decode(&s.sig).ok())
        .collect();
    let by = match kind {
        Kind::Keys(keys) => keys
            .iter()
            .find(|(_, k)| signatures.iter().any(|s| k.verify(&signed, s)))
            .map(|(name, _)| format!("key {name} (bundle)"))
            .ok_or("bundle signature does not verify with any key of spec.verify.secretRef")?,
        Kind::Keyless { root, identities } => {
            let leaf = match (
                &b.verification_material.certificate,
                &b.verification_material.x509_certificate_chain,
            ) {
                (Some(c), _) => STANDARD.decode(&c.raw_bytes).ok(),
                (None, Some(chain)) => chain
                    .certificates
                    .first()
                    .and_then(|c| STANDARD.decode(&c.raw_bytes).ok()),
                _ => None,
            }
            .ok_or("a bundle without a certificate (keyless verification needs one)")?;
            let entry = b
                .verification_material
                .tlog_entries
                .iter()
                .find(|e| e.kind_version.kind == "dsse")
                .ok_or("a bundle without a Rekor entry of kind dsse")?;
            keyless(
                root,
                identities,
                entry,
                &leaf,
                &payload,
                &signed,
                &signatures,
            )?
        }
    };
    statement_signs(&payload, digest)?;
    Ok(by)
}

fn keyless(
    root: &TrustedRoot,
    identities: &[(regex::Regex, regex::Regex)],
    entry: &TlogEntry,
    leaf: &[u8],
    payload: &[u8],
    signed: &[u8],
    signatures: &[Vec<u8>],
) -> Result<String, String> {
    let promise = entry.inclusion_promise.as_ref().ok_or(
        "a Rekor entry without an inclusion promise (needs a timestamp authority: not supported)",
    )?;
    let set = STANDARD
        .decode(&promise.signed_entry_timestamp)
        .map_err(|_| "a SignedEntryTimestamp that is not base64".to_string())?;
    let log_id = STANDARD
        .decode(&entry.log_id.key_id)
        .map(|k| crate::hex::encode(&k))
        .map_err(|_| "a Rekor log ID that is not base64".to_string())?;
    let integrated = verify_entry(
        root,
        &LogEntry {
            body: &entry.canonicalized_body,
            integrated_time: int64(&entry.integrated_time)
                .ok_or("a Rekor entry without integratedTime")?,
            log_index: int64(&entry.log_index).ok_or("a Rekor entry without logIndex")?,
            log_id,
            set,
        },
    )?;
    // The entry records this payload, this signature and this certificate.
    let body: Value = STANDARD
        .decode(&entry.canonicalized_body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("a Rekor entry body that does not parse")?;
    if body["spec"]["payloadHash"]["value"].as_str()
        != Some(crate::hex::encode(&Sha256::digest(payload)).as_str())
    {
        return Err("a Rekor entry for another payload".into());
    }
    let recorded = body["spec"]["signatures"]
        .as_array()
        .map(|a| a.iter().take(4).collect::<Vec<_>>())
        .unwrap_or_default();
    let signature = signatures
        .iter()
        .find(|sig| {
            recorded.iter().any(|r| {
                let same_sig = r["signature"]
                    .as_str()
                    .and_then(|s| STANDARD.decode(s).ok())
                    .as_deref()
                    == Some(sig.as_slice());
                let same_cert = r["verifier"]
                    .as_str()
                    .and_then(|v| STANDARD.decode(v).ok())
                    .and_then(|pem| String::from_utf8(pem).ok())
                    .map(|pem| pem_certificates(&pem))
                    .and_then(|c| c.into_iter().next())
                    .as_deref()
                    == Some(leaf);
                same_sig && same_cert
            })
        })
        .ok_or("a Rekor entry for another signature or certificate")?;
    let (by, key) = verify_certificate(root, identities, leaf, &[], integrated)?;
    if !key.verify(signed, signature) {
        return Err("bundle signature does not verify with its certificate's key".into());
    }
    Ok(format!("{by} (bundle)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(
            pae("application/vnd.in-toto+json", b"{}"),
            b"DSSEv1 28 application/vnd.in-toto+json 2 {}".to_vec()
        );
    }

    #[test]
    fn the_statement_must_be_cosigns_signature_of_the_digest() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let ok = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{}"}}}}],"predicateType":"{SIGN_PREDICATE}"}}"#,
            "ab".repeat(32)
        );
        assert_eq!(statement_signs(ok.as_bytes(), &d), Ok(()));
        let other = ok.replace(&"ab".repeat(32), &"cd".repeat(32));
        assert!(
            statement_signs(other.as_bytes(), &d)
                .unwrap_err()
                .contains("another image")
        );
        let slsa = ok.replace(SIGN_PREDICATE, "https://slsa.dev/provenance/v1");
        assert!(
            statement_signs(slsa.as_bytes(), &d)
                .unwrap_err()
                .contains("predicate")
        );
    }
}
