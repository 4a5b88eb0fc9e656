//! Webhook receivers served by the shared image-reflector-controller (`--receiver-addr`) on the real API
//! server: the guide's Receiver manifest verbatim, every type with a valid and an invalid call (payloads from
//! each registry's documentation), unknown paths, methods, token rotation, a flood of calls coalesced into a few
//! scans, and a push followed by a webhook call becoming a commit.

use std::time::{Duration, Instant};

use hmac::Mac;
use serde_json::json;
use tagpilot_core::receiver::webhook_path;
use tagpilot_testinfra::{Flavour, Infra, unique_name};

use crate::automation::Setup;
use crate::kube_support::*;

/// `http://127.0.0.1:<port>` of the shared reflector's receiver server (from its log).
fn receiver_base() -> String {
    let c = crate::reflector::shared_controller();
    let t0 = Instant::now();
    loop {
        if let Some(line) = c
            .log_text()
            .lines()
            .find(|l| l.contains("serving webhook receivers"))
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            return format!("http://{}", v["receiver"].as_str().unwrap());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no receiver server in the log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn payload(kind: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/crates/tagpilot-core/tests/data/receivers/{kind}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(token: &str, body: &[u8]) -> String {
    let mut m = <M as hmac::digest::KeyInit>::new_from_slice(token.as_bytes()).unwrap();
    m.update(body);
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Request headers.
type Headers = Vec<(&'static str, String)>;

fn receiver_yaml(ns: &str, name: &str, kind: &str, secret: &str, repo: &str) -> String {
    format!(
        "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  type: {kind}\n  secretRef:\n    name: {secret}\n  resources:\n  - kind: ImageRepository\n    name: {repo}\n"
    )
}

async fn token_secret(client: &kube::Client, ns: &str, name: &str, token: &str) {
    apply_yaml(
        client,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ns}\nstringData:\n  token: {token}\n"
        ),
    )
    .await;
}

/// An ImageRepository `app` for the Receivers to name (a call naming a missing one answers 500, as Flux).
async fn app_repository(client: &kube::Client, ns: &str) {
    apply_yaml(
        client,
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: {ns}\n\
             spec:\n  image: 127.0.0.1:1/none/app\n  interval: 1h\n"
        ),
    )
    .await;
}

fn receivers(client: &kube::Client, ns: &str) -> kube::Api<kube::api::DynamicObject> {
    dynamic_api(
        client,
        ns,
        "notification.toolkit.fluxcd.io",
        "v1",
        "Receiver",
        "receivers",
    )
}

async fn wait_path(client: &kube::Client, ns: &str, name: &str, token: &str) -> String {
    let want = webhook_path(token, name, ns);
    let r = wait_for(
        &receivers(client, ns),
        name,
        Duration::from_secs(30),
        "receiver ready",
        |o| o.data["status"]["webhookPath"] == want.as_str(),
    )
    .await;
    assert_message_contains(&r, &format!("Receiver initialised with URL: {want}"));
    want
}

fn post(url: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let client = http_call::client();
    client.post(url, headers, body)
}

mod http_call {
    //! A small blocking HTTP client over the async one, for the tests' readability.
    pub struct Client(::reqwest::Client);

    pub fn client() -> Client {
        Client(::reqwest::Client::new())
    }

    impl Client {
        pub fn post(&self, url: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
            self.send(::reqwest::Method::POST, url, headers, body)
        }

        pub fn send(
            &self,
            method: ::reqwest::Method,
            url: &str,
            headers: &[(&str, String)],
            body: &[u8],
        ) -> (u16, String) {
            let mut req = self.0.request(method, url).body(body.to_vec());
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            let req = req.build().unwrap();
            let client = self.0.clone();
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(async move {
                        let r = client.execute(req).await.unwrap();
                        (r.status().as_u16(), r.text().await.unwrap())
                    })
            })
            .join()
            .unwrap()
        }
    }
}

