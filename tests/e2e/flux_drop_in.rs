//! tagpilot's binaries in the place of Flux's: started with exactly the args and env of Flux's Deployments
//! (`--events-addr` pointing, as `flux install` sets it, at a notification-controller), plus the tuning flags
//! Flux's docs recommend for scale; every event reaches a loopback notification-controller stand-in that checks
//! each request against Flux's event schema (fluxcd/pkg apis/event/v1beta1) and answers as
//! notification-controller does (202; 429 for a duplicate, which must not be retried; a 503 is retried).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tagpilot_testinfra::{ControllerProcess, Infra, binary_path, unique_name};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::automation::{head, wait_head_change};
use crate::kube_support::*;

const DEDICATED: &str = "tagpilot.test/dedicated";
/// notification-controller's body limit.
const MAX_BODY: usize = 3 << 20;

/// Flux's Deployment args of both image controllers (fluxcd/flux2 manifests/bases), `--events-addr` first.
pub fn flux_args(events_addr: &str) -> Vec<String> {
    vec![
        format!("--events-addr={events_addr}"),
        "--watch-all-namespaces".into(),
        "--log-level=info".into(),
        "--log-encoding=json".into(),
        "--enable-leader-election".into(),
    ]
}

/// The scale tuning Flux's docs recommend (vertical scaling of the controllers).
const SCALE_FLAGS: [&str; 4] = [
    "--concurrent=20",
    "--kube-api-qps=500",
    "--kube-api-burst=1000",
    "--requeue-dependency=5s",
];

/// A request notification-controller's stand-in received: the event, and what was wrong with it.
#[derive(Clone, Debug)]
pub struct Received {
    pub event: Value,
    pub problems: Vec<String>,
}

