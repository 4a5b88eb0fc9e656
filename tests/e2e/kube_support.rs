//! Helpers for tests on the real API server: the CRDs installed once, YAML applied as it is written, objects
//! read in any served version, waiting for a condition, namespaces.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;
use tagpilot_core::api::crd;

/// Installs the CRDs (config/crd, as checked in) on the API server behind `client`, waiting until established.
pub async fn install_crds(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in crd::files() {
        if !file.path.ends_with(".yaml") || file.path.ends_with("kustomization.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(root.join(&file.path)).expect("read a CRD file");
        for doc in yaml_docs(&text) {
            let crd: CustomResourceDefinition = serde_json::from_value(doc).expect("a CRD");
            let name = crd.metadata.name.clone().expect("CRD name");
            crds.patch(
                &name,
                &PatchParams::apply("tagpilot-e2e").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
            tokio::time::timeout(
                Duration::from_secs(30),
                await_condition(crds.clone(), &name, conditions::is_crd_established()),
            )
            .await
            .expect("CRD established within 30 s")
            .expect("watch the CRD");
        }
    }
}

/// Our three image CRDs.
pub const IMAGE_CRDS: [&str; 3] = [
    "imagerepositories.image.toolkit.fluxcd.io",
    "imagepolicies.image.toolkit.fluxcd.io",
    "imageupdateautomations.image.toolkit.fluxcd.io",
];

/// Deletes the CRDs `names` (and with them their objects, finalizers cleared: no controller may be running)
/// on an API server of a test's own, waiting until each is gone.
pub async fn delete_crds(client: &kube::Client, names: &[&str]) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in names.iter().copied() {
        let Some(old) = crds.get_opt(name).await.unwrap() else {
            continue;
        };
        let uid = old.metadata.uid.clone().unwrap();
        // The reflector's finalizers would hold the objects (and so the CRD) with no controller running.
        let ar = kube::core::ApiResource {
            group: old.spec.group.clone(),
            version: "v1".into(),
            api_version: format!("{}/v1", old.spec.group),
            kind: old.spec.names.kind.clone(),
            plural: old.spec.names.plural.clone(),
        };
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        for o in all.list(&Default::default()).await.unwrap() {
            let api: Api<DynamicObject> = Api::namespaced_with(
                client.clone(),
                o.metadata.namespace.as_deref().unwrap(),
                &ar,
            );
            api.patch(
                o.metadata.name.as_deref().unwrap(),
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
            )
            .await
            .unwrap();
        }
        crds.delete(name, &DeleteParams::default()).await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(crds.clone(), name, conditions::is_deleted(&uid)),
        )
        .await
        .expect("CRD deleted within 60 s")
        .unwrap();
    }
}

/// Installs the CRDs on the shared test API server once per test binary.
pub fn crds_installed() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .expect("runtime")
                .block_on(async {
                    let client = tagpilot_testinfra::Infra::get().kube_client().await;
                    install_crds(&client).await;
                    clear_earlier_runs(&client).await;
                })
        })
        .join()
        .expect("install the CRDs");
    });
}

/// Marks a namespace whose objects [`clear_earlier_runs`] removed.
const CLEARED: &str = "tagpilot.test/cleared";