#[tokio::test]
async fn the_guides_receiver_manifest_makes_the_repository_scan() {
    let _guide = FLUX_SYSTEM_GUIDE.lock().await;
    let base = receiver_base();
    let client = Infra::get().kube_client().await;
    let reg = Infra::get().registry(Flavour::Plain);
    let repo_path = format!("{}/stefanprodan/podinfo", unique_name("hook"));
    reg.push_tags(&repo_path, &["5.0.0"]).await.unwrap();
    namespace(&client, "flux-system", &[]).await;
    let guide = include_str!("manifests/flux-guide-v1beta1.yaml")
        .replace("ghcr.io/stefanprodan/podinfo", &reg.image(&repo_path));
    apply_yaml(&client, &guide).await;
    let token = unique_name("token");
    token_secret(&client, "flux-system", "webhook-token", &token).await;
    // The guide's Receiver, verbatim.
    apply_yaml(
        &client,
        "apiVersion: notification.toolkit.fluxcd.io/v1beta1\nkind: Receiver\nmetadata:\n  name: podinfo\n  namespace: flux-system\n\
         spec:\n  type: dockerhub\n  secretRef:\n    name: webhook-token\n  resources:\n    - kind: ImageRepository\n      name: podinfo\n",
    )
    .await;
    // A Receiver of an earlier run may exist with its token: have it read the new one.
    request_reconcile(&receivers(&client, "flux-system"), "podinfo").await;
    let path = wait_path(&client, "flux-system", "podinfo", &token).await;
    let repos = image_api(&client, "flux-system", "v1", "ImageRepository");
    wait_ready(&repos, "podinfo").await;
    reg.push_tags(&repo_path, &["5.0.1"]).await.unwrap();
    let (code, body) = post(&format!("{base}{path}"), &[], &payload("dockerhub"));
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(
            "Docker Hub push of svendowideit/testhook:latest: 1 ImageRepository scan(s) requested"
        ),
        "{body}"
    );
    wait_for(
        &repos,
        "podinfo",
        Duration::from_secs(10),
        "the scan after the call",
        |o| o.data["status"]["lastScanResult"]["tagCount"] == 2,
    )
    .await;
}

