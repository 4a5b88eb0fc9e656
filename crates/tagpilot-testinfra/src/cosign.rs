//! cosign signatures made in tests, in cosign's published "simple signing" format (cosign's
//! `specs/SIGNATURE_SPEC.md`): key pairs as `cosign generate-key-pair` makes them (ECDSA P-256), and keyless
//! signatures from a test CA standing in for Fulcio and a test key standing in for Rekor, with the trusted
//! root (`trusted_root.json`) that names both.

use std::collections::BTreeMap;

use anyhow::Context as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey};
use sha2::{Digest, Sha256};

/// The signature annotation.
pub const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The certificate annotation.
pub const CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// The Rekor bundle annotation.
pub const BUNDLE: &str = "dev.sigstore.cosign/bundle";

/// One signature layer: the payload blob and the layer's annotations.
#[derive(Clone, Debug)]
pub struct SignatureLayer {
    /// The signed payload, exactly as stored.
    pub payload: Vec<u8>,
    /// The layer annotations.
    pub annotations: BTreeMap<String, String>,
}

/// cosign's simple-signing payload for `docker_reference` at `digest`.
pub fn payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    }))
    .expect("a payload serialises")
}

/// cosign v3's signed statement for `digest` (an in-toto Statement v1 with cosign's signature predicate).
pub fn statement(digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": hex}, "annotations": {}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
    }))
    .expect("a statement serialises")
}

/// DSSE's pre-authentication encoding of an in-toto payload.
fn pae(payload: &[u8]) -> Vec<u8> {
    let t = "application/vnd.in-toto+json";
    let mut out = format!("DSSEv1 {} {t} {} ", t.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

fn envelope(payload: &[u8], signature: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "payload": STANDARD.encode(payload),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"sig": STANDARD.encode(signature), "keyid": ""}],
    })
}

/// An ECDSA P-256 key pair, as `cosign generate-key-pair` makes.
pub struct KeyPair {
    key: SigningKey,
}

impl KeyPair {
    /// A new random key.
    pub fn generate() -> KeyPair {
        KeyPair {
            key: SigningKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
        }
    }

    /// `cosign.pub`: PEM `PUBLIC KEY`.
    pub fn public_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .expect("a P-256 key encodes")
    }

    /// The public key's DER SPKI.
    pub fn public_der(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_public_key_der()
            .expect("a P-256 key encodes")
            .into_vec()
    }

    /// An ASN.1 DER ECDSA signature over SHA-256 of `data`.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        let sig: DerSignature = self.key.sign(data);
        sig.as_bytes().to_vec()
    }

    /// A cosign v3 bundle for `digest` signed with this key (no transparency log entry, as
    /// `cosign sign --key --tlog-upload=false` makes it).
    pub fn bundle(&self, digest: &str) -> String {
        let payload = statement(digest);
        serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
            "dsseEnvelope": envelope(&payload, &self.sign(&pae(&payload))),
        })
        .to_string()
    }

    /// A signature layer for `payload` made with this key.
    pub fn layer(&self, payload: &[u8]) -> SignatureLayer {
        SignatureLayer {
            payload: payload.to_vec(),
            annotations: BTreeMap::from([(
                SIGNATURE.to_string(),
                STANDARD.encode(self.sign(payload)),
            )]),
        }
    }
}

/// A test Sigstore: a CA standing in for Fulcio, a key standing in for Rekor's.
pub struct Sigstore {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    rekor: KeyPair,
    log_index: std::sync::atomic::AtomicI64,
}

/// Fulcio's OIDC issuer extension (v2, a DER UTF8String).
const ISSUER_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];