/// Removes what earlier runs of the suite left on the shared API server, which keeps its etcd between runs and
/// has no namespace controller: the objects of the kinds our controllers reconcile, in every namespace named
/// by another test process (`<prefix>-<pid>-<n>`, [`tagpilot_testinfra::unique_name`]). Without this, a shared
/// controller started now would first work through every earlier run's objects, and a test's 30 s could pass
/// before its own object's turn. Cleared namespaces are labelled and skipped by later runs.
async fn clear_earlier_runs(client: &kube::Client) {
    use futures::StreamExt;
    use kube::api::ListParams;
    let me = std::process::id().to_string();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let Ok(list) = namespaces
        .list(&ListParams::default().labels(&format!("!{CLEARED}")))
        .await
    else {
        return;
    };
    let earlier: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|name| {
            let mut parts = name.rsplitn(3, '-');
            let (n, pid) = (parts.next(), parts.next());
            parts.next().is_some()
                && n.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                && pid.is_some_and(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p != me
                })
        })
        .collect();
    let kinds = [
        (
            "image.toolkit.fluxcd.io",
            "ImageUpdateAutomation",
            "imageupdateautomations",
        ),
        ("image.toolkit.fluxcd.io", "ImagePolicy", "imagepolicies"),
        (
            "image.toolkit.fluxcd.io",
            "ImageRepository",
            "imagerepositories",
        ),
        (
            "source.toolkit.fluxcd.io",
            "GitRepository",
            "gitrepositories",
        ),
        ("notification.toolkit.fluxcd.io", "Receiver", "receivers"),
    ];
    let started = Instant::now();
    let count = earlier.len();
    futures::stream::iter(earlier)
        .for_each_concurrent(16, |ns| {
            let (client, namespaces) = (client.clone(), namespaces.clone());
            async move {
                for (group, kind, plural) in kinds {
                    let api = dynamic_api(&client, &ns, group, "v1", kind, plural);
                    let Ok(objects) = api.list(&ListParams::default()).await else {
                        continue;
                    };
                    for o in objects.items {
                        let name = o.metadata.name.clone().unwrap_or_default();
                        // No controller may be running to remove our finalizer.
                        if o.metadata
                            .finalizers
                            .as_ref()
                            .is_some_and(|f| !f.is_empty())
                        {
                            let _ = api
                                .patch(
                                    &name,
                                    &PatchParams::default(),
                                    &Patch::Merge(
                                        serde_json::json!({"metadata": {"finalizers": null}}),
                                    ),
                                )
                                .await;
                        }
                        let _ = api.delete(&name, &DeleteParams::default()).await;
                    }
                }
                let _ = namespaces
                    .patch(
                        &ns,
                        &PatchParams::default(),
                        &Patch::Merge(
                            serde_json::json!({"metadata": {"labels": {CLEARED: "true"}}}),
                        ),
                    )
                    .await;
            }
        })
        .await;
    if count > 0 {
        eprintln!(
            "cleared the objects of {count} namespaces of earlier runs in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// A client of the API server of `kubeconfig` (an API server a test started for itself).
pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("load the kubeconfig");
    kube::Client::try_from(config).expect("build a kube client")
}

/// The documents of a YAML stream as JSON values (empty documents skipped).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    yaml_serde::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The API of a kind in one version (`v1beta1`, `v1beta2`, `v1`).
pub fn dynamic_api(
    client: &kube::Client,
    namespace: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(client.clone(), namespace, &ar)
}

/// An image kind in a version: `image(client, ns, "v1beta1", "ImagePolicy")`.
pub fn image_api(
    client: &kube::Client,
    namespace: &str,
    version: &str,
    kind: &str,
) -> Api<DynamicObject> {
    let plural = match kind {
        "ImageRepository" => "imagerepositories",
        "ImagePolicy" => "imagepolicies",
        "ImageUpdateAutomation" => "imageupdateautomations",
        "GitRepository" => "gitrepositories",
        other => panic!("not an image kind: {other}"),
    };
    dynamic_api(
        client,
        namespace,
        "image.toolkit.fluxcd.io",
        version,
        kind,
        plural,
    )
}

/// GitRepositories (source.toolkit.fluxcd.io/v1) in a namespace.
pub fn source_api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    dynamic_api(
        client,
        namespace,
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
        "gitrepositories",
    )
}

