use super::*;

const TOKEN: &str = "s3cr3t-token";

fn payload(kind: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/receivers/{kind}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sign(algo: &str, body: &[u8]) -> String {
    format!(
        "{algo}={}",
        crate::hex::encode(&hmac_hex(algo, TOKEN.as_bytes(), body).unwrap())
    )
}

const EMAIL: &str = "push@my-project.iam.gserviceaccount.com";
const AUDIENCE: &str = "https://tagpilot.example/hook";

fn secret() -> ReceiverSecret {
    ReceiverSecret {
        token: TOKEN.into(),
        email: Some(EMAIL.into()),
        audience: Some(AUDIENCE.into()),
    }
}

fn check(kind: &str, h: &[(&str, &str)], body: &[u8]) -> Verdict {
    verify(kind, &secret(), &[], &headers(h), body)
}

fn accepted(v: &Verdict) -> bool {
    matches!(v, Verdict::Accept(_))
}

#[test]
fn webhook_path_as_flux() {
    assert_eq!(
        webhook_path("token", "podinfo", "flux-system"),
        "/hook/2a7c779dab6401645f8b6db1f139b3ffce809ce3501face580e281578450c999"
    );
}

#[test]
fn generic_hmac_all_algorithms() {
    let body = b"{\"image\":\"app:1.0.1\"}";
    for algo in ["sha1", "sha256", "sha512"] {
        assert!(
            accepted(&check(
                "generic-hmac",
                &[("X-Signature", &sign(algo, body))],
                body
            )),
            "{algo}"
        );
    }
    assert_eq!(
        check(
            "generic-hmac",
            &[("X-Signature", &sign("sha256", b"other"))],
            body
        ),
        Verdict::Reject(401, "X-Signature: signature mismatch".into())
    );
    assert_eq!(
        check("generic-hmac", &[], body),
        Verdict::Reject(401, "missing X-Signature header".into())
    );
    assert!(matches!(
        check("generic-hmac", &[("X-Signature", "md5=00")], body),
        Verdict::Reject(401, _)
    ));
}

#[test]
fn github_signature_event_filter_and_ping() {
    let body = payload("github");
    let sig = sign("sha256", &body);
    assert!(accepted(&check(
        "github",
        &[("X-Hub-Signature-256", &sig), ("X-GitHub-Event", "push")],
        &body
    )));
    assert!(accepted(&check(
        "github",
        &[
            ("X-Hub-Signature", &sign("sha1", &body)),
            ("X-GitHub-Event", "push")
        ],
        &body
    )));
    assert!(matches!(
        check(
            "github",
            &[("X-Hub-Signature-256", &sig), ("X-GitHub-Event", "ping")],
            &body
        ),
        Verdict::Ignore(_)
    ));
    let only_packages = vec!["package".to_string()];
    assert!(matches!(
        verify(
            "github",
            &secret(),
            &only_packages,
            &headers(&[("X-Hub-Signature-256", &sig), ("X-GitHub-Event", "push")]),
            &body
        ),
        Verdict::Ignore(_)
    ));
    assert!(matches!(
        check(
            "github",
            &[
                ("X-Hub-Signature-256", "sha256=00"),
                ("X-GitHub-Event", "push")
            ],
            &body
        ),
        Verdict::Reject(401, _)
    ));
}

#[test]
fn registry_payloads() {
    assert_eq!(
        check("dockerhub", &[], &payload("dockerhub")),
        Verdict::Accept("Docker Hub push of svendowideit/testhook:latest".into())
    );
    assert!(matches!(
        check("dockerhub", &[], b"{}"),
        Verdict::Reject(400, _)
    ));
    assert!(matches!(
        check("dockerhub", &[], b"not json"),
        Verdict::Reject(400, _)
    ));

    assert!(accepted(&check(
        "harbor",
        &[("Authorization", TOKEN)],
        &payload("harbor")
    )));
    assert_eq!(
        check("harbor", &[("Authorization", "wrong")], &payload("harbor")),
        Verdict::Reject(401, "Authorization header mismatch".into())
    );

    assert_eq!(
        check("quay", &[], &payload("quay")),
        Verdict::Accept("Quay push of quay.io/mynamespace/repository:latest".into())
    );
    assert!(matches!(
        check("quay", &[], b"{\"docker_url\": 1}"),
        Verdict::Reject(400, _)
    ));

    let nexus = payload("nexus");
    let sig = sign("sha1", &nexus);
    let hexsig = sig.trim_start_matches("sha1=");
    assert_eq!(
        check("nexus", &[("X-Nexus-Webhook-Signature", hexsig)], &nexus),
        Verdict::Accept("Nexus CREATED".into())
    );
    assert!(matches!(
        check(
            "nexus",
            &[("X-Nexus-Webhook-Signature", "deadbeef")],
            &nexus
        ),
        Verdict::Reject(401, _)
    ));

    assert_eq!(
        check("acr", &[], &payload("acr")),
        Verdict::Accept("ACR push of hello-world:v1".into())
    );
    let delete = String::from_utf8(payload("acr"))
        .unwrap()
        .replace("\"push\"", "\"delete\"");
    assert!(matches!(
        check("acr", &[], delete.as_bytes()),
        Verdict::Ignore(_)
    ));
}

fn google_token(iss: &str, exp_from_now: i64, email: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let header = b64.encode(br#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
    let claims = b64.encode(
        serde_json::json!({"iss": iss, "exp": now + exp_from_now, "email": email, "email_verified": true, "aud": AUDIENCE})
            .to_string(),
    );
    format!("Bearer {header}.{claims}.c2lnbmF0dXJl")
}

#[test]
fn gcr_pubsub_push() {
    let body = payload("gcr");
    let good = google_token("https://accounts.google.com", 600, EMAIL);
    assert_eq!(
        check("gcr", &[("Authorization", &good)], &body),
        Verdict::Accept("GCR insert of gcr.io/my-project/hello-world:1.1".into())
    );
    let expired = google_token("https://accounts.google.com", -10, "a@b");
    assert!(matches!(
        check("gcr", &[("Authorization", &expired)], &body),
        Verdict::Reject(401, _)
    ));
    let foreign = google_token("https://evil.example.com", 600, "a@b");
    assert!(matches!(
        check("gcr", &[("Authorization", &foreign)], &body),
        Verdict::Reject(401, _)
    ));
    assert!(matches!(check("gcr", &[], &body), Verdict::Reject(401, _)));
    let other = google_token(
        "https://accounts.google.com",
        600,
        "other@x.iam.gserviceaccount.com",
    );
    assert_eq!(
        check("gcr", &[("Authorization", &other)], &body),
        Verdict::Reject(
            401,
            "Authorization: the token is not for the Secret's e-mail".into()
        )
    );
    // A Secret without the e-mail or audience is named, whatever the call (notification-controller: 400).
    for key in ["email", "audience"] {
        let mut s = secret();
        if key == "email" {
            s.email = None;
        } else {
            s.audience = None;
        }
        assert_eq!(
            verify("gcr", &s, &[], &headers(&[("Authorization", &good)]), &body),
            Verdict::Reject(
                400,
                format!("the Secret has no '{key}' key, which gcr receivers require")
            )
        );
    }
}

#[test]
fn receiver_secrets_name_a_missing_token_without_values() {
    let mut data = std::collections::BTreeMap::new();
    data.insert("email".to_string(), b"8675309123".to_vec());
    let e = ReceiverSecret::from_data(&data).unwrap_err();
    assert_eq!(e, "required key 'token' is missing or empty");
    data.insert("token".to_string(), b" t0k \n".to_vec());
    assert_eq!(ReceiverSecret::from_data(&data).unwrap().token, "t0k");
}

#[test]
fn dockerhub_payloads_name_the_repository_by_name_or_url() {
    let body = br#"{"push_data": {"tag": "1.2.3"}, "repository": {"repo_url": "https://hub.docker.com/r/acme/app"}}"#;
    assert_eq!(
        check("dockerhub", &[], body),
        Verdict::Accept("Docker Hub push of https://hub.docker.com/r/acme/app:1.2.3".into())
    );
}

#[test]
fn rejections_never_name_the_token() {
    for kind in TYPES {
        if let Verdict::Reject(_, reason) = check(kind, &[("Authorization", "x")], b"{}") {
            assert!(!reason.contains(TOKEN), "{kind}: {reason}");
        }
    }
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
}