#[tokio::test]
async fn every_type_takes_a_valid_call_and_refuses_an_invalid_one() {
    let base = receiver_base();
    let client = Infra::get().kube_client().await;
    let ns = unique_name("hooks");
    namespace(&client, &ns, &[]).await;
    let token = unique_name("tok");
    token_secret(&client, &ns, "token", &token).await;
    app_repository(&client, &ns).await;
    // gcr Receivers also need the e-mail and audience the ID token must name.
    apply_yaml(
        &client,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gcr-token\n  namespace: {ns}\nstringData:\n  \
             token: {token}\n  email: push@p.iam.gserviceaccount.com\n  audience: https://hooks.example/gcr\n"
        ),
    )
    .await;
    let github = payload("github");
    let generic = b"{\"image\":\"app\"}".to_vec();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let google = format!(
        "Bearer {}.{}.c2ln",
        b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(json!({"iss": "https://accounts.google.com", "exp": now + 600, "email": "push@p.iam.gserviceaccount.com", "aud": "https://hooks.example/gcr"}).to_string())
    );
    let nexus = payload("nexus");
    // (type, body, good headers, bad headers, bad status)
    let cases: Vec<(&str, Vec<u8>, Headers, Headers, u16)> = vec![
        ("generic", generic.clone(), vec![], vec![], 0),
        (
            "generic-hmac",
            generic.clone(),
            vec![(
                "X-Signature",
                format!(
                    "sha256={}",
                    hmac_hex::<hmac::Hmac<sha2::Sha256>>(&token, &generic)
                ),
            )],
            vec![("X-Signature", "sha256=00".into())],
            401,
        ),
        (
            "github",
            github.clone(),
            vec![
                (
                    "X-Hub-Signature-256",
                    format!(
                        "sha256={}",
                        hmac_hex::<hmac::Hmac<sha2::Sha256>>(&token, &github)
                    ),
                ),
                ("X-GitHub-Event", "push".into()),
            ],
            vec![
                ("X-Hub-Signature-256", "sha256=00".into()),
                ("X-GitHub-Event", "push".into()),
            ],
            401,
        ),
        ("dockerhub", payload("dockerhub"), vec![], vec![], 400),
        (
            "harbor",
            payload("harbor"),
            vec![("Authorization", token.clone())],
            vec![("Authorization", "nope".into())],
            401,
        ),
        ("quay", payload("quay"), vec![], vec![], 400),
        (
            "nexus",
            nexus.clone(),
            vec![(
                "X-Nexus-Webhook-Signature",
                hmac_hex::<hmac::Hmac<sha1::Sha1>>(&token, &nexus),
            )],
            vec![("X-Nexus-Webhook-Signature", "deadbeef".into())],
            401,
        ),
        (
            "gcr",
            payload("gcr"),
            vec![("Authorization", google)],
            vec![("Authorization", "Bearer x.y.z".into())],
            401,
        ),
        ("acr", payload("acr"), vec![], vec![], 400),
    ];
    for (kind, ..) in &cases {
        let secret = if *kind == "gcr" { "gcr-token" } else { "token" };
        apply_yaml(&client, &receiver_yaml(&ns, kind, kind, secret, "app")).await;
    }
    for (kind, body, good, bad, bad_status) in &cases {
        let path = wait_path(&client, &ns, kind, &token).await;
        let url = format!("{base}{path}");
        let (code, text) = post(&url, good, body);
        assert_eq!(code, 200, "{kind}: {text}");
        if *bad_status == 0 {
            continue;
        }
        // The bad call: a wrong signature or token, or (no signature to break) a body of another sender.
        let bad_body: &[u8] = if bad.is_empty() {
            b"{\"hello\":1}"
        } else {
            body
        };
        let (code, text) = post(&url, bad, bad_body);
        assert_eq!(code, *bad_status, "{kind}: {text}");
        assert!(!text.contains(&token), "{kind}: the token in a response");
    }
    // Unknown paths, other methods.
    let (code, _) = post(&format!("{base}/hook/{}", "0".repeat(64)), &[], b"{}");
    assert_eq!(code, 404);
    let generic_path = webhook_path(&token, "generic", &ns);
    let (code, _) = http_call::client().send(
        ::reqwest::Method::GET,
        &format!("{base}{generic_path}"),
        &[],
        b"",
    );
    assert_eq!(code, 405);
    // Rejections are events on the Receiver, without the token.
    let rejected = |n: &String| n.contains("call rejected: Authorization header mismatch");
    let notes = event_notes(&client, &ns, |n| n.iter().any(rejected)).await;
    assert!(notes.iter().any(rejected), "{notes:?}");
    assert!(notes.iter().all(|n| !n.contains(&token)));
}

#[tokio::test]
async fn a_new_token_moves_the_url() {
    let base = receiver_base();
    let client = Infra::get().kube_client().await;
    let ns = unique_name("hook-rotate");
    namespace(&client, &ns, &[]).await;
    token_secret(&client, &ns, "token", "first-token").await;
    app_repository(&client, &ns).await;
    apply_yaml(&client, &receiver_yaml(&ns, "r", "generic", "token", "app")).await;
    let old = wait_path(&client, &ns, "r", "first-token").await;
    assert_eq!(post(&format!("{base}{old}"), &[], b"{}").0, 200);
    token_secret(&client, &ns, "token", "second-token").await;
    request_reconcile(&receivers(&client, &ns), "r").await;
    let new = wait_path(&client, &ns, "r", "second-token").await;
    assert_ne!(old, new);
    assert_eq!(
        post(&format!("{base}{old}"), &[], b"{}").0,
        404,
        "the old URL is gone"
    );
    assert_eq!(post(&format!("{base}{new}"), &[], b"{}").0, 200);
}

