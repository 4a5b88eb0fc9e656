//! cosign signature checks against signatures in cosign's published format: real ones recorded by
//! sigstore-rs (its `src/cosign/signature_layers.rs` test fixtures, made by cosign against the public-good
//! Sigstore in 2021, and its `trust_root/prod/trusted_root.json`; Apache-2.0), and ones made here by the test
//! signer (`tagpilot_testinfra::cosign`), good and bad.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tagpilot_core::cosign::Verifier;
use tagpilot_core::gates::anchored;
use tagpilot_testinfra::cosign::{self as signer, KeyPair, Sigstore};

const SRS_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu
OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==
-----END PUBLIC KEY-----";
const SRS_KEY_SIGNATURE: &str = "MEUCIQD6q/COgzOyW0YH1Dk+CCYSt4uAhm3FDHUwvPI55zwnlwIgE0ZK58ZOWpZw8YVmBapJhBqCfdPekIknimuO0xH8Jh8=";
const SRS_KEY_DIGEST: &str =
    "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";

const SRS_CERT: &str = "-----BEGIN CERTIFICATE-----
MIICdzCCAfygAwIBAgITA+PsaKjaEZqn7IY94b1e/jJnizAKBggqhkjOPQQDAzAq
MRUwEwYDVQQKEwxzaWdzdG9yZS5kZXYxETAPBgNVBAMTCHNpZ3N0b3JlMB4XDTIx
MTAyMDA3MjUxNloXDTIxMTAyMDA3NDUxNVowADBZMBMGByqGSM49AgEGCCqGSM49
AwEHA0IABINewQBS1f4AmNIENdL+U/HJotMSM7ZNnkTnYefxwV9TErpvnAZ0+DzL
yfAAVaeJtKjFvbOTb8F1yhJFU0XY+RijggEpMIIBJTAOBgNVHQ8BAf8EBAMCB4Aw
EwYDVR0lBAwwCgYIKwYBBQUHAwMwDAYDVR0TAQH/BAIwADAdBgNVHQ4EFgQUMf1R
MMsqNFBrWbx8mRNdxOkEEYswHwYDVR0jBBgwFoAUyMUdAEGaJCkyUSTrDa5K7UoG
0+wwgY0GCCsGAQUFBwEBBIGAMH4wfAYIKwYBBQUHMAKGcGh0dHA6Ly9wcml2YXRl
Y2EtY29udGVudC02MDNmZTdlNy0wMDAwLTIyMjctYmY3NS1mNGY1ZTgwZDI5NTQu
c3RvcmFnZS5nb29nbGVhcGlzLmNvbS9jYTM2YTFlOTYyNDJiOWZjYjE0Ni9jYS5j
cnQwIAYDVR0RAQH/BBYwFIESZmxhdmlvQGNhc3RlbGxpLm1lMAoGCCqGSM49BAMD
A2kAMGYCMQC3Y2ulPTsPmNS4czaKeje0BnOQHz5e6NBX0Bqx9Xca+t2kOi17sopc
/v/xH1xLuPoCMQDKND4WjHfKqXXOeUvZ9A96DqrEwGaqGMtnIuN4JzZYaULZrx9g
oXqqo/C9QnOHTto=
-----END CERTIFICATE-----";
const SRS_CERT_SIGNATURE: &str = "MEUCIGqWScz7s9aP2sGXNFKeqivw3B6kPRs56AITIHnvd5igAiEA1kzbaV2Y5yPE81EN92NUFOl31LLJSvwsjFQ07m2XqaA=";
const SRS_CERT_DIGEST: &str =
    "sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e";
const SRS_SET: &str = "MEUCIDBGJijj2FqU25yRWzlEWHqE64XKwUvychBs1bSM1PaKAiEAwcR2u81c42TLBk3lWJqhtB7SnM7Lh0OYEl6Bfa7ZA4s=";
const SRS_BODY: &str = include_str!("data/cosign/sigstore-rs-rekor-body.b64");
const SRS_ROOT: &[u8] = include_bytes!("data/cosign/sigstore-rs-prod-trusted_root.json");

fn annotations(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect()
}

fn srs_keyless_layer(integrated_time: i64) -> BTreeMap<String, String> {
    let bundle = serde_json::json!({
        "SignedEntryTimestamp": SRS_SET,
        "Payload": {
            "body": SRS_BODY.trim(),
            "integratedTime": integrated_time,
            "logIndex": 783607,
            "logID": "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
        },
    });
    annotations(&[
        (signer::SIGNATURE, SRS_CERT_SIGNATURE.to_string()),
        (signer::CERTIFICATE, SRS_CERT.to_string()),
        (signer::BUNDLE, bundle.to_string()),
    ])
}

