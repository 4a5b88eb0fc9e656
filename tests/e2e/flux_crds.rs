//! Both controllers on the CRDs a Flux installation already has (Flux 2.9's, `v1` only; tests/data/flux-crds),
//! on an API server of this test's own: Flux's guide end to end (a new tag becomes a commit), then again
//! after tagpilot's CRDs replace Flux's (the upgrade path).
//!
//! The reflector first runs as a ServiceAccount that may not read CRDs (as under Flux's RBAC): its status
//! writes keep Flux v1's fields. After the upgrade it runs with tagpilot's RBAC and writes the fields of every
//! version again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};
use tagpilot_testinfra::{ControllerProcess, Flavour, Infra, binary_path, unique_name};

use crate::automation::{head, http_source, seed_repo, wait_head_change};
use crate::kube_support::*;

/// Flux's CRDs as checked in, without the one CEL rule (kube-apiserver v1.20 predates CEL).
fn flux_crds() -> Vec<CustomResourceDefinition> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flux-crds");
    let mut out = Vec::new();
    for name in IMAGE_CRDS {
        let text = std::fs::read_to_string(dir.join(format!(
            "image.toolkit.fluxcd.io_{}.yaml",
            name.split('.').next().unwrap()
        )))
        .expect("read Flux's CRD");
        for mut doc in yaml_docs(&text) {
            strip_key(&mut doc, "x-kubernetes-validations");
            out.push(serde_json::from_value(doc).expect("a CRD"));
        }
    }
    out
}

fn strip_key(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            m.remove(key);
            m.values_mut().for_each(|x| strip_key(x, key));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip_key(x, key)),
        _ => {}
    }
}

async fn apply_crd(client: &kube::Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("flux-crds-e2e").force(),
        &Patch::Apply(crd),
    )
    .await
    .unwrap_or_else(|e| panic!("apply CRD {name}: {e}"));
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established")
    .unwrap();
}

