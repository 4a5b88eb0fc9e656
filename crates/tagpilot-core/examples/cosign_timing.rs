//! The Rust side of `make bench-gates`' verification timing: writes a fixture (a key signature and a keyless
//! one, made by the test signer), and times one verification of a signature layer.
//!
//!   cosign_timing gen FILE            writes the fixture (JSON)
//!   cosign_timing run FILE key|keyless
//!
//! `run` prints `median_ns<TAB>result`, the median of 15 samples of enough iterations to last ~40 ms. The Go
//! harness (hack/go-harness/cosigntiming) reads the same fixture and prints the same line.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tagpilot_core::cosign::Verifier;
use tagpilot_core::gates::anchored;
use tagpilot_testinfra::cosign::{self as signer, KeyPair, Sigstore};

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const SUBJECT: &str = "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") => write_fixture(&args[1]),
        Some("run") => run(&args[1], &args[2]),
        _ => panic!("usage: cosign_timing gen FILE | run FILE key|keyless"),
    }
}

fn write_fixture(path: &str) {
    let digest = format!("sha256:{}", "5f".repeat(32));
    let payload = signer::payload("127.0.0.1:5000/app", &digest);
    let key = KeyPair::generate();
    let keyed = key.layer(&payload);
    let store = Sigstore::new().unwrap();
    let keyless = store.layer(&payload, SUBJECT, ISSUER, None).unwrap();
    let root: Value = serde_json::from_str(&store.trusted_root()).unwrap();
    let fixture = json!({
        "digest": digest,
        "key": {
            "pub_pem": key.public_pem(),
            "payload_b64": STANDARD.encode(&keyed.payload),
            "signature_b64": keyed.annotations[signer::SIGNATURE],
        },
        "keyless": {
            "payload_b64": STANDARD.encode(&keyless.payload),
            "signature_b64": keyless.annotations[signer::SIGNATURE],
            "cert_pem": keyless.annotations[signer::CERTIFICATE],
            "bundle": serde_json::from_str::<Value>(&keyless.annotations[signer::BUNDLE]).unwrap(),
            "ca_der_b64": root["certificateAuthorities"][0]["certChain"]["certificates"][0]["rawBytes"],
            "rekor_pub_der_b64": root["tlogs"][0]["publicKey"]["rawBytes"],
            "issuer_re": "https://token\\.actions\\.githubusercontent\\.com",
            "subject_re": "https://github\\.com/org/app/.*",
            "trusted_root": root,
        },
    });
    std::fs::write(path, serde_json::to_vec_pretty(&fixture).unwrap()).unwrap();
}

fn run(path: &str, kind: &str) {
    let f: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let digest = f["digest"].as_str().unwrap();
    let s = |v: &Value| v.as_str().unwrap().to_string();
    let (verifier, payload, annotations) = match kind {
        "key" => {
            let k = &f["key"];
            let keys = BTreeMap::from([("cosign.pub".to_string(), s(&k["pub_pem"]).into_bytes())]);
            (
                Verifier::with_keys("bench/keys", &keys).unwrap(),
                STANDARD.decode(s(&k["payload_b64"])).unwrap(),
                BTreeMap::from([(signer::SIGNATURE.to_string(), s(&k["signature_b64"]))]),
            )
        }
        "keyless" => {
            let k = &f["keyless"];
            let root = BTreeMap::from([(
                "trusted_root.json".to_string(),
                serde_json::to_vec(&k["trusted_root"]).unwrap(),
            )]);
            let identities = vec![(
                anchored(&s(&k["issuer_re"])).unwrap(),
                anchored(&s(&k["subject_re"])).unwrap(),
            )];
            (
                Verifier::keyless("bench/root", &root, identities).unwrap(),
                STANDARD.decode(s(&k["payload_b64"])).unwrap(),
                BTreeMap::from([
                    (signer::SIGNATURE.to_string(), s(&k["signature_b64"])),
                    (signer::CERTIFICATE.to_string(), s(&k["cert_pem"])),
                    (signer::BUNDLE.to_string(), k["bundle"].to_string()),
                ]),
            )
        }
        other => panic!("unknown kind {other}"),
    };
    let check = || verifier.check(black_box(&payload), black_box(&annotations), digest);
    if let Err(e) = check() {
        println!("0\terror: {e}");
        return;
    }
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(check().is_ok());
        }
        if t.elapsed().as_millis() > 40 {
            break;
        }
        iters *= 2;
    }
    let mut samples: Vec<f64> = (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(check().is_ok());
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    println!("{:.0}\tverified", samples[7]);
}