#[tokio::test]
async fn a_flood_of_calls_makes_a_few_scans() {
    let base = receiver_base();
    let s = Setup::with_app("hook-flood", &["1.0.0"], "1.0.x", "").await;
    token_secret(&s.client, &s.ns, "token", "flood").await;
    apply_yaml(
        &s.client,
        &receiver_yaml(&s.ns, "r", "generic", "token", "app"),
    )
    .await;
    let path = wait_path(&s.client, &s.ns, "r", "flood").await;
    wait_ready(&s.api("ImageRepository"), "app").await;
    let url = format!("{base}{path}");
    let http = ::reqwest::Client::new();
    let mut ok = 0;
    let t0 = Instant::now();
    for _ in 0..20 {
        let calls = (0..50).map(|_| http.post(&url).body("{}").send());
        for r in futures::future::join_all(calls).await {
            if r.is_ok_and(|r| r.status().as_u16() == 200) {
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 1000, "every call answered");
    let flood = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let log = crate::reflector::shared_controller().log_text();
    let scans = log
        .lines()
        .filter(|l| l.contains(&format!("\"namespace\":\"{}\"", s.ns)))
        .filter(|l| l.contains("\"name\":\"app\"") && l.contains("scanning: reconcile requested"))
        .count();
    // Requests: at most the first, one per half-second fold, and the last fold's after the flood (plus one for a
    // fold that straddles the measurement). A request can be seen by two reconciles of the repository before its
    // status records it (9 scans for at most 6 requests were seen once), hence twice that.
    let bound = 2 * ((flood.as_secs_f64() / 0.5).ceil() as usize + 3);
    assert!(
        (1..=bound).contains(&scans),
        "1,000 calls in {flood:?} made {scans} scans (at most {bound})"
    );
    eprintln!(
        "FLOOD 1000 calls in {:.1}s -> {scans} scans",
        flood.as_secs_f64()
    );
    // Still serving.
    assert_eq!(post(&url, &[], b"{}").0, 200);
}

/// The receiver address a controller logged.
async fn receiver_addr_of(c: &tagpilot_testinfra::ControllerProcess) -> String {
    assert!(
        c.wait_for_log("serving webhook receivers", Duration::from_secs(30))
            .await,
        "a receiver server"
    );
    let line = c
        .log_text()
        .lines()
        .find(|l| l.contains("serving webhook receivers"))
        .map(str::to_string)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    format!("http://{}", v["receiver"].as_str().unwrap())
}

/// With controllers of its own (not slowed by other tests' objects): a tag pushed, then a webhook call, until
/// the commit. Prints `LATENCY`; timings are reported, not asserted.
#[tokio::test]
async fn a_push_and_a_webhook_call_become_a_commit() {
    let id = unique_name("hook-e2e");
    let selector = format!("tagpilot.test/dedicated={id}");
    let meta = format!("  labels:\n    tagpilot.test/dedicated: {id}\n");
    let reflector = crate::reflector::start_controller(
        &Infra::get().kubeconfig_path(),
        &id,
        &[
            "--watch-label-selector",
            &selector,
            "--receiver-addr",
            "127.0.0.1:0",
        ],
    );
    let mut automation =
        crate::automation::start_controller(&id, &["--watch-label-selector", &selector]);
    let base = receiver_addr_of(&reflector).await;
    let s = Setup::with_app("hook-commit", &["1.0.0"], "1.0.x", &meta).await;
    token_secret(&s.client, &s.ns, "token", "push").await;
    let receiver = receiver_yaml(&s.ns, "r", "generic", "token", "app").replacen(
        "  namespace:",
        &format!("{}  namespace:", meta),
        1,
    );
    apply_yaml(&s.client, &receiver).await;
    let path = wait_path(&s.client, &s.ns, "r", "push").await;
    s.automation("auto", &meta, crate::automation::AUTHOR).await;
    wait_ready(&s.api("ImageUpdateAutomation"), "auto").await;
    let mut took = Vec::new();
    let mut head = s.head("main");
    for i in 1..=5 {
        s.reg
            .push_tags(&s.repo_path, &[format!("1.0.{i}")])
            .await
            .unwrap();
        let t0 = Instant::now();
        let (code, _) = post(&format!("{base}{path}"), &[], b"{}");
        assert_eq!(code, 200);
        let (commit, _) = s.next_commit(head).await;
        took.push(t0.elapsed());
        assert!(s.facts(commit).changes["app.yaml"][1].contains(&format!(":1.0.{i} #")));
        head = Some(commit);
    }
    took.sort();
    eprintln!(
        "LATENCY push + webhook -> commit over {} rounds: median {:.3}s (min {:.3}s, max {:.3}s)",
        took.len(),
        took[took.len() / 2].as_secs_f64(),
        took[0].as_secs_f64(),
        took[took.len() - 1].as_secs_f64()
    );
    automation.stop();
}

#[tokio::test]
async fn the_cli_creates_a_receiver_and_lists_it() {
    receiver_base();
    let client = Infra::get().kube_client().await;
    let ns = unique_name("hook-cli");
    namespace(&client, &ns, &[]).await;
    token_secret(&client, &ns, "token", "cli-token").await;
    let kc = Infra::get().kubeconfig_path();
    let tagpilot = |args: &[&str]| {
        let out = std::process::Command::new(tagpilot_testinfra::binary_path("tagpilot"))
            .args(args)
            .args(["-n", &ns, "--kubeconfig"])
            .arg(&kc)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, _, err) = tagpilot(&[
        "create",
        "receiver",
        "r",
        "--type",
        "generic",
        "--secret-ref",
        "token",
        "--resource",
        "ImageRepository/app",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let path = webhook_path("cli-token", "r", &ns);
    assert!(
        err.contains(&format!("✔ generated webhook URL {path}")),
        "{err}"
    );
    let (code, out, _) = tagpilot(&["get", "receivers"]);
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME\tSUSPENDED\tREADY\tMESSAGE"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("r   \tFalse    \tTrue \tReceiver initialised with URL: /hook/"),
        "{out}"
    );
}

/// Polls a call until it answers `want` (the controller's caches follow the API server within moments);
/// returns the last answer.
fn answers(url: &str, headers: &[(&str, String)], body: &[u8], want: u16) -> (u16, String) {
    let t0 = Instant::now();
    loop {
        let got = post(url, headers, body);
        if got.0 == want || t0.elapsed() > Duration::from_secs(30) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// notification-controller's `Test_handlePayload` cases (internal/server/receiver_handler_test.go) replayed on
/// the real API server: each status as Flux answers it.
#[tokio::test]
async fn notification_controllers_cases_are_answered_as_flux_answers_them() {
    let base = receiver_base();
    let client = Infra::get().kube_client().await;
    let ns = unique_name("hook-flux");
    namespace(&client, &ns, &[]).await;
    token_secret(&client, &ns, "token", "flux-token").await;
    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    for (name, labels) in [("dummy-resource", "app: x"), ("dummy-resource-2", "app: y")] {
        apply_yaml(
            &client,
            &format!(
                "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: {name}\n  \
                 namespace: {ns}\n  labels:\n    {labels}\nspec:\n  image: 127.0.0.1:1/none/{name}\n  interval: 1h\n"
            ),
        )
        .await;
    }
    let receiver = |name: &str, kind: &str, secret: &str, resources: &str| {
        format!(
            "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata:\n  name: {name}\n  \
             namespace: {ns}\nspec:\n  type: {kind}\n  secretRef:\n    name: {secret}\n  resources:\n{resources}"
        )
    };
    let named = |n: &str| format!("  - kind: ImageRepository\n    name: {n}\n");
    // "annotating resource by name" and "resource by name not found".
    apply_yaml(
        &client,
        &receiver("by-name", "generic", "token", &named("dummy-resource")),
    )
    .await;
    apply_yaml(
        &client,
        &receiver("not-found", "generic", "token", &named("does-not-exist")),
    )
    .await;
    // "annotating resources by label match" and "cannot annotate all resources if name is * and no labels".
    apply_yaml(
        &client,
        &receiver(
            "by-labels",
            "generic",
            "token",
            "  - kind: ImageRepository\n    name: \"*\"\n    matchLabels:\n      app: y\n",
        ),
    )
    .await;
    apply_yaml(
        &client,
        &receiver(
            "wildcard",
            "generic",
            "token",
            "  - kind: ImageRepository\n    name: \"*\"\n",
        ),
    )
    .await;

    let url = |name: &str| format!("{base}{}", webhook_path("flux-token", name, &ns));
    for r in ["by-name", "not-found", "by-labels", "wildcard"] {
        wait_path(&client, &ns, r, "flux-token").await;
    }
    let (code, text) = post(&url("by-name"), &[], b"{}");
    assert_eq!(code, 200, "{text}");
    let (code, text) = post(&url("not-found"), &[], b"{}");
    assert_eq!(code, 500, "{text}");
    assert!(
        text.contains(&format!("ImageRepository '{ns}/does-not-exist' not found")),
        "{text}"
    );
    let (code, text) = post(&url("wildcard"), &[], b"{}");
    assert_eq!(code, 500, "{text}");
    assert!(text.contains("a wildcard name needs matchLabels"), "{text}");
    assert!(
        text.contains("0 ImageRepository scan(s) requested"),
        "nothing annotated: {text}"
    );
    let (code, text) = post(&url("by-labels"), &[], b"{}");
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("1 ImageRepository scan(s) requested"),
        "{text}"
    );
    // By name and by label, each repository was asked once; nothing else.
    for name in ["dummy-resource", "dummy-resource-2"] {
        wait_for(&repos, name, Duration::from_secs(10), "requestedAt", |o| {
            o.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("reconcile.fluxcd.io/requestedAt"))
        })
        .await;
    }

    // "no receiver configured": 404.
    assert_eq!(
        post(&format!("{base}/hook/{}", "1".repeat(64)), &[], b"{}").0,
        404
    );

    // "suspended receiver ignored": 503, and again 200 after resume.
    let receivers_api = receivers(&client, &ns);
    let suspend = |on: bool| kube::api::Patch::Merge(json!({"spec": {"suspend": on}}));
    receivers_api
        .patch("by-name", &Default::default(), &suspend(true))
        .await
        .unwrap();
    let (code, text) = answers(&url("by-name"), &[], b"{}", 503);
    assert_eq!(code, 503, "{text}");
    receivers_api
        .patch("by-name", &Default::default(), &suspend(false))
        .await
        .unwrap();
    assert_eq!(answers(&url("by-name"), &[], b"{}", 200).0, 200);

    // "missing secret": the Secret deleted under a Ready Receiver closes its URL at once (400).
    token_secret(&client, &ns, "gone", "flux-token").await;
    apply_yaml(
        &client,
        &receiver(
            "missing-secret",
            "generic",
            "gone",
            &named("dummy-resource"),
        ),
    )
    .await;
    wait_path(&client, &ns, "missing-secret", "flux-token").await;
    assert_eq!(post(&url("missing-secret"), &[], b"{}").0, 200);
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), &ns);
    secrets.delete("gone", &Default::default()).await.unwrap();
    let (code, text) = post(&url("missing-secret"), &[], b"{}");
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains(&format!("secret '{ns}/gone' not found")),
        "{text}"
    );

    // "not ready receiver is ignored": its Secret loses the token; once the Receiver says so, 503.
    apply_yaml(
        &client,
        &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: gone\n  namespace: {ns}\nstringData:\n  other: x\n"),
    )
    .await;
    request_reconcile(&receivers_api, "missing-secret").await;
    wait_for(
        &receivers_api,
        "missing-secret",
        Duration::from_secs(30),
        "not ready",
        |o| {
            o.data["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "False")
            })
        },
    )
    .await;
    let (code, text) = answers(&url("missing-secret"), &[], b"{}", 503);
    assert_eq!(code, 503, "{text}");

    // Docker Hub's payload naming the repository by URL only is accepted.
    apply_yaml(
        &client,
        &receiver("hub", "dockerhub", "token", &named("dummy-resource")),
    )
    .await;
    wait_path(&client, &ns, "hub", "flux-token").await;
    let (code, text) = post(
        &url("hub"),
        &[],
        br#"{"push_data": {"tag": "latest"}, "repository": {"repo_url": "https://hub.docker.com/r/svendowideit/testhook"}}"#,
    );
    assert_eq!(code, 200, "{text}");

    // A gcr Receiver whose Secret lacks `email` (and `audience`) names the missing key.
    apply_yaml(
        &client,
        &receiver("gcr", "gcr", "token", &named("dummy-resource")),
    )
    .await;
    wait_path(&client, &ns, "gcr", "flux-token").await;
    let (code, text) = post(
        &url("gcr"),
        &[("Authorization", "Bearer a.b.c".into())],
        &payload("gcr"),
    );
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("the Secret has no 'email' key, which gcr receivers require"),
        "{text}"
    );
}

