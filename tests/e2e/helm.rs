//! The chart under real Helm: Helm v4's Go library through PyPI's `helm-sdkpy` (`hack/helm/release.py`), on an
//! API server of this test's own: install with the default values, upgrade with the receiver on, roll back,
//! uninstall; the objects asserted after each step, and the users' objects (an ImagePolicy and its
//! ImageRepository) surviving the uninstall because the CRDs are kept (`helm.sh/resource-policy: keep`).

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use serde_json::{Value, json};
use tagpilot_testinfra::Infra;

use crate::kube_support::*;

const RELEASE: &str = "tagpilot";
const NS: &str = "flux-system";
const RECEIVER_CRD: &str = "receivers.notification.toolkit.fluxcd.io";

/// `hack/helm/release.py KUBECONFIG NS RELEASE ARGS...`: the result JSON, or the error text.
fn helm(kubeconfig: &Path, args: &[&str]) -> Result<Value, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("hack/helm/release.py"))
        .arg(kubeconfig)
        .args([NS, RELEASE])
        .args(args)
        .output()
        .expect("run python3 (helm-sdkpy: hack/testinfra/install-deps.sh)");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

fn chart() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/tagpilot")
        .display()
        .to_string()
}

async fn exists<K>(api: &Api<K>, name: &str) -> bool
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.unwrap().is_some()
}

fn reflector_args(d: &Deployment) -> Vec<String> {
    d.spec.template.spec.as_ref().unwrap().containers[0]
        .args
        .clone()
        .unwrap_or_default()
}

/// Leaves nothing of an earlier run: the release, then the CRDs it kept.
async fn clean(client: &kube::Client, kubeconfig: &Path) {
    if helm(kubeconfig, &["status"]).is_ok() {
        helm(kubeconfig, &["uninstall"]).expect("uninstall the release of an earlier run");
    }
    let mut names = IMAGE_CRDS.to_vec();
    names.push(RECEIVER_CRD);
    delete_crds(client, &names).await;
}

#[tokio::test]
async fn the_chart_installs_upgrades_rolls_back_and_uninstalls_under_helm_keeping_users_objects() {
    let infra = Infra::get();
    let kubeconfig: PathBuf = infra.start_apiserver("helm", infra.port("KUBE_HELM_API_PORT"));
    let client = client_for(&kubeconfig).await;
    clean(&client, &kubeconfig).await;
    namespace(&client, NS, &[]).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NS);

    // 1. Install with the default values.
    let r = helm(&kubeconfig, &["install", &chart()]).unwrap();
    assert_eq!(r["info"]["status"], "deployed", "{r}");
    for name in IMAGE_CRDS {
        let c = crds.get(name).await.unwrap();
        assert_eq!(
            c.metadata.annotations.unwrap_or_default()["helm.sh/resource-policy"],
            "keep",
            "{name}"
        );
    }
    assert!(
        !exists(&crds, RECEIVER_CRD).await,
        "receivers are off by default"
    );
    for c in ["image-reflector-controller", "image-automation-controller"] {
        let d = deployments.get(c).await.unwrap();
        let container = &d.spec.template.spec.as_ref().unwrap().containers[0];
        assert_eq!(
            container.image.as_deref(),
            Some(format!("ghcr.io/tagpilot/{c}:v{}", env!("CARGO_PKG_VERSION")).as_str())
        );
        assert!(container.command.is_none(), "the image's entrypoint runs");
        assert!(exists(&accounts, c).await);
    }
    let reflector = deployments.get("image-reflector-controller").await.unwrap();
    assert!(
        !reflector_args(&reflector)
            .iter()
            .any(|a| a.starts_with("--receiver-addr"))
    );
    // The users' objects.
    namespace(&client, "apps", &[]).await;
    apply_yaml(
        &client,
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: podinfo\n  namespace: apps\n\
         spec:\n  image: ghcr.io/stefanprodan/podinfo\n  interval: 5m\n---\n\
         apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo\n  namespace: apps\n\
         spec:\n  imageRepositoryRef:\n    name: podinfo\n  policy:\n    semver:\n      range: 5.0.x\n",
    )
    .await;

    // 2. Upgrade with the receiver on.
    let r = helm(
        &kubeconfig,
        &[
            "upgrade",
            &chart(),
            &json!({"receiver": {"enabled": true}}).to_string(),
        ],
    )
    .unwrap();
    assert_eq!(r["version"], 2, "{r}");
    assert!(exists(&crds, RECEIVER_CRD).await);
    assert!(exists(&services, "webhook-receiver").await);
    let reflector = deployments.get("image-reflector-controller").await.unwrap();
    assert!(reflector_args(&reflector).contains(&"--receiver-addr=:9292".to_string()));

    // 3. Roll back to revision 1, as Helm's rollback does it: revision 1's chart and values applied again. Not
    //    through helm-sdkpy's Rollback: its binding (0.1.32) sets no wait strategy, which Helm v4's Rollback
    //    action requires ("unable to get waiter: wait strategy not set"; helm/helm#31337 fixed Helm's own
    //    callers), and the failed attempt leaves the release pending-rollback.
    let history = helm(&kubeconfig, &["history"]).unwrap();
    assert_eq!(history.as_array().map(Vec::len), Some(2), "{history}");
    // Revision 1 had the chart's defaults; an upgrade without values would reuse revision 2's (Helm's rule
    // when none are given), so the default is said.
    let defaults = json!({"receiver": {"enabled": false}}).to_string();
    let r = helm(&kubeconfig, &["upgrade", &chart(), &defaults]).unwrap();
    assert_eq!(r["version"], 3, "{r}");
    assert!(
        !exists(&services, "webhook-receiver").await,
        "the Service went with the rollback"
    );
    let reflector = deployments.get("image-reflector-controller").await.unwrap();
    assert!(
        !reflector_args(&reflector)
            .iter()
            .any(|a| a.starts_with("--receiver-addr"))
    );
    assert!(
        exists(&crds, RECEIVER_CRD).await,
        "a CRD the chart no longer renders is kept, not deleted"
    );

    // 4. Uninstall: the controllers go, the CRDs and the users' objects stay.
    helm(&kubeconfig, &["uninstall"]).unwrap();
    for c in ["image-reflector-controller", "image-automation-controller"] {
        assert!(!exists(&deployments, c).await, "{c}");
        assert!(!exists(&accounts, c).await, "{c}");
    }
    for name in IMAGE_CRDS {
        assert!(exists(&crds, name).await, "{name} kept");
    }
    let policies = image_api(&client, "apps", "v1", "ImagePolicy");
    let p = policies
        .get("podinfo")
        .await
        .expect("the ImagePolicy survives helm uninstall");
    assert_eq!(p.data["spec"]["policy"]["semver"]["range"], "5.0.x");
    assert!(
        exists(
            &image_api(&client, "apps", "v1", "ImageRepository"),
            "podinfo"
        )
        .await
    );
    assert!(
        helm(&kubeconfig, &["status"]).is_err(),
        "the release is gone"
    );
}
