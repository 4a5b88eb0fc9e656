//! image-reflector-controller on the real kube-apiserver and registries: Flux's guide manifests (v1beta1) and
//! v1 manifests, new tags after a reconcile request, private registries, cross-namespace ACLs, suspend, bad
//! input, a controller restart with an empty tag store and an API server restart.
//!
//! One controller process is shared by the tests; it ignores objects labelled `tagpilot.test/dedicated`, which
//! belong to the controllers that single tests start (and stop) themselves.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use tagpilot_testinfra::{ControllerProcess, Flavour, Infra, binary_path, unique_name};

use crate::kube_support::*;

const DEDICATED: &str = "tagpilot.test/dedicated";

fn work_dir(label: &str) -> PathBuf {
    let dir = Infra::get()
        .path("TAGPILOT_TESTINFRA")
        .join(format!("reflector-{}-{label}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("controller work dir");
    dir
}

/// Starts a controller with its own (empty) tag store under `label`.
pub fn start_controller(
    kubeconfig: &std::path::Path,
    label: &str,
    args: &[&str],
) -> ControllerProcess {
    start_controller_env(kubeconfig, label, args, &[])
}

/// As [`start_controller`], with environment variables (`RUNTIME_NAMESPACE`).
fn start_controller_env(
    kubeconfig: &std::path::Path,
    label: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> ControllerProcess {
    // Whichever test starts a controller first: the CRDs exist on the shared API server before anything
    // is applied there.
    crds_installed();
    let dir = work_dir(label);
    let storage = dir.join(format!("data-{}", unique_name("s")));
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["--storage-path".into(), storage.display().to_string()]);
    all.extend(["--log-level".into(), "debug".into()]);
    ControllerProcess::start(
        &binary_path("image-reflector-controller"),
        kubeconfig,
        &all,
        envs,
        &dir.join(format!("{}.log", unique_name("controller"))),
    )
    .expect("start image-reflector-controller")
}

/// The controller shared by the tests (objects without the `tagpilot.test/dedicated` label).
pub fn shared_controller() -> &'static ControllerProcess {
    static SHARED: OnceLock<ControllerProcess> = OnceLock::new();
    SHARED.get_or_init(|| {
        crds_installed();
        start_controller(
            &Infra::get().kubeconfig_path(),
            "shared",
            &[
                "--watch-label-selector",
                &format!("!{DEDICATED}"),
                "--receiver-addr",
                "127.0.0.1:0",
            ],
        )
    })
}

async fn client() -> kube::Client {
    shared_controller();
    Infra::get().kube_client().await
}

fn repo_yaml(ns: &str, name: &str, image: &str, extra: &str) -> String {
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  image: {image}\n  interval: 1h\n{extra}"
    )
}

fn policy_yaml(ns: &str, name: &str, repo: &str, policy: &str) -> String {
    format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  imageRepositoryRef:\n    name: {repo}\n  policy:\n{policy}"
    )
}

fn str_at<'a>(obj: &'a DynamicObject, path: &[&str]) -> &'a str {
    let mut v = &obj.data;
    for p in path {
        v = &v[*p];
    }
    v.as_str().unwrap_or_default()
}

fn latest_tag(obj: &DynamicObject) -> &str {
    str_at(obj, &["status", "latestRef", "tag"])
}

async fn push(flavour: Flavour, repo: &str, tags: &[&str]) {
    Infra::get()
        .registry(flavour)
        .push_tags(repo, tags)
        .await
        .expect("push tags");
}

