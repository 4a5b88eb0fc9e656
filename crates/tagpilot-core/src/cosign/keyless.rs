//! Keyless cosign signatures, checked offline: the Fulcio certificate against the trusted root's CAs at the
//! time Rekor recorded the entry, the identity against `matchOIDCIdentity`, the Rekor SignedEntryTimestamp
//! against the trusted root's log keys, and the entry's body against this signature.
//!
//! `trusted_root.json` is Sigstore's trusted-root format (`application/vnd.dev.sigstore.trustedroot+json`):
//! `certificateAuthorities[].certChain.certificates[].rawBytes` (base64 DER, leaf-most first, the last one the
//! root) and `tlogs[].publicKey.rawBytes` (base64 DER SPKI) with `logId.keyId` (base64 SHA-256 of that DER),
//! each with an optional `validFor {start, end}`.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{self, Decode, Encode};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use super::{BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, P256Key};

/// Largest trusted root read.
const MAX_ROOT: usize = 1 << 20;
/// The code-signing extended key usage (1.3.6.1.5.5.7.3.3), DER contents.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
/// Fulcio's OIDC issuer extensions: v2 (a DER UTF8String) and v1 (raw text, deprecated).
const ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";

/// A validity window; either end may be open.
#[derive(Clone, Debug, Default)]
struct Window {
    start: Option<jiff::Timestamp>,
    end: Option<jiff::Timestamp>,
}

impl Window {
    fn contains(&self, t: jiff::Timestamp) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t < e)
    }
}

struct Authority {
    /// Leaf-most first; the last is the root.
    chain: Vec<Vec<u8>>,
    valid: Window,
}

struct Log {
    key: P256Key,
    /// Hex SHA-256 of the key's DER (Rekor's log ID).
    id: String,
    valid: Window,
}

