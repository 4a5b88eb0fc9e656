//! Entry points for the fuzz targets (`fuzz/`): each feeds outside input to one parser and checks what must
//! hold whatever the input. Not an API: hidden from the docs, used only by `cargo fuzz`.

use std::collections::{BTreeMap, HashSet};

use crate::registry::{self, DockerConfig};

/// A `tags/list` page, a `Link` header, a `WWW-Authenticate` header and an error body, as a registry sends
/// them: parsed without panicking; a page never passes the tag limit nor keeps a name that is not a tag; a
/// resolved Link stays on the page's origin; an error text is capped.
pub fn registry_answers(data: &[u8]) {
    let mut tags = HashSet::new();
    if registry::page_read(data, &mut tags, 64).is_ok() {
        assert!(tags.len() <= 64);
        assert!(tags.iter().all(|t| registry::is_valid_tag(t)));
    }
    let text = String::from_utf8_lossy(data);
    let _ = registry::parse_challenge_for_fuzzing(&text);
    let page = reqwest::Url::parse("https://reg.example:5000/v2/app/tags/list?n=10").unwrap();
    if let Ok(url) = registry::resolve_link_for_fuzzing(&page, &text) {
        assert_eq!(url.host_str(), Some("reg.example"), "{text:?} -> {url}");
        assert_eq!(url.port_or_known_default(), Some(5000));
        assert_eq!(url.scheme(), "https");
    }
    let message = crate::sanitize::message(&registry::error_text(
        reqwest::StatusCode::BAD_REQUEST,
        data,
    ));
    assert!(message.len() <= crate::sanitize::MAX_MESSAGE + 40);
}

/// A webhook call to a Receiver of each type: verified without panicking, and a rejection never names the
/// token. The first byte picks the type, the next up to 255 bytes are headers (`name: value` lines).
pub fn receiver_call(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let kind = crate::receiver::TYPES[pick as usize % crate::receiver::TYPES.len()];
    let split = rest
        .first()
        .map_or(0, |&n| n as usize)
        .min(rest.len().saturating_sub(1));
    let (head, body) = rest.get(1..).unwrap_or_default().split_at(split);
    let headers: Vec<(String, String)> = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let secret = crate::receiver::ReceiverSecret {
        token: "fuzz-s3cret-token".into(),
        email: Some("push@example.iam.gserviceaccount.com".into()),
        audience: Some("https://hooks.example".into()),
    };
    if let crate::receiver::Verdict::Reject(_, why) =
        crate::receiver::verify(kind, &secret, &["push".into()], &headers, body)
    {
        assert!(!why.contains("fuzz-s3cret-token"), "{kind}: {why}");
    }
}

/// A `.dockerconfigjson` payload and cloud token answers: parsed without panicking, and no error quotes a
/// secret value.
pub fn credentials(data: &[u8]) {
    match DockerConfig::from_json(data) {
        Ok(config) => {
            for host in ["reg.example", "index.docker.io", "127.0.0.1:5000"] {
                if let Err(e) = config.credentials_for(host) {
                    let _ = e.to_string();
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let value: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    let _ = crate::cloud::aws::ecr_credentials(&value, 1.7e9);
    let _ = crate::cloud::gcp::token_of(&value, "access_token", "fuzz");
    let _ = crate::cloud::aws::sts_credentials(&String::from_utf8_lossy(data));
    let mut secret = BTreeMap::new();
    secret.insert("token".to_string(), data.to_vec());
    let _ = crate::receiver::ReceiverSecret::from_data(&secret);
}

/// Signature material from a registry: the first byte picks what the rest is (a Sigstore bundle, a signature
/// layer as JSON `{"payload": ..., "annotations": {...}}`, a trusted root), checked by a keyless verifier (the
/// public-good trusted root) and a key verifier without panicking; every verdict is a message.
pub fn cosign(data: &[u8]) {
    use crate::cosign::{TrustedRoot, Verifier};
    const ROOT: &[u8] = include_bytes!("../tests/data/cosign/sigstore-rs-prod-trusted_root.json");
    const KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu\nOSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==\n-----END PUBLIC KEY-----";
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let any = || regex::Regex::new(".*").expect("a valid pattern");
    let root = BTreeMap::from([("trusted_root.json".to_string(), ROOT.to_vec())]);
    let keyless = Verifier::keyless("fuzz", &root, vec![(any(), any())])
        .expect("the public-good root parses");
    let keys = Verifier::with_keys(
        "fuzz",
        &BTreeMap::from([("cosign.pub".to_string(), KEY.as_bytes().to_vec())]),
    )
    .expect("the key parses");
    let digest = format!("sha256:{}", "ab".repeat(32));
    match kind % 3 {
        0 => {
            for v in [&keyless, &keys] {
                let _ = v.check_bundle(rest, &digest);
            }
        }
        1 => {
            #[derive(serde::Deserialize)]
            struct Layer {
                payload: String,
                #[serde(default)]
                annotations: BTreeMap<String, String>,
            }
            if let Ok(l) = serde_json::from_slice::<Layer>(rest) {
                for v in [&keyless, &keys] {
                    let _ = v.check(l.payload.as_bytes(), &l.annotations, &digest);
                }
            }
        }
        _ => {
            let _ = TrustedRoot::parse(rest);
        }
    }
}

/// A commit template with the first byte picking a data model: parsed and executed without panicking and
/// within the budgets (output at most [`crate::template::MAX_OUTPUT`]).
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = crate::template::Template::parse("fuzz", text) else {
        return;
    };
    let value = crate::template::Value::from_json(&serde_json::json!({
        "AutomationObject": {"Name": "a", "Namespace": "ns"},
        "Updated": {"Images": ["reg/app:1.0.0"], "Files": {"a.yaml": {"ns:p": "reg/app:1.0.0"}}},
        "Values": {"env": "prod", "n": 3, "list": [1, 2, 3]},
    }));
    if let Ok(out) = t.execute(&value) {
        assert!(out.len() <= crate::template::MAX_OUTPUT);
    }
}