fn identities(issuer: &str, subject: &str) -> Vec<(regex::Regex, regex::Regex)> {
    vec![(anchored(issuer).unwrap(), anchored(subject).unwrap())]
}

#[test]
fn a_real_cosign_key_signature_verifies_and_tampering_does_not() {
    let v = Verifier::with_keys("ns/keys", &keys(&[("cosign.pub", SRS_PUBLIC_KEY)])).unwrap();
    let payload = signer::payload("registry-testing.svc.lan/busybox", SRS_KEY_DIGEST);
    let layer = annotations(&[(signer::SIGNATURE, SRS_KEY_SIGNATURE.to_string())]);
    assert_eq!(
        v.check(&payload, &layer, SRS_KEY_DIGEST),
        Ok("key cosign.pub".into())
    );
    // The payload for another digest: the signature no longer verifies.
    let other = signer::payload("registry-testing.svc.lan/busybox", SRS_CERT_DIGEST);
    assert!(v.check(&other, &layer, SRS_CERT_DIGEST).is_err());
    // The right payload admitted for another image: refused by the digest check.
    let e = v.check(&payload, &layer, SRS_CERT_DIGEST).unwrap_err();
    assert!(e.contains("another image"), "{e}");
    // One flipped byte of the signature.
    let mut sig = STANDARD.decode(SRS_KEY_SIGNATURE).unwrap();
    let n = sig.len();
    sig[n - 3] ^= 1;
    let bad = annotations(&[(signer::SIGNATURE, STANDARD.encode(sig))]);
    assert!(v.check(&payload, &bad, SRS_KEY_DIGEST).is_err());
    // Another key.
    let other = KeyPair::generate();
    let v2 = Verifier::with_keys("ns/keys", &keys(&[("other.pub", &other.public_pem())])).unwrap();
    let e = v2.check(&payload, &layer, SRS_KEY_DIGEST).unwrap_err();
    assert!(e.contains("does not verify with any key"), "{e}");
    // Both keys: the one that verifies is named.
    let v3 = Verifier::with_keys(
        "ns/keys",
        &keys(&[
            ("a.pub", &other.public_pem()),
            ("cosign.pub", SRS_PUBLIC_KEY),
        ]),
    )
    .unwrap();
    assert_eq!(
        v3.check(&payload, &layer, SRS_KEY_DIGEST),
        Ok("key cosign.pub".into())
    );
}

#[test]
fn a_real_keyless_signature_verifies_against_the_public_good_root() {
    let payload = signer::payload(
        "registry-testing.svc.lan/kubewarden/disallow-service-nodeport",
        SRS_CERT_DIGEST,
    );
    let root = BTreeMap::from([("trusted_root.json".to_string(), SRS_ROOT.to_vec())]);
    let v = Verifier::keyless("ns/root", &root, identities(".*", r"flavio@castelli\.me")).unwrap();
    let layer = srs_keyless_layer(1634714717);
    assert_eq!(
        v.check(&payload, &layer, SRS_CERT_DIGEST),
        Ok("keyless, flavio@castelli.me (issuer )".into())
    );

    let v = Verifier::keyless("ns/root", &root, identities(".*", r".*@example\.com")).unwrap();
    let e = v.check(&payload, &layer, SRS_CERT_DIGEST).unwrap_err();
    assert!(
        e.contains("matches no spec.verify.matchOIDCIdentity"),
        "{e}"
    );

    // The entry's time changed: the SignedEntryTimestamp no longer verifies.
    let v = Verifier::keyless("ns/root", &root, identities(".*", ".*")).unwrap();
    let e = v
        .check(&payload, &srs_keyless_layer(1634714718), SRS_CERT_DIGEST)
        .unwrap_err();
    assert!(e.contains("SignedEntryTimestamp"), "{e}");
}

