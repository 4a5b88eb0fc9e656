//! The Helm chart (`charts/tagpilot`), rendered without Helm by the project's Go template engine in Helm's
//! dialect (`include`, `toYaml`, `required` besides text/template and sprig): the default values give exactly
//! the objects of `config/default` (but the namespace, which Helm does not own), the values change what they
//! say, and the API server accepts the rendering (server-side dry run).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::{Value, json};
use tagpilot_core::template::{Template, Value as TValue};
use tagpilot_testinfra::Infra;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn docs(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{e}\n{text}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// Deep-merges `over` into `base` (maps merge, anything else replaces), as Helm merges `--set` values.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Renders every template of the chart with the default values merged with `values`, in release `tagpilot`
/// of namespace `flux-system`; Helm's `.Chart` fields from Chart.yaml.
fn render(values: Value) -> Result<Vec<Value>, String> {
    let chart = root().join("charts/tagpilot");
    let meta: Value =
        yaml_serde::from_str(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap()).unwrap();
    let mut v: Value =
        yaml_serde::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap()).unwrap();
    merge(&mut v, &values);
    let data = TValue::from_json(&json!({
        "Values": v,
        "Release": {"Name": "tagpilot", "Namespace": "flux-system", "Service": "Helm"},
        "Chart": {"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"]},
    }));
    let helpers = std::fs::read_to_string(chart.join("templates/_helpers.tpl")).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(chart.join("templates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = format!("{helpers}\n{}", std::fs::read_to_string(&f).unwrap());
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let t = Template::parse_helm(&name, &text).map_err(|e| e.to_string())?;
        out.extend(docs(&t.execute(&data).map_err(|e| e.to_string())?));
    }
    Ok(out)
}

/// Objects by `kind/namespace/name`; a CRD's `helm.sh/resource-policy: keep` (the chart's alone) is checked
/// and set aside.
fn by_key(objects: Vec<Value>) -> BTreeMap<String, Value> {
    objects
        .into_iter()
        .map(|mut o| {
            if o["kind"] == "CustomResourceDefinition"
                && let Some(a) = o["metadata"].get("annotations").cloned()
            {
                assert_eq!(a, json!({"helm.sh/resource-policy": "keep"}));
                o["metadata"].as_object_mut().unwrap().remove("annotations");
            }
            (
                format!(
                    "{}/{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["namespace"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o,
            )
        })
        .collect()
}

/// config/default's objects, in kustomize's order.
fn config_default(dir: &Path) -> Vec<Value> {
    let k = &docs(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap())[0];
    let mut out = Vec::new();
    for r in k["resources"].as_array().unwrap() {
        let p = dir.join(r.as_str().unwrap());
        if p.is_dir() {
            out.extend(config_default(&p));
        } else {
            out.extend(docs(&std::fs::read_to_string(p).unwrap()));
        }
    }
    out
}

#[test]
fn default_values_render_config_default_object_for_object() {
    let rendered = by_key(render(json!({})).unwrap());
    let mut config = by_key(config_default(&root().join("config/default")));
    config.retain(|k, _| !k.starts_with("Namespace/"));
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        config.keys().collect::<Vec<_>>()
    );
    for (k, v) in &config {
        assert_eq!(&rendered[k], v, "{k}");
    }
}

#[test]
fn receiver_values_render_what_install_with_receiver_prints() {
    let rendered = by_key(render(json!({"receiver": {"enabled": true}})).unwrap());
    let out = std::process::Command::new(tagpilot_testinfra::binary_path("tagpilot"))
        .args(["install", "--export", "--with-receiver"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut installed = by_key(docs(&String::from_utf8(out.stdout).unwrap()));
    installed.retain(|k, _| !k.starts_with("Namespace/"));
    assert_eq!(
        rendered.keys().collect::<Vec<_>>(),
        installed.keys().collect::<Vec<_>>()
    );
    for (k, v) in &installed {
        assert_eq!(&rendered[k], v, "{k}");
    }
    let args = &rendered["Deployment/flux-system/image-reflector-controller"]["spec"]["template"]["spec"]
        ["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--receiver-addr=:9292"))
    );
    assert!(rendered.contains_key("Service/flux-system/webhook-receiver"));
    assert!(
        rendered.contains_key("CustomResourceDefinition//receivers.notification.toolkit.fluxcd.io")
    );
}

#[test]
fn values_change_what_they_say() {
    let r = by_key(
        render(json!({
            "image": {"registry": "registry.example.com/tagpilot", "tag": "v9"},
            "replicas": 2,
            "leaderElection": false,
            "watchAllNamespaces": false,
            "watchLabelSelector": "sharding.fluxcd.io/key=shard1",
            "extraArgs": ["--concurrent=8"],
            "crds": {"install": false, "gitRepository": true},
            "podAnnotations": {"team": "platform"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "serviceMonitor": {"enabled": true},
            "reflector": {"resources": {"limits": {"memory": "512Mi"}}},
        }))
        .unwrap(),
    );
    let crds: Vec<&String> = r
        .keys()
        .filter(|k| k.starts_with("CustomResourceDefinition/"))
        .collect();
    assert_eq!(
        crds,
        ["CustomResourceDefinition//gitrepositories.source.toolkit.fluxcd.io"]
    );
    assert_eq!(
        r.keys()
            .filter(|k| k.starts_with("ServiceMonitor/"))
            .count(),
        2
    );
    let d = &r["Deployment/flux-system/image-reflector-controller"];
    assert_eq!(d["spec"]["replicas"], 2);
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["image"],
        "registry.example.com/tagpilot/image-reflector-controller:v9"
    );
    assert!(
        c.get("command").is_none(),
        "the image's entrypoint runs: {c}"
    );
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--watch-all-namespaces=false"));
    assert!(!args.contains(&"--enable-leader-election"));
    assert!(args.contains(&"--watch-label-selector=sharding.fluxcd.io/key=shard1"));
    assert_eq!(args.last(), Some(&"--concurrent=8"));
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(
        c["resources"]["requests"]["memory"], "64Mi",
        "the other defaults stay"
    );
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["team"],
        "platform"
    );
    assert_eq!(pod["nodeSelector"]["kubernetes.io/os"], "linux");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");

    let e = render(json!({"image": {"registry": ""}})).unwrap_err();
    assert!(e.contains("image.registry is required"), "{e}");
}

#[tokio::test]
async fn the_rendered_chart_is_accepted_by_the_api_server() {
    let infra = Infra::get();
    let client = infra.kube_client().await;
    crate::kube_support::namespace(&client, "flux-system", &[]).await;
    let objects = render(json!({})).unwrap();
    let stream: String = objects
        .iter()
        .map(|o| format!("---\n{}", yaml_serde::to_string(o).unwrap()))
        .collect();
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(infra.kubeconfig_path())
        .args([
            "apply",
            "--server-side",
            "--dry-run=server",
            "--force-conflicts",
            "--field-manager=tagpilot-e2e-chart",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stream.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let applied = String::from_utf8_lossy(&out.stdout);
    assert_eq!(applied.lines().count(), objects.len(), "{applied}");
}