/// tagpilot's reflector ClusterRole without its CRD rule (Flux's RBAC grants no CRD reads), bound to the
/// ServiceAccount `ns/image-reflector-controller`.
async fn reflector_rbac_without_crd_reads(client: &kube::Client, ns: &str) {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let pp = PatchParams::apply("flux-crds-e2e").force();
    for mut o in tagpilot_core::api::install::rbac(ns) {
        let is_reflector = o["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.contains("image-reflector-controller"));
        if !is_reflector
            || !["ClusterRole", "ClusterRoleBinding"].contains(&o["kind"].as_str().unwrap())
        {
            continue;
        }
        if o["kind"] == "ClusterRole" {
            let rules = o["rules"].as_array_mut().unwrap();
            rules.retain(|r| r["apiGroups"][0] != "apiextensions.k8s.io");
            assert!(!o.to_string().contains("customresourcedefinitions"));
        }
        let name = o["metadata"]["name"].as_str().unwrap().to_string();
        if o["kind"] == "ClusterRole" {
            let api: Api<ClusterRole> = Api::all(client.clone());
            api.patch(&name, &pp, &Patch::Apply(&o)).await.unwrap();
        } else {
            let api: Api<ClusterRoleBinding> = Api::all(client.clone());
            api.patch(&name, &pp, &Patch::Apply(&o)).await.unwrap();
        }
    }
}

/// A copy of `kubeconfig` that acts as `user` (impersonation).
fn kubeconfig_as(kubeconfig: &Path, user: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let mut v: Value = yaml_docs(&text).remove(0);
    for u in v["users"].as_array_mut().unwrap() {
        u["user"]["as"] = json!(user);
    }
    let path = dir.join(format!("{}.kubeconfig", unique_name("as")));
    std::fs::write(&path, yaml_serde::to_string(&v).unwrap()).unwrap();
    path
}

fn start(
    binary: &str,
    kubeconfig: &Path,
    dir: &Path,
    ns: &str,
    extra: &[&str],
) -> ControllerProcess {
    let mut args: Vec<String> = vec![
        "--watch-all-namespaces=false".into(),
        "--log-level=debug".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    ControllerProcess::start(
        &binary_path(binary),
        kubeconfig,
        &args,
        &[("RUNTIME_NAMESPACE", ns)],
        &dir.join(format!("{}.log", unique_name(binary))),
    )
    .unwrap_or_else(|e| panic!("start {binary}: {e}"))
}

#[tokio::test]
async fn the_guide_runs_on_fluxs_own_crds_and_after_ours_replace_them() {
    let infra = Infra::get();
    let kubeconfig = infra.start_apiserver("flux", infra.port("KUBE_FLUX_API_PORT"));
    let client = client_for(&kubeconfig).await;
    let dir = infra
        .path("TAGPILOT_TESTINFRA")
        .join(unique_name("flux-crds"));
    std::fs::create_dir_all(&dir).unwrap();

    // Flux's CRDs (and a GitRepository CRD), nothing of an earlier run.
    delete_crds(&client, &IMAGE_CRDS).await;
    for crd in flux_crds() {
        apply_crd(&client, &crd).await;
    }
    let ours = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in tagpilot_core::api::crd::files() {
        if file.path.contains("source")
            && file.path.ends_with(".yaml")
            && !file.path.ends_with("kustomization.yaml")
        {
            for doc in yaml_docs(&std::fs::read_to_string(ours.join(&file.path)).unwrap()) {
                apply_crd(&client, &serde_json::from_value(doc).unwrap()).await;
            }
        }
    }
    let served = |c: &CustomResourceDefinition| -> Vec<String> {
        c.spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| v.name.clone())
            .collect()
    };
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    assert_eq!(
        served(&crds.get(IMAGE_CRDS[1]).await.unwrap()),
        ["v1"],
        "Flux's CRDs serve v1 only"
    );

    let ns = unique_name("fluxcrds");
    namespace(&client, &ns, &[]).await;
    reflector_rbac_without_crd_reads(&client, &ns).await;
    let as_reflector = kubeconfig_as(
        &kubeconfig,
        &format!("system:serviceaccount:{ns}:image-reflector-controller"),
        &dir,
    );
    let storage = dir.join("data");
    let storage_arg = format!("--storage-path={}", storage.display());
    let mut reflector = start(
        "image-reflector-controller",
        &as_reflector,
        &dir,
        &ns,
        &[&storage_arg],
    );
    let work = format!("--work-dir={}", dir.join("clones").display());
    let _automation = start(
        "image-automation-controller",
        &kubeconfig,
        &dir,
        &ns,
        &[&work],
    );

    let git = infra.git();
    let reg = infra.registry(Flavour::Plain);
    let repo_path = format!("{}/podinfo", unique_name("fluxcrds"));
    let image = reg.image(&repo_path);
    reg.push_tags(&repo_path, &["5.0.0", "5.0.1", "5.0.3", "6.0.0"])
        .await
        .unwrap();
    let deployment_path = "apps/podinfo.yaml";
    let marker = format!("# {{\"$imagepolicy\": \"{ns}:podinfo\"}}");
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  template:\n    spec:\n      \
         containers:\n      - name: podinfod\n        image: {image}:5.0.0 {marker}\n"
    );
    let repo = seed_repo(&git, &[(deployment_path, &deployment)]);
    let seed = head(&git, &repo, "main");
    http_source(&client, &git, &ns, "flux-system", &repo).await;
    apply_yaml(
        &client,
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: podinfo\n  namespace: {ns}\n\
             spec:\n  image: {image}\n  interval: 1m\n  insecure: true\n---\n\
             apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo\n  namespace: {ns}\n\
             spec:\n  imageRepositoryRef:\n    name: podinfo\n  policy:\n    semver:\n      range: 5.0.x\n---\n\
             apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata:\n  name: flux-system\n  namespace: {ns}\n\
             spec:\n  interval: 1m\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n  git:\n    checkout:\n      ref:\n        branch: main\n    \
             commit:\n      author:\n        email: fluxcdbot@users.noreply.github.com\n        name: fluxcdbot\n      \
             messageTemplate: '{{{{range .Changed.Changes}}}}{{{{print .OldValue}}}} -> {{{{println .NewValue}}}}{{{{end}}}}'\n    \
             push:\n      branch: main\n  update:\n    path: ./apps\n    strategy: Setters\n"
        ),
    )
    .await;

    // 1. On Flux's CRDs: the policy resolves (v1 fields only), the automation pushes.
    let (first, _) = wait_head_change(&git, &repo, "main", seed, Duration::from_secs(120)).await;
    let text = crate::automation::file_at(&git, &repo, "main", deployment_path);
    assert!(
        text.contains(&format!("image: {image}:5.0.3 {marker}")),
        "{text}"
    );
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    let p = wait_ready(&policies, "podinfo").await;
    assert_eq!(p.data["status"]["latestRef"]["tag"], "5.0.3");
    assert!(
        p.data["status"].get("latestImage").is_none(),
        "{}",
        p.data["status"]
    );
    let autos = image_api(&client, &ns, "v1", "ImageUpdateAutomation");
    let a = wait_for(
        &autos,
        "flux-system",
        Duration::from_secs(30),
        "lastPushCommit",
        |o| o.data["status"]["lastPushCommit"] == first.to_string(),
    )
    .await;
    assert_eq!(
        a.data["status"]["observedPolicies"]["podinfo"]["tag"],
        "5.0.3"
    );
    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    let r = wait_ready(&repos, "podinfo").await;
    assert_eq!(r.data["status"]["lastScanResult"]["tagCount"], 4);
    let log = reflector.log_text();
    assert!(!log.contains("not declared in schema"), "{log}");

    // 2. The upgrade: tagpilot's CRDs replace Flux's; the reflector restarts with tagpilot's RBAC.
    reflector.stop();
    install_crds(&client).await;
    assert_eq!(
        served(&crds.get(IMAGE_CRDS[1]).await.unwrap()),
        ["v1beta1", "v1beta2", "v1"]
    );
    let _reflector = start(
        "image-reflector-controller",
        &kubeconfig,
        &dir,
        &ns,
        &[&storage_arg],
    );
    reg.push_tags(&repo_path, &["5.0.4"]).await.unwrap();
    repos
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": unique_name("now")}}})),
        )
        .await
        .unwrap();
    let (second, _) =
        wait_head_change(&git, &repo, "main", Some(first), Duration::from_secs(120)).await;
    let text = crate::automation::file_at(&git, &repo, "main", deployment_path);
    assert!(
        text.contains(&format!("image: {image}:5.0.4 {marker}")),
        "{text}"
    );
    let beta2 = image_api(&client, &ns, "v1beta2", "ImagePolicy");
    let p = wait_for(
        &beta2,
        "podinfo",
        Duration::from_secs(30),
        "latestImage in v1beta2",
        |o| o.data["status"]["latestImage"] == format!("{image}:5.0.4"),
    )
    .await;
    assert_eq!(p.data["status"]["latestRef"]["tag"], "5.0.4");
    assert_ne!(first, second);
}