#[test]
fn keyless_signatures_from_the_test_ca() {
    let store = Sigstore::new().unwrap();
    let root = BTreeMap::from([(
        "trusted_root.json".to_string(),
        store.trusted_root().into_bytes(),
    )]);
    let digest = format!("sha256:{}", "ab".repeat(32));
    let payload = signer::payload("127.0.0.1:5000/app", &digest);
    let issuer = "https://token.actions.githubusercontent.com";
    let workflow = "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main";
    let v = Verifier::keyless(
        "ns/root",
        &root,
        identities(
            r"https://token\.actions\.githubusercontent\.com",
            r"https://github\.com/org/app/.*",
        ),
    )
    .unwrap();
    let good = store.layer(&payload, workflow, issuer, None).unwrap();
    assert_eq!(
        v.check(&good.payload, &good.annotations, &digest),
        Ok(format!("keyless, {workflow} (issuer {issuer})"))
    );
    // Another issuer.
    let other_issuer = store
        .layer(&payload, workflow, "https://accounts.example.com", None)
        .unwrap();
    assert!(
        v.check(&other_issuer.payload, &other_issuer.annotations, &digest)
            .unwrap_err()
            .contains("matches no")
    );
    // Signed by a key other than the certificate's (and logged so).
    let stray = KeyPair::generate();
    let mismatched = store
        .layer(&payload, workflow, issuer, Some(&stray))
        .unwrap();
    let e = v
        .check(&mismatched.payload, &mismatched.annotations, &digest)
        .unwrap_err();
    assert!(
        e.contains("does not verify with its certificate's key"),
        "{e}"
    );
    // A certificate from a CA the root does not trust (another test Sigstore, its log also unknown).
    let foreign = Sigstore::new().unwrap();
    let layer = foreign.layer(&payload, workflow, issuer, None).unwrap();
    let e = v
        .check(&layer.payload, &layer.annotations, &digest)
        .unwrap_err();
    assert!(e.contains("log the trusted root does not have"), "{e}");
    // The signature swapped for another entry's: the log's body no longer matches.
    let second = store.layer(&payload, workflow, issuer, None).unwrap();
    let mut swapped = good.annotations.clone();
    swapped.insert(
        signer::SIGNATURE.into(),
        second.annotations[signer::SIGNATURE].clone(),
    );
    let e = v.check(&good.payload, &swapped, &digest).unwrap_err();
    assert!(e.contains("Rekor entry for another signature"), "{e}");
    // A keyless signature where keys are expected.
    let kv = Verifier::with_keys("ns/keys", &keys(&[("a.pub", &stray.public_pem())])).unwrap();
    assert!(kv.check(&good.payload, &good.annotations, &digest).is_err());
    // Without a bundle.
    let mut no_bundle = good.annotations.clone();
    no_bundle.remove(signer::BUNDLE);
    assert!(
        v.check(&good.payload, &no_bundle, &digest)
            .unwrap_err()
            .contains("without a Rekor bundle")
    );
}

#[test]
fn unusable_verification_material_is_named() {
    let e = Verifier::with_keys("ns/keys", &keys(&[("README", "x")]))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "secret 'ns/keys' (spec.verify.secretRef) has no '*.pub' key"
    );
    let e = Verifier::with_keys("ns/keys", &keys(&[("cosign.pub", "not a key")]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("key 'cosign.pub' is not a PEM ECDSA P-256 public key"),
        "{e}"
    );
    let e = Verifier::keyless("ns/root", &keys(&[("root.json", "{}")]), vec![])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("has no key 'trusted_root.json'"), "{e}");
    let e = Verifier::keyless("ns/root", &keys(&[("trusted_root.json", "{}")]), vec![])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no certificateAuthorities"), "{e}");
}

const SRS_BUNDLE: &[u8] = include_bytes!("data/cosign/sigstore-rs-bundle_v03.json");
const SRS_BUNDLE_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";