/// Held by the tests that apply Flux's guide objects (`flux-system/podinfo`), so that they do not run at once.
pub static FLUX_SYSTEM_GUIDE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Applies YAML documents as written (server-side apply), each in the version its `apiVersion` names.
pub async fn apply_yaml(client: &kube::Client, text: &str) {
    for doc in yaml_docs(text) {
        let api_version = doc["apiVersion"].as_str().expect("apiVersion").to_string();
        let kind = doc["kind"].as_str().expect("kind").to_string();
        let name = doc["metadata"]["name"].as_str().expect("name").to_string();
        let ns = doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let api = match group {
            "image.toolkit.fluxcd.io" => image_api(client, &ns, version, &kind),
            "source.toolkit.fluxcd.io" => source_api(client, &ns),
            "notification.toolkit.fluxcd.io" => dynamic_api(
                client,
                &ns,
                "notification.toolkit.fluxcd.io",
                version,
                &kind,
                "receivers",
            ),
            "" => dynamic_api(
                client,
                &ns,
                "",
                version,
                &kind,
                &format!("{}s", kind.to_lowercase()),
            ),
            other => panic!("apply_yaml: unexpected API group {other}"),
        };
        api.patch(
            &name,
            &PatchParams::apply("tagpilot-e2e").force(),
            &Patch::Apply(&doc),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {kind} {ns}/{name}: {e}"));
    }
}

/// Creates a namespace with labels (or keeps an existing one).
pub async fn namespace(client: &kube::Client, name: &str, labels: &[(&str, &str)]) {
    let api: Api<Namespace> = Api::all(client.clone());
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": labels}
    }))
    .expect("namespace");
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("create namespace {name}: {e}"),
    }
}

/// The `Ready` condition of an object's status, if any: `(status, reason, message)`.
pub fn ready(obj: &DynamicObject) -> Option<(String, String, String)> {
    condition(obj, "Ready")
}

/// The message of the `Ready` condition ("" when there is none).
pub fn ready_message(obj: &DynamicObject) -> String {
    ready(obj).map(|(_, _, m)| m).unwrap_or_default()
}

/// Asserts that the `Ready` condition's message contains `part` (showing the message when not).
#[track_caller]
pub fn assert_message_contains(obj: &DynamicObject, part: &str) {
    let message = ready_message(obj);
    assert!(
        message.contains(part),
        "{part:?} not in the Ready message {message:?}"
    );
}

/// The notes of the events in `namespace`, polled (up to 5 s) until `done` holds for them; returned either way
/// for the caller's assertions.
pub async fn event_notes(
    client: &kube::Client,
    namespace: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), namespace);
    let mut notes = Vec::new();
    for _ in 0..50 {
        notes = events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|e| e.note)
            .collect();
        if done(&notes) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    notes
}

/// A condition of an object's status.
pub fn condition(obj: &DynamicObject, type_: &str) -> Option<(String, String, String)> {
    obj.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("status"), s("reason"), s("message"))
        })
}

/// Polls `name` until `pred` holds (up to `timeout`); panics with the last object seen.
pub async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&DynamicObject) -> bool,
) -> DynamicObject {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        match api.get_opt(name).await {
            Ok(Some(obj)) => {
                if pred(&obj) {
                    return obj;
                }
                last = Some(obj);
            }
            Ok(None) => {}
            Err(e) => eprintln!("get {name}: {e}"),
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not within {timeout:?}; last seen status: {}",
                last.map(|o| serde_json::to_string_pretty(&o.data["status"]).unwrap_or_default())
                    .unwrap_or_else(|| "(object not found)".into())
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the object is Ready=True.
pub async fn wait_ready(api: &Api<DynamicObject>, name: &str) -> DynamicObject {
    wait_for(
        api,
        name,
        Duration::from_secs(60),
        &format!("{name} Ready"),
        |o| ready(o).is_some_and(|(s, _, _)| s == "True"),
    )
    .await
}

/// Waits until the object is Ready=False with `reason`.
pub async fn wait_not_ready(api: &Api<DynamicObject>, name: &str, reason: &str) -> DynamicObject {
    wait_for(
        api,
        name,
        Duration::from_secs(60),
        &format!("{name} Ready=False with reason {reason}"),
        |o| ready(o).is_some_and(|(s, r, _)| s == "False" && r == reason),
    )
    .await
}

/// Sets `reconcile.fluxcd.io/requestedAt` to a fresh value (as `flux reconcile` does); returns it.
pub async fn request_reconcile(api: &Api<DynamicObject>, name: &str) -> String {
    let value = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": value}}
        })),
    )
    .await
    .expect("annotate requestedAt");
    value
}