/// A loopback stand-in of notification-controller's event server (`/` takes any path; >3 MiB is 413; bad JSON
/// 400; else 202), which answers 503 once to the first event of `retry_reason` and 429 to every event of
/// `duplicate_reason`.
pub struct EventServer {
    addr: std::net::SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl EventServer {
    pub async fn start(retry_reason: &'static str, duplicate_reason: &'static str) -> EventServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let r = received.clone();
        let refused_once = Arc::new(Mutex::new(false));
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let r = r.clone();
                let refused_once = refused_once.clone();
                tokio::spawn(async move {
                    let Some((head, body)) = read_request(&mut sock).await else {
                        return;
                    };
                    let (status, extra) = if body.len() > MAX_BODY {
                        ("413 Payload Too Large", "")
                    } else {
                        match serde_json::from_slice::<Value>(&body) {
                            Err(_) => ("400 Bad Request", ""),
                            Ok(event) => {
                                let problems = check_request(&head, &event);
                                let reason =
                                    event["reason"].as_str().unwrap_or_default().to_string();
                                r.lock().unwrap().push(Received { event, problems });
                                let mut once = refused_once.lock().unwrap();
                                if reason == retry_reason && !*once {
                                    *once = true;
                                    ("503 Service Unavailable", "Retry-After: 1\r\n")
                                } else if reason == duplicate_reason {
                                    ("429 Too Many Requests", "")
                                } else {
                                    ("202 Accepted", "")
                                }
                            }
                        }
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        EventServer { addr, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until an event about `kind`/`name` with `reason` arrived; returns it.
    pub async fn wait(&self, kind: &str, name: &str, reason: &str, timeout: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            if let Some(r) = self.received().into_iter().find(|r| {
                r.event["involvedObject"]["kind"] == kind
                    && r.event["involvedObject"]["name"] == name
                    && r.event["reason"] == reason
            }) {
                return r.event;
            }
            assert!(
                t0.elapsed() < timeout,
                "no {reason} event about {kind} {name} within {timeout:?}; received: {:#?}",
                self.received()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One HTTP/1.1 request: the head (request line and headers, lower-cased names) and the body (bounded).
async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 << 10 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len.min(MAX_BODY + 1) {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// What is wrong with a request against Flux's event schema and recorder (empty: nothing).
fn check_request(head: &str, e: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if !head.starts_with("POST / HTTP/1.1\r\n") {
        p.push(format!("request line: {:?}", head.lines().next()));
    }
    if !head
        .to_ascii_lowercase()
        .contains("\r\ncontent-type: application/json")
    {
        p.push("content-type is not application/json".into());
    }
    let Some(obj) = e.as_object() else {
        return vec!["body is not an object".into()];
    };
    let allowed = [
        "involvedObject",
        "severity",
        "timestamp",
        "message",
        "reason",
        "metadata",
        "reportingController",
        "reportingInstance",
    ];
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            p.push(format!("unknown field {k}"));
        }
    }
    let io = &e["involvedObject"];
    for k in [
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
    ] {
        if io[k].as_str().is_none_or(str::is_empty) {
            p.push(format!("involvedObject.{k} missing or empty"));
        }
    }
    if io["apiVersion"] != "image.toolkit.fluxcd.io/v1" {
        p.push(format!("involvedObject.apiVersion {}", io["apiVersion"]));
    }
    if !matches!(e["severity"].as_str(), Some("info" | "error")) {
        p.push(format!("severity {}", e["severity"]));
    }
    let ts = e["timestamp"].as_str().unwrap_or_default();
    // YYYY-MM-DDTHH:MM:SSZ
    let ts_ok = ts.len() == 20
        && ts.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !ts_ok {
        p.push(format!("timestamp {ts:?} is not RFC 3339 in seconds"));
    }
    match e["message"].as_str() {
        Some(m) if !m.is_empty() && m.len() <= 39_000 => {}
        _ => p.push("message missing, empty or over 39000 bytes".into()),
    }
    if e["reason"].as_str().is_none_or(str::is_empty) {
        p.push("reason missing".into());
    }
    if let Some(m) = e.get("metadata") {
        match m.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, v) in m {
                    if !v.is_string() {
                        p.push(format!("metadata.{k} is not a string"));
                    }
                }
            }
            _ => p.push("metadata present but empty or not an object (omitempty)".into()),
        }
    }
    if !matches!(
        e["reportingController"].as_str(),
        Some("image-reflector-controller" | "image-automation-controller")
    ) {
        p.push(format!("reportingController {}", e["reportingController"]));
    }
    if e["reportingInstance"].as_str().is_none_or(str::is_empty) {
        p.push("reportingInstance missing".into());
    }
    p
}

fn start(binary: &str, args: Vec<String>, ns: &str, dir: &std::path::Path) -> ControllerProcess {
    crds_installed();
    // Flux's Deployment env: RUNTIME_NAMESPACE from the pod's namespace, GOMEMLIMIT from the memory limit.
    ControllerProcess::start(
        &binary_path(binary),
        &Infra::get().kubeconfig_path(),
        &args,
        &[("RUNTIME_NAMESPACE", ns), ("GOMEMLIMIT", "1073741824")],
        &dir.join(format!("{}.log", unique_name(binary))),
    )
    .unwrap_or_else(|e| panic!("start {binary} with Flux's args: {e}"))
}

#[tokio::test]
async fn fluxs_deployment_args_start_both_and_events_reach_notification_controller() {
    let infra = Infra::get();
    let client = infra.kube_client().await;
    let nc = EventServer::start("Succeeded", "InvalidPolicy").await;
    let id = unique_name("dropin");
    let ns = unique_name("dropin");
    namespace(&client, &ns, &[]).await;
    let dir = infra.path("TAGPILOT_TESTINFRA").join(&id);
    std::fs::create_dir_all(&dir).unwrap();

    // Flux's args, the scale flags, and what this test needs beside them: its own objects only, and the
    // volume Flux mounts (/data, /tmp) as directories of the test.
    let own = format!("--watch-label-selector={DEDICATED}={id}");
    let mut reflector_args = flux_args(&nc.url());
    reflector_args.extend(SCALE_FLAGS.iter().map(|s| s.to_string()));
    reflector_args.push(own.clone());
    reflector_args.push(format!("--storage-path={}", dir.join("data").display()));
    let mut automation_args = flux_args(&nc.url());
    automation_args.extend(SCALE_FLAGS[..3].iter().map(|s| s.to_string()));
    automation_args.push(own.clone());
    automation_args.push(format!("--work-dir={}", dir.join("tmp").display()));
    let reflector = start("image-reflector-controller", reflector_args, &ns, &dir);
    let automation = start("image-automation-controller", automation_args, &ns, &dir);
    for c in [&reflector, &automation] {
        assert!(
            c.wait_for_log("acquired leadership", Duration::from_secs(30))
                .await,
            "{}",
            c.log_text()
        );
    }

    let (image, repo) = crate::automation::marked_app(&client, &id, &ns).await;
    let git = infra.git();
    let seed = head(&git, &repo, "main");
    let labels = format!("  labels:\n    {DEDICATED}: {id}\n");
    apply_yaml(
        &client,
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: app\n  namespace: {ns}\n{labels}\
             \x20 annotations:\n    event.toolkit.fluxcd.io/team: platform\n    unrelated.example.com/x: y\n\
             spec:\n  image: {image}\n  interval: 1h\n  insecure: true\n---\n\
             apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: {ns}\n{labels}\
             spec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: 1.0.x\n---\n\
             apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: broken\n  namespace: {ns}\n{labels}\
             spec:\n  imageRepositoryRef:\n    name: app\n  policy:\n    semver:\n      range: not-a-range\n---\n\
             apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: auto\n  namespace: {ns}\n{labels}\
             spec:\n  interval: 1h\n  sourceRef:\n    kind: GitRepository\n    name: source\n  git:\n    commit:\n      \
             author:\n        email: bot@example.com\n        name: bot\n    push:\n      branch: main\n  update:\n    \
             strategy: Setters\n"
        ),
    )
    .await;

    let long = Duration::from_secs(90);
    let (pushed, _) = wait_head_change(&git, &repo, "main", seed, long).await;
    let scanned = nc.wait("ImageRepository", "app", "Succeeded", long).await;
    let m = scanned["message"].as_str().unwrap();
    assert!(
        m.starts_with("successful scan: found 2 tags with checksum "),
        "{m}"
    );
    assert_eq!(scanned["severity"], "info");
    assert_eq!(scanned["reportingController"], "image-reflector-controller");
    assert_eq!(
        scanned["metadata"],
        serde_json::json!({"event.toolkit.fluxcd.io/team": "platform"}),
        "only the object's event.toolkit.fluxcd.io/ annotations travel"
    );
    let resolved = nc.wait("ImagePolicy", "app", "Succeeded", long).await;
    assert_eq!(
        resolved["message"],
        format!("Latest image tag for {image} resolved to 1.0.1")
    );
    assert!(resolved.get("metadata").is_none(), "omitempty: {resolved}");
    let failed = nc
        .wait("ImagePolicy", "broken", "InvalidPolicy", long)
        .await;
    assert_eq!(failed["severity"], "error");
    let push_event = nc
        .wait("ImageUpdateAutomation", "auto", "Succeeded", long)
        .await;
    let m = push_event["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!(
            "pushed commit '{}' to branch 'main'\n",
            &pushed.to_string()[..7]
        )),
        "{m}"
    );
    assert_eq!(
        push_event["reportingController"],
        "image-automation-controller"
    );

    // `flux reconcile image policy`: the annotation is answered in status.lastHandledReconcileAt.
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    let asked = request_reconcile(&policies, "app").await;
    wait_for(&policies, "app", long, "lastHandledReconcileAt", |o| {
        o.data["status"]["lastHandledReconcileAt"] == asked.as_str()
    })
    .await;

    // The first event was refused with 503 and delivered again; the 429 ("duplicate") was not retried.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let all = nc.received();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in &all {
        assert!(r.problems.is_empty(), "{:?} in {}", r.problems, r.event);
        *seen.entry(r.event.to_string()).or_default() += 1;
    }
    assert!(
        seen.values().any(|n| *n >= 2),
        "the event refused with 503 came again: {all:#?}"
    );
    let invalid: Vec<_> = all
        .iter()
        .filter(|r| r.event["reason"] == "InvalidPolicy")
        .collect();
    assert_eq!(invalid.len(), 1, "a 429 is not retried: {invalid:#?}");
    for c in [&reflector, &automation] {
        let log = c.log_text();
        assert!(!log.contains("unable to send an event"), "{log}");
    }
}

#[test]
fn unknown_feature_gates_are_refused_as_flux_refuses_them() {
    for (binary, gate) in [
        ("image-reflector-controller", "GitShallowClone"),
        ("image-automation-controller", "FluxStorage"),
        ("image-automation-controller", "gitforcepushbranch"),
    ] {
        let out = std::process::Command::new(binary_path(binary))
            .arg(format!("--feature-gates={gate}=true"))
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{binary} {gate}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("feature-gate '{gate}' not supported")),
            "{binary}: {err}"
        );
    }
    // Flux's internals-only flags are accepted and say so.
    let help = std::process::Command::new(binary_path("image-reflector-controller"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--storage-value-log-file-size",
        "--gc-interval",
        "--storage-compression-threshold",
    ] {
        let at = help
            .find(flag)
            .unwrap_or_else(|| panic!("{flag} in --help"));
        assert!(help[at..].contains("no effect"), "{flag}: {help}");
    }
}