/// The parts of a trusted root used offline: Fulcio CAs and Rekor keys.
pub struct TrustedRoot {
    authorities: Vec<Authority>,
    logs: Vec<Log>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootDoc {
    #[serde(default)]
    tlogs: Vec<TlogDoc>,
    #[serde(default)]
    certificate_authorities: Vec<CaDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogDoc {
    public_key: PublicKeyDoc,
    #[serde(default)]
    log_id: Option<KeyIdDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyDoc {
    raw_bytes: String,
    #[serde(default)]
    valid_for: Option<ValidForDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyIdDoc {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaDoc {
    cert_chain: ChainDoc,
    #[serde(default)]
    valid_for: Option<ValidForDoc>,
}

#[derive(Deserialize)]
struct ChainDoc {
    certificates: Vec<RawDoc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDoc {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct ValidForDoc {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

fn window(v: Option<&ValidForDoc>, what: &str) -> Result<Window, String> {
    let parse = |s: &Option<String>| -> Result<Option<jiff::Timestamp>, String> {
        s.as_deref()
            .map(|s| {
                s.parse()
                    .map_err(|_| format!("{what}: validFor time {s:?} is not RFC 3339"))
            })
            .transpose()
    };
    Ok(match v {
        Some(v) => Window {
            start: parse(&v.start)?,
            end: parse(&v.end)?,
        },
        None => Window::default(),
    })
}

impl TrustedRoot {
    /// Parses `trusted_root.json`; only ECDSA P-256 log keys are used.
    pub fn parse(json: &[u8]) -> Result<TrustedRoot, String> {
        if json.len() > MAX_ROOT {
            return Err(format!("larger than {MAX_ROOT} bytes"));
        }
        let doc: RootDoc =
            serde_json::from_slice(json).map_err(|e| format!("not a trusted root: {e}"))?;
        let mut authorities = Vec::new();
        for (i, ca) in doc.certificate_authorities.iter().enumerate() {
            let what = format!("certificateAuthorities[{i}]");
            let mut chain = Vec::new();
            for c in &ca.cert_chain.certificates {
                let der = STANDARD
                    .decode(&c.raw_bytes)
                    .map_err(|_| format!("{what}: a certificate that is not base64"))?;
                Certificate::from_der(&der)
                    .map_err(|e| format!("{what}: a certificate that does not parse: {e}"))?;
                chain.push(der);
            }
            if chain.is_empty() {
                return Err(format!("{what}: no certificates"));
            }
            authorities.push(Authority {
                chain,
                valid: window(ca.valid_for.as_ref(), &what)?,
            });
        }
        let mut logs = Vec::new();
        for (i, t) in doc.tlogs.iter().enumerate() {
            let what = format!("tlogs[{i}]");
            let der = STANDARD
                .decode(&t.public_key.raw_bytes)
                .map_err(|_| format!("{what}: publicKey.rawBytes is not base64"))?;
            let Some(key) = P256Key::from_spki_der(&der) else {
                // Other key types (Ed25519 logs of Rekor v2) are not used here.
                continue;
            };
            let id = match &t.log_id {
                Some(l) => crate::hex::encode(
                    &STANDARD
                        .decode(&l.key_id)
                        .map_err(|_| format!("{what}: logId.keyId is not base64"))?,
                ),
                None => crate::hex::encode(&Sha256::digest(&der)),
            };
            logs.push(Log {
                key,
                id,
                valid: window(t.public_key.valid_for.as_ref(), &what)?,
            });
        }
        if authorities.is_empty() {
            return Err("no certificateAuthorities".into());
        }
        if logs.is_empty() {
            return Err("no ECDSA P-256 tlogs key".into());
        }
        Ok(TrustedRoot { authorities, logs })
    }
}

/// The DER of the first 8 `CERTIFICATE` blocks of a PEM text.
pub(super) fn pem_certificates(text: &str) -> Vec<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(text.as_bytes())
        .filter_map(Result::ok)
        .take(8)
        .map(|c| c.to_vec())
        .collect()
}

#[derive(Deserialize)]
struct RekorBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RekorPayload,
}

#[derive(Deserialize)]
struct RekorPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// The bytes a SignedEntryTimestamp signs: RFC 8785 canonical JSON of the payload (keys in code-unit order,
/// integers, ASCII strings escaped as serde_json does).
pub fn set_message(body: &str, integrated_time: i64, log_id: &str, log_index: i64) -> String {
    let s = |v: &str| serde_json::to_string(v).unwrap_or_default();
    format!(
        "{{\"body\":{},\"integratedTime\":{integrated_time},\"logID\":{},\"logIndex\":{log_index}}}",
        s(body),
        s(log_id)
    )
}

/// The certificate's identity: its email and URI SANs, and its OIDC issuer.
fn identity(cert: &Certificate) -> (Vec<String>, Option<String>) {
    let mut subjects = Vec::new();
    let mut issuer = None;
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        let id = ext.extn_id.to_string();
        let value = ext.extn_value.as_bytes();
        if id == "2.5.29.17" {
            if let Ok(san) = SubjectAltName::from_der(value) {
                for name in san.0 {
                    match name {
                        GeneralName::Rfc822Name(s) => subjects.push(s.to_string()),
                        GeneralName::UniformResourceIdentifier(s) => subjects.push(s.to_string()),
                        _ => {}
                    }
                }
            }
        } else if id == ISSUER_V2 {
            if let Ok(s) = der::asn1::Utf8StringRef::from_der(value) {
                issuer = Some(s.as_str().to_string());
            }
        } else if id == ISSUER_V1 && issuer.is_none() {
            issuer = std::str::from_utf8(value).ok().map(str::to_string);
        }
    }
    (subjects, issuer)
}

/// A Rekor entry and its inclusion promise (the SignedEntryTimestamp).
pub(super) struct LogEntry<'a> {
    /// The entry's body, base64 (canonicalized).
    pub body: &'a str,
    /// When the log recorded it (Unix seconds).
    pub integrated_time: i64,
    /// The entry's index.
    pub log_index: i64,
    /// The log's ID (hex SHA-256 of its key).
    pub log_id: String,
    /// The SignedEntryTimestamp (ASN.1 DER).
    pub set: Vec<u8>,
}

/// Checks the SignedEntryTimestamp by a log of the trusted root valid at the entry's time; returns that time.
pub(super) fn verify_entry(
    root: &TrustedRoot,
    entry: &LogEntry<'_>,
) -> Result<jiff::Timestamp, String> {
    let integrated = jiff::Timestamp::from_second(entry.integrated_time)
        .map_err(|_| "a Rekor entry with an impossible integratedTime".to_string())?;
    let log = root
        .logs
        .iter()
        .find(|l| l.id.eq_ignore_ascii_case(&entry.log_id))
        .ok_or("a Rekor entry from a log the trusted root does not have")?;
    if !log.valid.contains(integrated) {
        return Err("a Rekor entry outside its log key's validity".into());
    }
    let message = set_message(
        entry.body,
        entry.integrated_time,
        &entry.log_id,
        entry.log_index,
    );
    if !log.key.verify(message.as_bytes(), &entry.set) {
        return Err("a Rekor SignedEntryTimestamp that does not verify".into());
    }
    Ok(integrated)
}

/// Checks a Fulcio certificate (`leaf`, DER; `extra` intermediates it came with): it chains to a CA of the
/// trusted root at `integrated`, for code signing, and names an identity of `identities`. Returns what signed
/// (`keyless, <subject> (issuer <issuer>)`) and the certificate's key.
pub(super) fn verify_certificate(
    root: &TrustedRoot,
    identities: &[(regex::Regex, regex::Regex)],
    leaf: &[u8],
    extra: &[Vec<u8>],
    integrated: jiff::Timestamp,
) -> Result<(String, P256Key), String> {
    let time =
        UnixTime::since_unix_epoch(Duration::from_secs(integrated.as_second().max(0) as u64));
    let leaf_der = CertificateDer::from(leaf);
    let end_entity = webpki::EndEntityCert::try_from(&leaf_der)
        .map_err(|e| format!("a certificate that does not parse: {e}"))?;
    let mut chained = false;
    let mut last_error = String::new();
    for ca in root
        .authorities
        .iter()
        .filter(|a| a.valid.contains(integrated))
    {
        let (anchor_der, intermediates) = ca.chain.split_last().expect("checked non-empty");
        let anchor_der = CertificateDer::from(anchor_der.as_slice());
        let Ok(anchor) = webpki::anchor_from_trusted_cert(&anchor_der) else {
            continue;
        };
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .chain(extra.iter())
            .map(|d| CertificateDer::from(d.as_slice()))
            .collect();
        match end_entity.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &intermediates,
            time,
            webpki::KeyUsage::required(CODE_SIGNING),
            None,
            None,
        ) {
            Ok(_) => {
                chained = true;
                break;
            }
            Err(e) => last_error = format!("{e:?}"),
        }
    }
    if !chained {
        return Err(format!(
            "a certificate that does not chain to a Fulcio CA of the trusted root at {integrated} ({last_error})"
        ));
    }
    let cert = Certificate::from_der(leaf)
        .map_err(|e| format!("a certificate that does not parse: {e}"))?;
    let (subjects, issuer) = identity(&cert);
    // A certificate without the issuer extension has the empty issuer (as cosign reads it).
    let issuer = issuer.unwrap_or_default();
    let matched = subjects.iter().find(|s| {
        identities
            .iter()
            .any(|(i, sub)| i.is_match(&issuer) && sub.is_match(s))
    });
    let Some(subject) = matched else {
        return Err(format!(
            "signed by {} (issuer {}), which matches no spec.verify.matchOIDCIdentity entry",
            crate::sanitize::cap(&subjects.join(", "), 200),
            crate::sanitize::cap(&issuer, 200)
        ));
    };
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("a certificate key that does not encode: {e}"))?;
    let key = P256Key::from_spki_der(&spki).ok_or("a certificate whose key is not ECDSA P-256")?;
    Ok((format!("keyless, {subject} (issuer {issuer})"), key))
}

/// Checks a keyless signature layer; `Ok` names the identity that signed.
pub(super) fn check(
    root: &TrustedRoot,
    identities: &[(regex::Regex, regex::Regex)],
    payload: &[u8],
    signature: &[u8],
    annotations: &BTreeMap<String, String>,
) -> Result<String, String> {
    let cert_pem = annotations
        .get(CERTIFICATE_ANNOTATION)
        .ok_or("a signature without a certificate (keyless verification needs one)")?;
    let leaf = pem_certificates(cert_pem)
        .into_iter()
        .next()
        .ok_or("a certificate annotation without a PEM certificate")?;
    let bundle: RekorBundle = annotations
        .get(BUNDLE_ANNOTATION)
        .and_then(|b| serde_json::from_str(b).ok())
        .ok_or("a keyless signature without a Rekor bundle")?;
    let p = &bundle.payload;
    let set = STANDARD
        .decode(&bundle.signed_entry_timestamp)
        .map_err(|_| "a Rekor bundle whose SignedEntryTimestamp is not base64".to_string())?;
    let integrated = verify_entry(
        root,
        &LogEntry {
            body: &p.body,
            integrated_time: p.integrated_time,
            log_index: p.log_index,
            log_id: p.log_id.clone(),
            set,
        },
    )?;
    // The entry records this signature, certificate and payload.
    body_matches(&p.body, payload, signature, &leaf)?;
    let extra: Vec<Vec<u8>> = annotations
        .get(CHAIN_ANNOTATION)
        .map(|c| pem_certificates(c))
        .unwrap_or_default();
    let (by, key) = verify_certificate(root, identities, &leaf, &extra, integrated)?;
    if !key.verify(payload, signature) {
        return Err("signature does not verify with its certificate's key".into());
    }
    Ok(by)
}

#[derive(Deserialize)]
struct EntryDoc {
    kind: String,
    spec: EntrySpec,
}

#[derive(Deserialize)]
struct EntrySpec {
    data: EntryData,
    signature: EntrySignature,
}

#[derive(Deserialize)]
struct EntryData {
    hash: EntryHash,
}

#[derive(Deserialize)]
struct EntryHash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntrySignature {
    content: String,
    public_key: EntryKey,
}

#[derive(Deserialize)]
struct EntryKey {
    content: String,
}

/// The Rekor entry body (`hashedrekord` or `rekord`) records this payload's hash, signature and certificate.
fn body_matches(body: &str, payload: &[u8], signature: &[u8], leaf: &[u8]) -> Result<(), String> {
    let wrong = |what: &str| format!("a Rekor entry for another {what}");
    let entry: EntryDoc = STANDARD
        .decode(body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("a Rekor entry body that does not parse")?;
    if entry.kind != "hashedrekord" && entry.kind != "rekord" {
        return Err(format!(
            "a Rekor entry of kind {:?}",
            crate::sanitize::cap(&entry.kind, 40)
        ));
    }
    let hash = &entry.spec.data.hash;
    if hash.algorithm != "sha256"
        || !hash
            .value
            .eq_ignore_ascii_case(&crate::hex::encode(&Sha256::digest(payload)))
    {
        return Err(wrong("payload"));
    }
    if STANDARD
        .decode(&entry.spec.signature.content)
        .ok()
        .as_deref()
        != Some(signature)
    {
        return Err(wrong("signature"));
    }
    let key = STANDARD
        .decode(&entry.spec.signature.public_key.content)
        .ok()
        .and_then(|pem| String::from_utf8(pem).ok())
        .map(|pem| pem_certificates(&pem))
        .unwrap_or_default();
    if key.first().map(Vec::as_slice) != Some(leaf) {
        return Err(wrong("certificate"));
    }
    Ok(())
}