fn der_utf8(s: &str) -> Vec<u8> {
    let mut out = vec![0x0c];
    let n = s.len();
    if n < 128 {
        out.push(n as u8);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(s.as_bytes());
    out
}

impl Sigstore {
    /// A new CA and log key.
    pub fn new() -> anyhow::Result<Sigstore> {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tagpilot test fulcio");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        let ca = params.self_signed(&ca_key)?;
        Ok(Sigstore {
            ca,
            ca_key,
            rekor: KeyPair::generate(),
            log_index: Default::default(),
        })
    }

    /// `trusted_root.json` naming this CA and log key.
    pub fn trusted_root(&self) -> String {
        let rekor_der = self.rekor.public_der();
        serde_json::to_string_pretty(&serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": "http://127.0.0.1:1/rekor",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": STANDARD.encode(&rekor_der),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2020-01-01T00:00:00Z"},
                },
                "logId": {"keyId": STANDARD.encode(Sha256::digest(&rekor_der))},
            }],
            "certificateAuthorities": [{
                "subject": {"organization": "tagpilot", "commonName": "tagpilot test fulcio"},
                "uri": "http://127.0.0.1:1/fulcio",
                "certChain": {"certificates": [{"rawBytes": STANDARD.encode(self.ca.der().as_ref())}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            }],
            "ctlogs": [],
            "timestampAuthorities": [],
        }))
        .expect("a trusted root serialises")
    }

    /// A Fulcio-like certificate for `subject` from `issuer`, valid from a minute ago for ten minutes, and its
    /// signing key.
    fn certificate(
        &self,
        subject: &str,
        issuer: &str,
    ) -> anyhow::Result<(rcgen::Certificate, SigningKey)> {
        let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let signer = SigningKey::from_pkcs8_der(&leaf_key.serialize_der())
            .context("the leaf key as PKCS#8")?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![if subject.contains("://") {
            rcgen::SanType::URI(subject.try_into()?)
        } else {
            rcgen::SanType::Rfc822Name(subject.try_into()?)
        }];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            ISSUER_OID,
            der_utf8(issuer),
        )];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + time::Duration::minutes(10);
        Ok((params.signed_by(&leaf_key, &self.ca, &self.ca_key)?, signer))
    }

    /// A log entry now for `body` (base64): (integrated time, index, log ID hex, SignedEntryTimestamp b64).
    fn log(&self, body: &str) -> (i64, i64, String, String) {
        let integrated_time = time::OffsetDateTime::now_utc().unix_timestamp();
        let log_index = self
            .log_index
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_id = tagpilot_core::hex::encode(&Sha256::digest(self.rekor.public_der()));
        let message =
            tagpilot_core::cosign::keyless::set_message(body, integrated_time, &log_id, log_index);
        let set = STANDARD.encode(self.rekor.sign(message.as_bytes()));
        (integrated_time, log_index, log_id, set)
    }

    /// A cosign v3 bundle for `digest`, keyless: signed by `subject` from `issuer`, recorded by the test log
    /// as a `dsse` entry with an inclusion promise.
    pub fn bundle(&self, digest: &str, subject: &str, issuer: &str) -> anyhow::Result<String> {
        let (cert, signer) = self.certificate(subject, issuer)?;
        let payload = statement(digest);
        let sig: DerSignature = signer.sign(&pae(&payload));
        let signature = sig.as_bytes().to_vec();
        let env = envelope(&payload, &signature);
        let body = serde_json::json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": tagpilot_core::hex::encode(&Sha256::digest(env.to_string()))},
                "payloadHash": {"algorithm": "sha256", "value": tagpilot_core::hex::encode(&Sha256::digest(&payload))},
                "signatures": [{
                    "signature": STANDARD.encode(&signature),
                    "verifier": STANDARD.encode(cert.pem().as_bytes()),
                }],
            },
        });
        let body = STANDARD.encode(serde_json::to_vec(&body)?);
        let (integrated_time, log_index, log_id, set) = self.log(&body);
        let key_id = STANDARD.encode(Sha256::digest(self.rekor.public_der()));
        debug_assert_eq!(
            tagpilot_core::hex::encode(&STANDARD.decode(&key_id)?),
            log_id
        );
        Ok(serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": STANDARD.encode(cert.der().as_ref())},
                "tlogEntries": [{
                    "logIndex": log_index.to_string(),
                    "logId": {"keyId": key_id},
                    "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                    "integratedTime": integrated_time.to_string(),
                    "inclusionPromise": {"signedEntryTimestamp": set},
                    "canonicalizedBody": body,
                }],
            },
            "dsseEnvelope": env,
        })
        .to_string())
    }

    /// A keyless signature layer over `payload` by `subject` (an email or URI) from `issuer`, recorded by the
    /// test log now. `sign_with` signs instead of the certificate's key when given (a mismatch).
    pub fn layer(
        &self,
        payload: &[u8],
        subject: &str,
        issuer: &str,
        sign_with: Option<&KeyPair>,
    ) -> anyhow::Result<SignatureLayer> {
        let (leaf, signer) = self.certificate(subject, issuer)?;
        let cert_pem = leaf.pem();
        let signature = match sign_with {
            Some(k) => k.sign(payload),
            None => {
                let sig: DerSignature = signer.sign(payload);
                sig.as_bytes().to_vec()
            }
        };
        let body = serde_json::json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": tagpilot_core::hex::encode(&Sha256::digest(payload))}},
                "signature": {
                    "content": STANDARD.encode(&signature),
                    "publicKey": {"content": STANDARD.encode(cert_pem.as_bytes())},
                },
            },
        });
        let body = STANDARD.encode(serde_json::to_vec(&body)?);
        let (integrated_time, log_index, log_id, set) = self.log(&body);
        let bundle = serde_json::json!({
            "SignedEntryTimestamp": set,
            "Payload": {"body": body, "integratedTime": integrated_time, "logIndex": log_index, "logID": log_id},
        });
        Ok(SignatureLayer {
            payload: payload.to_vec(),
            annotations: BTreeMap::from([
                (SIGNATURE.to_string(), STANDARD.encode(&signature)),
                (CERTIFICATE.to_string(), cert_pem),
                (BUNDLE.to_string(), serde_json::to_string(&bundle)?),
            ]),
        })
    }
}