/// "no cross-namespace refs": a controller with --no-cross-namespace-refs answers 500 for a Receiver naming
/// another namespace's ImageRepository, and annotates nothing there.
#[tokio::test]
async fn a_cross_namespace_resource_refused_by_the_flag_answers_500() {
    let id = unique_name("hook-xns");
    let reflector = crate::reflector::start_controller(
        &Infra::get().kubeconfig_path(),
        &id,
        &[
            "--watch-label-selector",
            &format!("tagpilot.test/dedicated={id}"),
            "--receiver-addr",
            "127.0.0.1:0",
            "--no-cross-namespace-refs",
        ],
    );
    let base = receiver_addr_of(&reflector).await;
    let client = Infra::get().kube_client().await;
    let ns = unique_name("hook-xns");
    namespace(&client, &ns, &[]).await;
    token_secret(&client, &ns, "token", "xns-token").await;
    apply_yaml(
        &client,
        &format!(
            "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata:\n  name: r\n  namespace: {ns}\n  \
             labels:\n    tagpilot.test/dedicated: {id}\nspec:\n  type: generic\n  secretRef:\n    name: token\n  \
             resources:\n  - kind: ImageRepository\n    name: some-resource\n    namespace: another-namespace\n"
        ),
    )
    .await;
    let path = wait_path(&client, &ns, "r", "xns-token").await;
    let (code, text) = post(&format!("{base}{path}"), &[], b"{}");
    assert_eq!(code, 500, "{text}");
    assert!(
        text.contains("ImageRepository 'another-namespace/some-resource': cross-namespace references are disabled"),
        "{text}"
    );
}