#[tokio::test]
async fn flux_guide_v1beta1_manifests_resolve_the_newest_patch_in_every_version() {
    let _guide = FLUX_SYSTEM_GUIDE.lock().await;
    let client = client().await;
    let reg = Infra::get().registry(Flavour::Plain);
    push(
        Flavour::Plain,
        "stefanprodan/podinfo",
        &[
            "5.0.0",
            "5.0.1",
            "5.0.3",
            "5.0.2",
            "5.1.0",
            "6.0.0",
            "sha256-abc.sig",
        ],
    )
    .await;
    namespace(&client, "flux-system", &[]).await;
    let guide = include_str!("manifests/flux-guide-v1beta1.yaml")
        .replace("ghcr.io", reg.image("").trim_end_matches('/'));
    // A fresh start: objects of an earlier run would already be resolved.
    for kind in ["ImagePolicy", "ImageRepository"] {
        let api = image_api(&client, "flux-system", "v1", kind);
        let _ = api.delete("podinfo", &DeleteParams::default()).await;
        wait_gone(&api, "podinfo").await;
    }
    apply_yaml(&client, &guide).await;

    let image = reg.image("stefanprodan/podinfo");
    let v1beta1 = image_api(&client, "flux-system", "v1beta1", "ImagePolicy");
    let p = wait_ready(&v1beta1, "podinfo").await;
    assert_eq!(
        str_at(&p, &["status", "latestImage"]),
        format!("{image}:5.0.3")
    );
    let (_, reason, message) = ready(&p).unwrap();
    assert_eq!(reason, "Succeeded");
    assert_eq!(
        message,
        format!("Latest image tag for {image} resolved to 5.0.3")
    );

    // The same object read as v1 and v1beta2: both status shapes are there.
    let p1 = image_api(&client, "flux-system", "v1", "ImagePolicy")
        .get("podinfo")
        .await
        .unwrap();
    assert_eq!(
        p1.types.as_ref().unwrap().api_version,
        "image.toolkit.fluxcd.io/v1"
    );
    assert_eq!(latest_tag(&p1), "5.0.3");
    assert_eq!(str_at(&p1, &["status", "latestRef", "name"]), image);
    assert_eq!(str_at(&p1, &["spec", "policy", "semver", "range"]), "5.0.x");
    let p2 = image_api(&client, "flux-system", "v1beta2", "ImagePolicy")
        .get("podinfo")
        .await
        .unwrap();
    assert_eq!(latest_tag(&p2), "5.0.3");
    assert_eq!(
        str_at(&p2, &["status", "latestImage"]),
        format!("{image}:5.0.3")
    );

    let r = image_api(&client, "flux-system", "v1beta2", "ImageRepository")
        .get("podinfo")
        .await
        .unwrap();
    let scan = &r.data["status"]["lastScanResult"];
    assert_eq!(
        scan["tagCount"], 6,
        "the .sig tag is excluded by default: {scan}"
    );
    assert_eq!(scan["latestTags"][0], "6.0.0");
    assert_eq!(str_at(&r, &["status", "canonicalImageName"]), image);
    assert_eq!(
        r.data["spec"]["exclusionList"][0], "^.*\\.sig$",
        "defaulted by the schema"
    );
    let (status, _, message) = ready(&r).unwrap();
    assert_eq!(status, "True");
    assert!(
        message.starts_with("successful scan: found 6 tags"),
        "{message}"
    );

    // What `kubectl get imagerepositories` prints (the server's Table).
    let (columns, table) = get_table(
        &client,
        "/apis/image.toolkit.fluxcd.io/v1/namespaces/flux-system/imagerepositories",
    )
    .await;
    assert_eq!(
        columns,
        [
            "Name",
            "Image",
            "Tags",
            "Ready",
            "Status",
            "Last scan",
            "Age"
        ]
    );
    let row = table["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["cells"][0] == "podinfo")
        .expect("podinfo row");
    assert_eq!(row["cells"][1], image.as_str());
    // Flux's column types: Tags is a string column (the count printed).
    assert_eq!(row["cells"][2], "6");
    assert_eq!(row["cells"][3], "True");
    let (columns, _) = get_table(
        &client,
        "/apis/image.toolkit.fluxcd.io/v1beta1/namespaces/flux-system/imagepolicies",
    )
    .await;
    assert_eq!(columns, ["Name", "LatestImage", "Ready", "Status", "Age"]);
}

/// A list as the server's Table (what `kubectl get` prints): the column names and the table.
async fn get_table(client: &kube::Client, path: &str) -> (Vec<String>, serde_json::Value) {
    let req = http::Request::get(path)
        .header("Accept", "application/json;as=Table;g=meta.k8s.io;v=v1")
        .body(Vec::new())
        .unwrap();
    let text = client.request_text(req).await.expect("GET as Table");
    let table: serde_json::Value = serde_json::from_str(&text).expect("Table JSON");
    let columns = table["columnDefinitions"]
        .as_array()
        .expect("columnDefinitions")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    (columns, table)
}

async fn wait_gone(api: &Api<DynamicObject>, name: &str) {
    for _ in 0..300 {
        if api.get_opt(name).await.expect("get").is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} was not deleted within 30 s");
}

#[tokio::test]
async fn a_new_tag_is_resolved_after_a_reconcile_request_with_events_and_metrics() {
    let client = client().await;
    let ns = unique_name("reflector-v1");
    namespace(&client, &ns, &[]).await;
    let repo = format!("e2e/{}", unique_name("app"));
    push(Flavour::Plain, &repo, &["5.0.0", "5.0.1", "4.9.9"]).await;
    let image = Infra::get().registry(Flavour::Plain).image(&repo);
    apply_yaml(&client, &repo_yaml(&ns, "app", &image, "")).await;
    apply_yaml(
        &client,
        &policy_yaml(&ns, "app", "app", "    semver:\n      range: 5.0.x\n"),
    )
    .await;
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    let p = wait_ready(&policies, "app").await;
    assert_eq!(latest_tag(&p), "5.0.1");

    push(Flavour::Plain, &repo, &["5.0.2", "5.1.0"]).await;
    let requested = request_reconcile(&repos, "app").await;
    let p = wait_for(
        &policies,
        "app",
        Duration::from_secs(60),
        "5.0.2 resolved",
        |o| latest_tag(o) == "5.0.2",
    )
    .await;
    assert_eq!(
        str_at(&p, &["status", "observedPreviousRef", "tag"]),
        "5.0.1"
    );
    let (_, _, message) = ready(&p).unwrap();
    assert!(
        message.ends_with(&format!("resolved to 5.0.2 (previously {image}:5.0.1)")),
        "{message}"
    );
    let r = repos.get("app").await.unwrap();
    assert_eq!(str_at(&r, &["status", "lastHandledReconcileAt"]), requested);
    assert_eq!(r.data["status"]["lastScanResult"]["tagCount"], 5);

    // Events for the new scan result and the new latest image, with Flux's messages.
    let found = event_notes(&client, &ns, |n| {
        n.iter().any(|n| n.contains("resolved to 5.0.2"))
            && n.iter()
                .any(|n| n.starts_with("successful scan: found 5 tags with checksum "))
    })
    .await;
    assert!(
        found.iter().any(|n| n.contains("resolved to 5.0.2")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|n| n.starts_with("successful scan: found 5 tags with checksum ")),
        "{found:?}"
    );

    let c = shared_controller();
    let (code, body) = c.http_get(c.metrics_addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    let want = format!(
        "gotk_reconcile_duration_seconds_count{{kind=\"ImagePolicy\",name=\"app\",namespace=\"{ns}\"}}"
    );
    assert!(body.contains(&want), "{want} in metrics");
    assert!(body.contains("tagpilot_registry_scans_total{result=\"success\"}"));
    assert_eq!(c.http_get(c.health_addr, "/healthz").unwrap().0, 200);
    assert_eq!(c.http_get(c.health_addr, "/readyz").unwrap().0, 200);
    let log = c.log_text();
    let line = log
        .lines()
        .find(|l| l.contains(&ns) && l.contains("resolved to 5.0.2"))
        .expect("a log line");
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    for field in ["controller", "namespace", "name", "reconcileID"] {
        assert!(v[field].is_string(), "{field} in {line}");
    }
}

#[tokio::test]
async fn digest_reflection_records_the_digest_of_the_latest_tag() {
    let client = client().await;
    let ns = unique_name("reflector-digest");
    namespace(&client, &ns, &[]).await;
    let reg = Infra::get().registry(Flavour::Plain);
    let repo = format!("e2e/{}", unique_name("app"));
    let digests = reg.push_tags(&repo, &["1.0.0", "1.1.0"]).await.unwrap();
    let image = reg.image(&repo);
    apply_yaml(&client, &repo_yaml(&ns, "app", &image, "")).await;
    let semver = "    semver:\n      range: '>=1.0.0'\n";
    for (name, extra) in [
        ("never", ""),
        ("if-not-present", "  digestReflectionPolicy: IfNotPresent\n"),
        (
            "always",
            "  digestReflectionPolicy: Always\n  interval: 1m\n",
        ),
    ] {
        apply_yaml(&client, &(policy_yaml(&ns, name, "app", semver) + extra)).await;
    }
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    for name in ["if-not-present", "always"] {
        let p = wait_ready(&policies, name).await;
        assert_eq!(latest_tag(&p), "1.1.0");
        assert_eq!(
            str_at(&p, &["status", "latestRef", "digest"]),
            digests[1],
            "{name}"
        );
        assert_eq!(
            str_at(&p, &["status", "latestImage"]),
            format!("{image}:1.1.0@{}", digests[1])
        );
        let message = ready(&p).unwrap().2;
        assert!(
            message.ends_with(&format!("resolved to 1.1.0 with digest {}", digests[1])),
            "{message}"
        );
    }
    let p = wait_ready(&policies, "never").await;
    assert!(p.data["status"]["latestRef"]["digest"].is_null());
    // Always without an interval is refused by the controller, naming the field.
    apply_yaml(
        &client,
        &(policy_yaml(&ns, "no-interval", "app", semver) + "  digestReflectionPolicy: Always\n"),
    )
    .await;
    let bad = wait_not_ready(&policies, "no-interval", "InvalidPolicy").await;
    let msg = ready_message(&bad);
    assert!(msg.starts_with("spec.interval"), "{msg}");
}

fn dockerconfig(registry: &str, user: &str, password: &str) -> Secret {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let cfg = json!({"auths": {registry: {"auth": auth}}}).to_string();
    serde_json::from_value(json!({
        "metadata": {"name": "x"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": cfg}
    }))
    .unwrap()
}

async fn create_secret(client: &kube::Client, ns: &str, name: &str, mut secret: Secret) {
    secret.metadata.name = Some(name.into());
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
}

#[tokio::test]
async fn the_default_service_account_serves_repositories_that_name_none() {
    let client = client().await;
    let infra = Infra::get();
    let ns = unique_name("reflector-default-sa");
    namespace(&client, &ns, &[]).await;
    let reg = infra.registry(Flavour::Basic);
    let repo = format!("e2e/{}", unique_name("private"));
    push(Flavour::Basic, &repo, &["3.0.0"]).await;
    let host = reg.image("").trim_end_matches('/').to_string();
    let creds = dockerconfig(
        &host,
        infra.var("REGISTRY_USERNAME"),
        infra.var("REGISTRY_PASSWORD"),
    );
    create_secret(&client, &ns, "creds", creds).await;
    let ca = std::fs::read_to_string(infra.path("REGISTRY_CA_FILE")).unwrap();
    let ca_secret = serde_json::from_value(json!({"stringData": {"ca.crt": ca}})).unwrap();
    create_secret(&client, &ns, "ca", ca_secret).await;
    let sa: k8s_openapi::api::core::v1::ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "image-puller"}, "imagePullSecrets": [{"name": "creds"}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let id = unique_name("default-sa");
    let _controller = start_controller(
        &infra.kubeconfig_path(),
        &id,
        &[
            "--watch-label-selector",
            &format!("{DEDICATED}={id}"),
            "--default-service-account",
            "image-puller",
            "--feature-gates=ObjectLevelWorkloadIdentity=true",
        ],
    );
    let yaml = repo_yaml(
        &ns,
        "app",
        &reg.image(&repo),
        "  certSecretRef:\n    name: ca\n",
    )
    .replacen(
        &format!("  namespace: {ns}\n"),
        &format!("  namespace: {ns}\n  labels:\n    {DEDICATED}: {id}\n"),
        1,
    );
    apply_yaml(&client, &yaml).await;
    let r = wait_ready(&image_api(&client, &ns, "v1", "ImageRepository"), "app").await;
    assert_eq!(r.data["status"]["lastScanResult"]["tagCount"], 1);
}

#[tokio::test]
async fn a_private_registry_is_scanned_with_a_dockerconfigjson_secret() {
    let client = client().await;
    let infra = Infra::get();
    let ns = unique_name("reflector-auth");
    namespace(&client, &ns, &[]).await;
    let reg = infra.registry(Flavour::Basic);
    let repo = format!("e2e/{}", unique_name("private"));
    push(Flavour::Basic, &repo, &["1.0.0", "1.1.0"]).await;
    let host = reg.image("").trim_end_matches('/').to_string();
    create_secret(
        &client,
        &ns,
        "creds",
        dockerconfig(
            &host,
            infra.var("REGISTRY_USERNAME"),
            infra.var("REGISTRY_PASSWORD"),
        ),
    )
    .await;
    create_secret(
        &client,
        &ns,
        "wrong",
        dockerconfig(&host, "testuser", "not-the-password-xyz"),
    )
    .await;
    let ca = std::fs::read_to_string(infra.path("REGISTRY_CA_FILE")).unwrap();
    create_secret(
        &client,
        &ns,
        "ca",
        serde_json::from_value(json!({"stringData": {"ca.crt": ca}})).unwrap(),
    )
    .await;

    let image = reg.image(&repo);
    let tls = "  certSecretRef:\n    name: ca\n";
    apply_yaml(
        &client,
        &repo_yaml(
            &ns,
            "good",
            &image,
            &format!("{tls}  secretRef:\n    name: creds\n"),
        ),
    )
    .await;
    apply_yaml(
        &client,
        &repo_yaml(
            &ns,
            "wrong",
            &image,
            &format!("{tls}  secretRef:\n    name: wrong\n"),
        ),
    )
    .await;
    apply_yaml(
        &client,
        &repo_yaml(
            &ns,
            "missing",
            &image,
            &format!("{tls}  secretRef:\n    name: nope\n"),
        ),
    )
    .await;
    apply_yaml(&client, &repo_yaml(&ns, "anonymous", &image, tls)).await;
    apply_yaml(
        &client,
        &policy_yaml(&ns, "good", "good", "    semver:\n      range: '>=1.0.0'\n"),
    )
    .await;

    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    let r = wait_ready(&repos, "good").await;
    assert_eq!(r.data["status"]["lastScanResult"]["tagCount"], 2);
    let p = wait_ready(&image_api(&client, &ns, "v1", "ImagePolicy"), "good").await;
    assert_eq!(latest_tag(&p), "1.1.0");

    let w = wait_not_ready(&repos, "wrong", "AuthenticationFailed").await;
    let (_, _, message) = ready(&w).unwrap();
    assert!(!message.contains("not-the-password-xyz"), "{message}");
    assert!(message.contains(&host), "{message}");
    assert_eq!(
        condition(&w, "Reconciling").map(|c| c.0).as_deref(),
        Some("True"),
        "retried, not stalled"
    );
    let m = wait_not_ready(&repos, "missing", "AuthenticationFailed").await;
    assert_eq!(
        ready(&m).unwrap().2,
        format!("secret '{ns}/nope' (spec.secretRef) not found")
    );
    wait_not_ready(&repos, "anonymous", "AuthenticationFailed").await;

    // Credentials from a ServiceAccount's imagePullSecrets.
    let sa: k8s_openapi::api::core::v1::ServiceAccount = serde_json::from_value(json!({
        "metadata": {"name": "puller"}, "imagePullSecrets": [{"name": "creds"}]
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    apply_yaml(
        &client,
        &repo_yaml(
            &ns,
            "by-sa",
            &image,
            &format!("{tls}  serviceAccountName: puller\n"),
        ),
    )
    .await;
    let s = wait_ready(&repos, "by-sa").await;
    assert_eq!(s.data["status"]["lastScanResult"]["tagCount"], 2);
    apply_yaml(
        &client,
        &repo_yaml(
            &ns,
            "no-sa",
            &image,
            &format!("{tls}  serviceAccountName: ghost\n"),
        ),
    )
    .await;
    let g = wait_not_ready(&repos, "no-sa", "AuthenticationFailed").await;
    assert_eq!(
        ready(&g).unwrap().2,
        format!("ServiceAccount '{ns}/ghost' (spec.serviceAccountName) not found")
    );
}

#[tokio::test]
async fn one_of_two_replicas_leads_and_the_standby_takes_over_at_shutdown() {
    let client = client().await;
    let id = unique_name("lead");
    let ns = unique_name("reflector-lead");
    namespace(&client, &ns, &[]).await;
    let other_ns = unique_name("reflector-unwatched");
    namespace(&client, &other_ns, &[]).await;
    let repo = format!("e2e/{}", unique_name("app"));
    push(Flavour::Plain, &repo, &["1.0.0"]).await;
    let image = Infra::get().registry(Flavour::Plain).image(&repo);
    let label = format!("  labels:\n    {DEDICATED}: {id}\n");
    let labelled = |ns: &str, name: &str| {
        repo_yaml(ns, name, &image, "").replacen(
            &format!("  namespace: {ns}\n"),
            &format!("  namespace: {ns}\n{label}"),
            1,
        )
    };
    let kubeconfig = Infra::get().kubeconfig_path();
    // Both replicas watch only their own namespace ($RUNTIME_NAMESPACE), where the Lease lives too.
    let args = ["--enable-leader-election", "--watch-all-namespaces=false"];
    let env = [("RUNTIME_NAMESPACE", ns.as_str())];
    let mut first = start_controller_env(&kubeconfig, &id, &args, &env);
    let log_has = |p: &ControllerProcess, what: &str| p.log_text().contains(what);
    assert!(
        first
            .wait_for_log("acquired leadership", Duration::from_secs(15))
            .await,
        "{}",
        first.log_text()
    );
    let second = start_controller_env(&kubeconfig, &id, &args, &env);
    apply_yaml(&client, &labelled(&ns, "app")).await;
    apply_yaml(&client, &labelled(&other_ns, "app")).await;
    wait_ready(&image_api(&client, &ns, "v1", "ImageRepository"), "app").await;
    assert!(log_has(&second, "waiting for leadership"));
    assert!(
        !log_has(&second, "acquired leadership"),
        "two leaders:\n{}",
        second.log_text()
    );

    assert!(first.stop(), "graceful shutdown");
    assert!(
        log_has(&first, "released leadership"),
        "{}",
        first.log_text()
    );
    // The released Lease has no holder: the standby takes it at its next try (every 5 s, as Flux's).
    assert!(
        second
            .wait_for_log("acquired leadership", Duration::from_secs(30))
            .await,
        "the standby did not take over within 30 s"
    );
    let unwatched = image_api(&client, &other_ns, "v1", "ImageRepository")
        .get("app")
        .await
        .unwrap();
    assert!(
        unwatched.data["status"].is_null(),
        "a namespace outside $RUNTIME_NAMESPACE is not reconciled"
    );
}

#[tokio::test]
async fn cross_namespace_references_follow_access_from() {
    let client = client().await;
    let team = unique_name("team");
    let (repo_ns, allowed_ns, denied_ns) = (
        unique_name("acl-repo"),
        unique_name("acl-allowed"),
        unique_name("acl-denied"),
    );
    namespace(&client, &repo_ns, &[]).await;
    namespace(&client, &allowed_ns, &[("tagpilot.test/team", &team)]).await;
    namespace(&client, &denied_ns, &[]).await;
    let repo = format!("e2e/{}", unique_name("shared"));
    push(Flavour::Plain, &repo, &["1.0.0", "2.0.0"]).await;
    let image = Infra::get().registry(Flavour::Plain).image(&repo);
    let access = format!(
        "  accessFrom:\n    namespaceSelectors:\n    - matchLabels:\n        tagpilot.test/team: {team}\n"
    );
    apply_yaml(&client, &repo_yaml(&repo_ns, "shared", &image, &access)).await;
    apply_yaml(&client, &repo_yaml(&repo_ns, "private", &image, "")).await;
    let policy = |ns: &str, name: &str, repo: &str| {
        policy_yaml(ns, name, repo, "    semver:\n      range: '>=1.0.0'\n").replace(
            &format!("imageRepositoryRef:\n    name: {repo}\n"),
            &format!("imageRepositoryRef:\n    name: {repo}\n    namespace: {repo_ns}\n"),
        )
    };
    apply_yaml(&client, &policy(&allowed_ns, "app", "shared")).await;
    apply_yaml(&client, &policy(&denied_ns, "app", "shared")).await;
    apply_yaml(&client, &policy(&allowed_ns, "private", "private")).await;

    let p = wait_ready(&image_api(&client, &allowed_ns, "v1", "ImagePolicy"), "app").await;
    assert_eq!(latest_tag(&p), "2.0.0");
    let d = wait_not_ready(
        &image_api(&client, &denied_ns, "v1", "ImagePolicy"),
        "app",
        "AccessDenied",
    )
    .await;
    assert!(ready(&d).unwrap().2.contains(&format!(
        "does not allow access from namespace '{denied_ns}'"
    )));
    assert!(d.data["status"]["latestRef"].is_null());
    wait_not_ready(
        &image_api(&client, &allowed_ns, "v1", "ImagePolicy"),
        "private",
        "AccessDenied",
    )
    .await;
}

#[tokio::test]
async fn a_suspended_repository_is_not_scanned_until_resumed() {
    let client = client().await;
    let ns = unique_name("reflector-suspend");
    namespace(&client, &ns, &[]).await;
    let repo = format!("e2e/{}", unique_name("app"));
    push(Flavour::Plain, &repo, &["1.0.0"]).await;
    let image = Infra::get().registry(Flavour::Plain).image(&repo);
    apply_yaml(&client, &repo_yaml(&ns, "app", &image, "")).await;
    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    wait_ready(&repos, "app").await;
    let suspend = |on: bool| json!({"spec": {"suspend": on}});
    repos
        .patch("app", &PatchParams::default(), &Patch::Merge(suspend(true)))
        .await
        .unwrap();
    push(Flavour::Plain, &repo, &["1.1.0"]).await;
    let requested = request_reconcile(&repos, "app").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = repos.get("app").await.unwrap();
    assert_eq!(
        r.data["status"]["lastScanResult"]["tagCount"], 1,
        "no scan while suspended"
    );
    assert_ne!(str_at(&r, &["status", "lastHandledReconcileAt"]), requested);

    repos
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(suspend(false)),
        )
        .await
        .unwrap();
    let r = wait_for(
        &repos,
        "app",
        Duration::from_secs(60),
        "scanned after resume",
        |o| o.data["status"]["lastScanResult"]["tagCount"] == 2,
    )
    .await;
    assert_eq!(str_at(&r, &["status", "lastHandledReconcileAt"]), requested);
}

#[tokio::test]
async fn bad_input_is_reported_with_field_and_value_and_blocks_nothing() {
    let client = client().await;
    let ns = unique_name("reflector-bad");
    namespace(&client, &ns, &[]).await;
    let reg = Infra::get().registry(Flavour::Plain);
    let repo = format!("e2e/{}", unique_name("app"));
    push(Flavour::Plain, &repo, &["1.0.0", "1.2.0"]).await;
    let image = reg.image(&repo);
    apply_yaml(
        &client,
        &repo_yaml(&ns, "scheme", &format!("https://{image}"), ""),
    )
    .await;
    apply_yaml(
        &client,
        &repo_yaml(&ns, "tagged", &format!("{image}:1.0.0"), ""),
    )
    .await;
    apply_yaml(
        &client,
        &repo_yaml(
            &ns,
            "unreachable",
            "127.0.0.1:1/nothing/here",
            "  timeout: 5s\n",
        ),
    )
    .await;
    apply_yaml(&client, &repo_yaml(&ns, "good", &image, "")).await;
    apply_yaml(
        &client,
        &policy_yaml(&ns, "range", "good", "    semver:\n      range: 1.x.x.x!\n"),
    )
    .await;
    let regex = policy_yaml(&ns, "regex", "good", "    alphabetical: {}\n")
        + "  filterTags:\n    pattern: '(unclosed'\n";
    apply_yaml(&client, &regex).await;
    apply_yaml(
        &client,
        &policy_yaml(
            &ns,
            "nomatch",
            "good",
            "    semver:\n      range: '>=9.0.0'\n",
        ),
    )
    .await;
    apply_yaml(
        &client,
        &policy_yaml(&ns, "good", "good", "    semver:\n      range: '>=1.0.0'\n"),
    )
    .await;

    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    // Good objects go on beside the bad ones.
    assert_eq!(latest_tag(&wait_ready(&policies, "good").await), "1.2.0");

    let s = wait_not_ready(&repos, "scheme", "ImageURLInvalid").await;
    let msg = ready_message(&s);
    assert!(
        msg.starts_with(&format!("spec.image \"https://{image}\"")),
        "{msg}"
    );
    assert_eq!(
        condition(&s, "Stalled").map(|c| c.0).as_deref(),
        Some("True")
    );
    let t = wait_not_ready(&repos, "tagged", "ImageURLInvalid").await;
    assert!(ready(&t).unwrap().2.contains(":1.0.0"));
    let u = wait_not_ready(&repos, "unreachable", "ReadOperationFailed").await;
    let msg = ready_message(&u);
    assert!(msg.starts_with("scan failed: "), "{msg}");
    assert_eq!(
        condition(&u, "Reconciling").map(|c| c.0).as_deref(),
        Some("True")
    );
    assert!(condition(&u, "Stalled").is_none());

    let r = wait_not_ready(&policies, "range", "InvalidPolicy").await;
    let msg = ready_message(&r);
    assert!(
        msg.starts_with("spec.policy.semver.range \"1.x.x.x!\""),
        "{msg}"
    );
    let x = wait_not_ready(&policies, "regex", "InvalidPolicy").await;
    let msg = ready_message(&x);
    assert!(
        msg.starts_with("spec.filterTags.pattern \"(unclosed\""),
        "{msg}"
    );
    let n = wait_not_ready(&policies, "nomatch", "ReconciliationFailed").await;
    let msg = ready_message(&n);
    assert!(msg.contains("unable to determine latest version"), "{msg}");

    // A good repository broken later keeps its last scan (and its policy its last image).
    repos
        .patch(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"image": format!("{image}:oops")}})),
        )
        .await
        .unwrap();
    let g = wait_not_ready(&repos, "good", "ImageURLInvalid").await;
    assert_eq!(g.data["status"]["lastScanResult"]["tagCount"], 2);
    assert_eq!(latest_tag(&policies.get("good").await.unwrap()), "1.2.0");

    // The schema refuses what it can see: two policies, a bad interval, 26 exclusions.
    let bad = [
        policy_yaml(
            &ns,
            "two",
            "good",
            "    semver:\n      range: '1.x'\n    alphabetical: {}\n",
        ),
        repo_yaml(&ns, "interval", &image, "").replace("interval: 1h", "interval: 1d"),
        repo_yaml(
            &ns,
            "many",
            &image,
            &format!("  exclusionList: [{}]\n", vec!["a"; 26].join(", ")),
        ),
    ];
    for doc in bad {
        let v = yaml_docs(&doc).remove(0);
        let api = image_api(&client, &ns, "v1", v["kind"].as_str().unwrap());
        let name = v["metadata"]["name"].as_str().unwrap();
        let err = api
            .patch(name, &PatchParams::apply("tagpilot-e2e"), &Patch::Apply(&v))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("Invalid") || err.to_string().contains("invalid"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_restarted_controller_with_an_empty_store_rescans_before_resolving() {
    let client = client().await;
    let id = unique_name("restart");
    let ns = unique_name("reflector-restart");
    namespace(&client, &ns, &[]).await;
    let repo = format!("e2e/{}", unique_name("app"));
    push(Flavour::Plain, &repo, &["5.0.0", "5.0.1"]).await;
    let image = Infra::get().registry(Flavour::Plain).image(&repo);
    let label = format!("  labels:\n    {DEDICATED}: {id}\n");
    let with_label = |y: String| {
        y.replacen(
            &format!("  namespace: {ns}\n"),
            &format!("  namespace: {ns}\n{label}"),
            1,
        )
    };
    apply_yaml(&client, &with_label(repo_yaml(&ns, "app", &image, ""))).await;
    apply_yaml(
        &client,
        &with_label(policy_yaml(
            &ns,
            "app",
            "app",
            "    semver:\n      range: 5.0.x\n",
        )),
    )
    .await;
    let selector = format!("{DEDICATED}={id}");
    let kubeconfig = Infra::get().kubeconfig_path();
    let mut first = start_controller(&kubeconfig, &id, &["--watch-label-selector", &selector]);
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    assert_eq!(latest_tag(&wait_ready(&policies, "app").await), "5.0.1");
    assert!(
        first.stop(),
        "graceful shutdown on SIGTERM:\n{}",
        first.log_text()
    );
    assert!(
        first.log_text().contains("controllers stopped"),
        "{}",
        first.log_text()
    );

    push(Flavour::Plain, &repo, &["5.0.2"]).await;
    let _second = start_controller(&kubeconfig, &id, &["--watch-label-selector", &selector]);
    // The new process has no tags: it must rescan before the policy moves, and never show a wrong tag.
    for _ in 0..300 {
        let p = policies.get("app").await.unwrap();
        let tag = latest_tag(&p).to_string();
        assert!(
            tag == "5.0.1" || tag == "5.0.2",
            "unexpected tag {tag:?}: {:?}",
            p.data["status"]
        );
        if tag == "5.0.2" {
            let r = image_api(&client, &ns, "v1", "ImageRepository")
                .get("app")
                .await
                .unwrap();
            assert_eq!(r.data["status"]["lastScanResult"]["tagCount"], 3);
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the restarted controller did not resolve 5.0.2 within 60 s");
}

#[tokio::test]
async fn the_controller_recovers_from_an_api_server_restart() {
    shared_controller();
    let infra = Infra::get();
    let port = infra.spare_apiserver_port();
    let up = || infra.start_apiserver("spare", port);
    up();
    let dir = infra.path("TAGPILOT_TESTINFRA").join("k8s-spare");
    let kubeconfig = dir.join("kubeconfig");
    let client = client_for(&kubeconfig).await;
    install_crds(&client).await;
    let ns = unique_name("reflector-apiserver");
    namespace(&client, &ns, &[]).await;
    let repo = format!("e2e/{}", unique_name("app"));
    push(Flavour::Plain, &repo, &["1.0.0"]).await;
    let image = infra.registry(Flavour::Plain).image(&repo);
    let _controller = start_controller(&kubeconfig, "spare", &[]);
    apply_yaml(&client, &repo_yaml(&ns, "app", &image, "")).await;
    apply_yaml(
        &client,
        &policy_yaml(&ns, "app", "app", "    semver:\n      range: '>=1.0.0'\n"),
    )
    .await;
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    assert_eq!(latest_tag(&wait_ready(&policies, "app").await), "1.0.0");

    let pid: i32 = std::fs::read_to_string(dir.join("apiserver.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on the PID our own script recorded.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    push(Flavour::Plain, &repo, &["1.1.0"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    up();
    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    let mut requested = false;
    for _ in 0..100 {
        if request_reconcile_opt(&repos, "app").await {
            requested = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(requested, "the restarted API server takes requests");
    let p = wait_for(
        &policies,
        "app",
        Duration::from_secs(90),
        "1.1.0 after the restart",
        |o| latest_tag(o) == "1.1.0",
    )
    .await;
    assert_eq!(ready(&p).unwrap().0, "True");
    let pid: i32 = std::fs::read_to_string(dir.join("apiserver.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

async fn request_reconcile_opt(api: &Api<DynamicObject>, name: &str) -> bool {
    let value = format!("{:?}", std::time::SystemTime::now());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": value}}}),
        ),
    )
    .await
    .is_ok()
}

/// An API server that accepts connections and never answers: SIGTERM still ends the controller within its
/// graceful-shutdown timeout (before: over 50 s, its reconciles and Lease release stuck in retries).
#[tokio::test]
async fn sigterm_ends_the_controller_when_the_api_server_never_answers() {
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blackhole.local_addr().unwrap().port();
    // Accepted connections are kept open and never read.
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for c in blackhole.incoming().take(64).flatten() {
            open.push(c);
        }
        open
    });
    let text = std::fs::read_to_string(Infra::get().kubeconfig_path()).unwrap();
    let at = text
        .find("https://127.0.0.1:")
        .expect("the API server's URL");
    let end = at + text[at..].find(['"', ',', '}', '\n']).unwrap();
    let server = text[at..end].to_string();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        text.replace(&server, &format!("https://127.0.0.1:{port}")),
    )
    .unwrap();
    let mut c = start_controller(
        &kubeconfig,
        "blackhole",
        &[
            "--enable-leader-election",
            "--graceful-shutdown-timeout",
            "2s",
        ],
    );
    // Let it get stuck in its first requests.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        c.stop(),
        "still running 15 s after SIGTERM:\n{}",
        c.log_text()
    );
    drop(held);
}

/// Two shards with leader election (Flux's sharding: one `--watch-label-selector` each) elect their leaders on
/// Leases named apart, as Flux names them, and each reconciles its own objects.
#[tokio::test]
async fn two_sharded_replicas_with_leader_election_each_lead_their_shard() {
    let client = client().await;
    let id = unique_name("shards");
    let ns = unique_name("shards");
    namespace(&client, &ns, &[]).await;
    let repo = format!("{id}/app");
    push(Flavour::Plain, &repo, &["1.0.0"]).await;
    let image = Infra::get().registry(Flavour::Plain).image(&repo);
    let kubeconfig = Infra::get().kubeconfig_path();
    let env = [("RUNTIME_NAMESPACE", ns.as_str())];
    let mut shards = Vec::new();
    for shard in ["a", "b"] {
        let selector = format!("{DEDICATED}={id}-{shard}");
        let args = [
            "--enable-leader-election",
            "--watch-label-selector",
            selector.as_str(),
        ];
        shards.push(start_controller_env(
            &kubeconfig,
            &format!("{id}-{shard}"),
            &args,
            &env,
        ));
        apply_yaml(
            &client,
            &repo_yaml(&ns, &format!("app-{shard}"), &image, "").replacen(
                &format!("  namespace: {ns}\n"),
                &format!("  namespace: {ns}\n  labels:\n    {DEDICATED}: {id}-{shard}\n"),
                1,
            ),
        )
        .await;
    }
    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    for (shard, c) in ["a", "b"].iter().zip(&shards) {
        assert!(
            c.wait_for_log("acquired leadership", Duration::from_secs(30))
                .await,
            "shard {shard} never led:\n{}",
            c.log_text()
        );
        wait_ready(&repos, &format!("app-{shard}")).await;
        let lease = tagpilot_runtime_lease(&format!("{DEDICATED}={id}-{shard}"));
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(client.clone(), &ns);
        assert!(
            leases.get_opt(&lease).await.unwrap().is_some(),
            "no Lease {lease}"
        );
    }
}

/// The reflector's Lease name for a selector (as `tagpilot_runtime::ops::lease_name`, spelled out here: the
/// e2e crate does not link the runtime).
fn tagpilot_runtime_lease(selector: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(selector.as_bytes());
    let hex: String = d.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("image-reflector-controller-leader-election-{hex}")
}

/// The API server's discovery lists Flux's short names and categories for the three kinds (so that `kubectl
/// get imgrepo,imgpol,iua` and `kubectl get fluxcd-images` work as with Flux's CRDs).
#[tokio::test]
async fn discovery_lists_fluxs_short_names_and_categories() {
    let client = client().await;
    let req = http::Request::get("/apis/image.toolkit.fluxcd.io/v1")
        .body(Vec::new())
        .unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    let resources = list["resources"].as_array().unwrap();
    for (plural, short) in [
        ("imagerepositories", vec!["imgrepo", "imagerepo"]),
        ("imagepolicies", vec!["imgpol", "imagepol"]),
        ("imageupdateautomations", vec!["iua", "imgupd", "imgauto"]),
    ] {
        let r = resources
            .iter()
            .find(|r| r["name"] == plural)
            .unwrap_or_else(|| panic!("{plural} not served: {list}"));
        assert_eq!(r["shortNames"], serde_json::json!(short), "{r}");
        assert_eq!(
            r["categories"],
            serde_json::json!(["all", "fluxcd", "fluxcd-images"]),
            "{r}"
        );
    }
}

/// A failed reconcile's own status write does not wake its object again: the first retry comes after
/// `--min-retry-delay`, not at once (as Flux's controllers, which ignore status-only changes).
#[tokio::test]
async fn a_failure_status_write_does_not_wake_its_object() {
    let client = client().await;
    let id = unique_name("nowake");
    let ns = unique_name("nowake");
    namespace(&client, &ns, &[]).await;
    let c = start_controller(
        &Infra::get().kubeconfig_path(),
        &id,
        &[
            "--watch-label-selector",
            &format!("{DEDICATED}={id}"),
            "--min-retry-delay=60s",
        ],
    );
    // Nothing listens on port 1: every scan fails at once.
    let yaml = repo_yaml(
        &ns,
        "down",
        "127.0.0.1:1/nothing/here",
        "  insecure: true\n",
    )
    .replacen(
        &format!("  namespace: {ns}\n"),
        &format!("  namespace: {ns}\n  labels:\n    {DEDICATED}: {id}\n"),
        1,
    );
    apply_yaml(&client, &yaml).await;
    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    wait_not_ready(&repos, "down", "ReadOperationFailed").await;
    let count = |result: &str| -> u64 {
        let (_, text) = c.http_get(c.metrics_addr, "/metrics").unwrap();
        let series = format!(
            "controller_runtime_reconcile_total{{controller=\"imagerepository\",result=\"{result}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    // The failure was written; give a wake-up by that write time to happen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count("error"),
        1,
        "one failed reconcile, the retry 60 s away"
    );
    // Besides it, at most the reconcile that added the finalizer (kube-runtime's `finalizer` adds it and
    // returns; the change of finalizers wakes the object).
    assert!(count("success") + count("requeue_after") <= 1);
}

/// ImageRepositories of one image (in several namespaces, same credentials and exclusions) share listings:
/// five tenants cost at most two `tags/list` (a first object alone keeps no listing in memory, the second
/// one's is kept and serves the others); other exclusions are another listing; a scan asked for lists afresh.
#[tokio::test]
async fn repositories_of_one_image_share_one_scan() {
    use tagpilot_testinfra::{FaultProxy, Paging};
    let client = client().await;
    let reg = Infra::get().registry(Flavour::Plain);
    let repo = format!("e2e/{}", unique_name("shared"));
    push(Flavour::Plain, &repo, &["1.0.0", "1.1.0"]).await;
    let proxy = FaultProxy::start(&reg.host, Paging::Passthrough).await;
    let image = format!("{}/{repo}", proxy.host());
    let listings = || {
        proxy
            .requests()
            .iter()
            .filter(|r| r.contains("/tags/list"))
            .count()
    };
    let mut apis = Vec::new();
    for tenant in ["a", "b", "c", "d", "e"] {
        let ns = unique_name(&format!("shared-{tenant}"));
        namespace(&client, &ns, &[]).await;
        apply_yaml(&client, &repo_yaml(&ns, "app", &image, "")).await;
        apis.push(image_api(&client, &ns, "v1", "ImageRepository"));
    }
    for api in &apis {
        let r = wait_ready(api, "app").await;
        assert_eq!(r.data["status"]["lastScanResult"]["tagCount"], 2);
    }
    let shared = listings();
    assert!(
        (1..=2).contains(&shared),
        "five tenants, {shared} listings: {:?}",
        proxy.requests()
    );
    // Other exclusions: another listing.
    let ns = unique_name("shared-x");
    namespace(&client, &ns, &[]).await;
    apply_yaml(
        &client,
        &repo_yaml(&ns, "app", &image, "  exclusionList: ['^1\\.0']\n"),
    )
    .await;
    let d = image_api(&client, &ns, "v1", "ImageRepository");
    let r = wait_ready(&d, "app").await;
    assert_eq!(r.data["status"]["lastScanResult"]["tagCount"], 1);
    assert_eq!(listings(), shared + 1);
    // A scan asked for lists afresh (and sees the new tag).
    push(Flavour::Plain, &repo, &["1.2.0"]).await;
    request_reconcile(&apis[1], "app").await;
    wait_for(&apis[1], "app", Duration::from_secs(30), "rescanned", |o| {
        o.data["status"]["lastScanResult"]["tagCount"] == 3
    })
    .await;
    assert_eq!(listings(), shared + 2);
}
