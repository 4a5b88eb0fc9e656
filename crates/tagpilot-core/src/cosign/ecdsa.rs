//! ECDSA P-256 public keys (PKIX `PUBLIC KEY`, as cosign writes them and as certificates and trusted roots
//! carry them) and the verification of ASN.1 DER signatures over SHA-256, by aws-lc.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use x509_cert::der::Decode;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// An ECDSA P-256 public key (the uncompressed point).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct P256Key(Vec<u8>);

impl P256Key {
    /// From a DER SubjectPublicKeyInfo; `None` for anything but an ECDSA P-256 key.
    pub fn from_spki_der(der: &[u8]) -> Option<P256Key> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der).ok()?;
        if spki.algorithm.oid != EC_PUBLIC_KEY {
            return None;
        }
        let curve: ObjectIdentifier = spki.algorithm.parameters.as_ref()?.decode_as().ok()?;
        if curve != PRIME256V1 {
            return None;
        }
        let point = spki.subject_public_key.as_bytes()?;
        (point.len() == 65 && point[0] == 4).then(|| P256Key(point.to_vec()))
    }

    /// From PEM `PUBLIC KEY`.
    pub fn from_pem(text: &str) -> Option<P256Key> {
        use rustls_pki_types::pem::PemObject;
        let der =
            rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(text.as_bytes()).ok()?;
        P256Key::from_spki_der(&der)
    }

    /// Whether `signature` (ASN.1 DER) signs `message` (hashed with SHA-256).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}