/// A flood of rejected calls (a wrong signature, 300 times) and of accepted ones makes a few events, not one
/// per call.
#[tokio::test]
async fn a_flood_of_calls_makes_a_few_events() {
    let base = receiver_base();
    let client = Infra::get().kube_client().await;
    let ns = unique_name("hook-events");
    namespace(&client, &ns, &[]).await;
    token_secret(&client, &ns, "token", "events-token").await;
    app_repository(&client, &ns).await;
    apply_yaml(
        &client,
        &receiver_yaml(&ns, "r", "generic-hmac", "token", "app"),
    )
    .await;
    let url = format!(
        "{base}{}",
        wait_path(&client, &ns, "r", "events-token").await
    );
    let http = http_call::client();
    let body = b"{}";
    let t0 = Instant::now();
    for _ in 0..300 {
        assert_eq!(
            http.post(&url, &[("X-Signature", "sha256=00".into())], body)
                .0,
            401
        );
    }
    let good = format!(
        "sha256={}",
        hmac_hex::<hmac::Hmac<sha2::Sha256>>("events-token", body)
    );
    for _ in 0..50 {
        assert_eq!(
            http.post(&url, &[("X-Signature", good.clone())], body).0,
            200
        );
    }
    // One event of each kind per 10 s window of the flood (however slow the machine); the rest are logged.
    let most = 1 + t0.elapsed().as_secs() as usize / 10;
    let notes = event_notes(&client, &ns, |n| {
        n.iter().any(|x| x.contains("call rejected"))
            && n.iter().any(|x| x.contains("scan(s) requested"))
    })
    .await;
    let rejected = notes.iter().filter(|n| n.contains("call rejected")).count();
    let accepted = notes
        .iter()
        .filter(|n| n.contains("scan(s) requested"))
        .count();
    assert!(
        (1..=most).contains(&rejected),
        "{rejected} rejection events, at most {most}: {notes:?}"
    );
    assert!(
        (1..=most).contains(&accepted),
        "{accepted} acceptance events, at most {most}: {notes:?}"
    );
}