#[test]
fn a_real_cosign_v3_bundle_verifies_against_the_public_good_root() {
    let root = BTreeMap::from([("trusted_root.json".to_string(), SRS_ROOT.to_vec())]);
    let workflow = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
    let v = Verifier::keyless(
        "ns/root",
        &root,
        identities(
            r"https://token\.actions\.githubusercontent\.com",
            r"https://github\.com/kubewarden/.*",
        ),
    )
    .unwrap();
    assert_eq!(
        v.check_bundle(SRS_BUNDLE, SRS_BUNDLE_DIGEST),
        Ok(format!(
            "keyless, {workflow} (issuer https://token.actions.githubusercontent.com) (bundle)"
        ))
    );
    // For another image.
    let e = v.check_bundle(SRS_BUNDLE, SRS_KEY_DIGEST).unwrap_err();
    assert!(e.contains("another image"), "{e}");
    // Another identity.
    let other = Verifier::keyless(
        "ns/root",
        &root,
        identities(".*", r"https://github\.com/org/.*"),
    )
    .unwrap();
    assert!(
        other
            .check_bundle(SRS_BUNDLE, SRS_BUNDLE_DIGEST)
            .unwrap_err()
            .contains("matches no")
    );
    // The entry's time changed: the inclusion promise no longer verifies.
    let mut b: serde_json::Value = serde_json::from_slice(SRS_BUNDLE).unwrap();
    b["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1775719410".into();
    let e = v
        .check_bundle(&serde_json::to_vec(&b).unwrap(), SRS_BUNDLE_DIGEST)
        .unwrap_err();
    assert!(e.contains("SignedEntryTimestamp"), "{e}");
    // The statement changed: the DSSE signature no longer verifies.
    let mut b: serde_json::Value = serde_json::from_slice(SRS_BUNDLE).unwrap();
    let payload = STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let mut edited = payload.clone();
    edited.insert(1, b' ');
    b["dsseEnvelope"]["payload"] = STANDARD.encode(&edited).into();
    let e = v
        .check_bundle(&serde_json::to_vec(&b).unwrap(), SRS_BUNDLE_DIGEST)
        .unwrap_err();
    assert!(e.contains("another payload"), "{e}");
    // Keys do not verify a keyless bundle.
    let k = Verifier::with_keys("ns/keys", &keys(&[("cosign.pub", SRS_PUBLIC_KEY)])).unwrap();
    assert!(k.check_bundle(SRS_BUNDLE, SRS_BUNDLE_DIGEST).is_err());
}

#[test]
fn bundles_from_the_test_signer() {
    let digest = format!("sha256:{}", "cd".repeat(32));
    let key = KeyPair::generate();
    let kv = Verifier::with_keys("ns/keys", &keys(&[("cosign.pub", &key.public_pem())])).unwrap();
    let b = key.bundle(&digest);
    assert_eq!(
        kv.check_bundle(b.as_bytes(), &digest),
        Ok("key cosign.pub (bundle)".into())
    );
    assert!(
        kv.check_bundle(b.as_bytes(), &format!("sha256:{}", "ef".repeat(32)))
            .is_err()
    );
    let other = KeyPair::generate();
    assert!(
        kv.check_bundle(other.bundle(&digest).as_bytes(), &digest)
            .is_err()
    );

    let store = Sigstore::new().unwrap();
    let root = BTreeMap::from([(
        "trusted_root.json".to_string(),
        store.trusted_root().into_bytes(),
    )]);
    let v = Verifier::keyless("ns/root", &root, identities(".*", r".*@example\.com")).unwrap();
    let b = store
        .bundle(&digest, "dev@example.com", "https://accounts.example.com")
        .unwrap();
    assert_eq!(
        v.check_bundle(b.as_bytes(), &digest),
        Ok("keyless, dev@example.com (issuer https://accounts.example.com) (bundle)".into())
    );
    // The entry's recorded signature swapped for another bundle's.
    let second = store
        .bundle(&digest, "dev@example.com", "https://accounts.example.com")
        .unwrap();
    let mut swapped: serde_json::Value = serde_json::from_str(&b).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&second).unwrap();
    swapped["dsseEnvelope"] = theirs["dsseEnvelope"].clone();
    let e = v
        .check_bundle(&serde_json::to_vec(&swapped).unwrap(), &digest)
        .unwrap_err();
    assert!(e.contains("another signature or certificate"), "{e}");
    // A bundle from a CA the root does not know.
    let foreign = Sigstore::new().unwrap();
    let fb = foreign
        .bundle(&digest, "dev@example.com", "https://accounts.example.com")
        .unwrap();
    assert!(v.check_bundle(fb.as_bytes(), &digest).is_err());
}

#[test]
fn truncated_and_bit_flipped_material_is_refused_without_a_panic() {
    // What the `cosign` fuzz target checks, over deterministic damage of the real bundle and root.
    for (kind, data) in [(0u8, SRS_BUNDLE), (2u8, SRS_ROOT)] {
        for cut in (0..data.len()).step_by(97) {
            let mut input = vec![kind];
            input.extend_from_slice(&data[..cut]);
            tagpilot_core::fuzzing::cosign(&input);
        }
        for at in (0..data.len()).step_by(211) {
            let mut input = vec![kind];
            input.extend_from_slice(data);
            input[1 + at] ^= 0x20;
            tagpilot_core::fuzzing::cosign(&input);
        }
    }
}
