//! The objects that install the controllers (besides the CRDs): ServiceAccounts, least-privilege RBAC,
//! Deployments and metrics Services, generated like the CRDs so that `config/rbac`, `config/manager`,
//! `config/default`, `tagpilot install --export` and the bootstrap all say the same.
//!
//! RBAC holds only what each controller does: the reflector watches and patches its two kinds (finalizer,
//! status), reads ImageRepositories, Secrets, ServiceAccounts and Namespaces (for `accessFrom`); the automation
//! controller watches ImageUpdateAutomations, ImagePolicies and GitRepositories, patches its status and reads
//! Secrets; both create events and hold a Lease in their own namespace.
//!
//! Resources are sized from the measured figures (docs/benchmarks.md): the reflector used 27 MiB at 1,000
//! repositories of 1,000 tags, the automation controller's clones are the largest cost.

use serde_json::{Value, json};

use super::crd;

/// The namespace Flux installs into.
pub const DEFAULT_NAMESPACE: &str = "flux-system";

/// The registry of tagpilot's images (`<registry>/<controller>:<tag>`, as Flux's `ghcr.io/fluxcd`).
pub const DEFAULT_REGISTRY: &str = "ghcr.io/tagpilot";

/// The tag of this version's images.
pub fn default_tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// The controllers' images: one per controller, whose entrypoint is that controller (as Flux's), so that a
/// Flux kustomization's `images:` entry switches a controller by name alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// The registry and path prefix (`ghcr.io/tagpilot`).
    pub registry: String,
    /// The tag (`v0.1.0`).
    pub tag: String,
}

impl Default for Images {
    fn default() -> Images {
        Images {
            registry: DEFAULT_REGISTRY.into(),
            tag: default_tag(),
        }
    }
}

impl Images {
    /// The image of `controller`: `<registry>/<controller>:<tag>`.
    pub fn of(&self, controller: &str) -> String {
        format!(
            "{}/{controller}:{}",
            self.registry.trim_end_matches('/'),
            self.tag
        )
    }
}

/// The two controllers.
pub const CONTROLLERS: [&str; 2] = ["image-reflector-controller", "image-automation-controller"];

fn labels(controller: &str) -> Value {
    json!({
        "app.kubernetes.io/part-of": "tagpilot",
        "app.kubernetes.io/component": controller,
        "app.kubernetes.io/instance": "tagpilot",
    })
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn cluster_rules(controller: &str) -> Vec<Value> {
    // Core v1 Events, as Flux's recorder writes them (and Flux's ClusterRole allows).
    let events = rule(&[""], &["events"], &["create"]);
    let secrets = rule(&[""], &["secrets"], &["get"]);
    // The served CRDs of the kinds whose status it writes: a status write sends only declared fields (Flux's
    // own CRDs declare fewer); without this rule, Flux v1's fields are written.
    let crds = |names: &[&str]| {
        json!({"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
               "resourceNames": names, "verbs": ["get"]})
    };
    match controller {
        "image-reflector-controller" => vec![
            rule(
                &["image.toolkit.fluxcd.io"],
                &["imagerepositories", "imagepolicies"],
                &["get", "list", "watch", "patch"],
            ),
            rule(
                &["image.toolkit.fluxcd.io"],
                &["imagerepositories/status", "imagepolicies/status"],
                &["get", "patch"],
            ),
            secrets,
            rule(&[""], &["serviceaccounts", "namespaces"], &["get"]),
            // tagpilot's spec.verify.trustedRootConfigMapRef.
            rule(&[""], &["configmaps"], &["get"]),
            events,
            rule(
                &["notification.toolkit.fluxcd.io"],
                &["receivers"],
                &["get", "list", "watch"],
            ),
            rule(
                &["notification.toolkit.fluxcd.io"],
                &["receivers/status"],
                &["get", "patch"],
            ),
            crds(&[
                "imagerepositories.image.toolkit.fluxcd.io",
                "imagepolicies.image.toolkit.fluxcd.io",
                "receivers.notification.toolkit.fluxcd.io",
            ]),
        ],
        _ => vec![
            rule(
                &["image.toolkit.fluxcd.io"],
                &["imageupdateautomations", "imagepolicies"],
                &["get", "list", "watch"],
            ),
            rule(
                &["image.toolkit.fluxcd.io"],
                &["imageupdateautomations/status"],
                &["get", "patch"],
            ),
            rule(
                &["source.toolkit.fluxcd.io"],
                &["gitrepositories"],
                &["get", "list", "watch"],
            ),
            secrets,
            events,
            crds(&["imageupdateautomations.image.toolkit.fluxcd.io"]),
        ],
    }
}

/// ServiceAccounts, ClusterRoles and bindings, and the leader-election Role, of both controllers.
pub fn rbac(namespace: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for c in CONTROLLERS {
        let subject = json!([{"kind": "ServiceAccount", "name": c, "namespace": namespace}]);
        out.push(json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": c, "namespace": namespace, "labels": labels(c)},
        }));
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": format!("tagpilot:{c}:{namespace}"), "labels": labels(c)},
            "rules": cluster_rules(c),
        }));
        // Cluster-scoped names carry the install namespace: installs in two namespaces stay apart.
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("tagpilot:{c}:{namespace}"), "labels": labels(c)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("tagpilot:{c}:{namespace}")},
            "subjects": subject,
        }));
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": format!("{c}-leader-election"), "namespace": namespace, "labels": labels(c)},
            "rules": [rule(&["coordination.k8s.io"], &["leases"], &["get", "create", "update"])],
        }));
        out.push(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": format!("{c}-leader-election"), "namespace": namespace, "labels": labels(c)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("{c}-leader-election")},
            "subjects": subject,
        }));
    }
    out
}

/// The Deployments and metrics Services of both controllers.
pub fn manager(namespace: &str, images: &Images) -> Vec<Value> {
    let mut out = Vec::new();
    for c in CONTROLLERS {
        let (data_args, data_mount, memory_limit): (Vec<&str>, &str, &str) = match c {
            "image-reflector-controller" => (vec!["--storage-path=/data"], "/data", "256Mi"),
            _ => (vec!["--work-dir=/tmp"], "/tmp", "1Gi"),
        };
        let mut args = vec![
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--metrics-addr=:8080",
            "--health-addr=:9440",
        ];
        args.extend(data_args);
        out.push(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": c, "namespace": namespace, "labels": labels(c)},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": c}},
                "template": {
                    "metadata": {
                        "labels": {"app": c},
                        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
                    },
                    "spec": {
                        "serviceAccountName": c,
                        "terminationGracePeriodSeconds": 10,
                        "securityContext": {
                            "runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [{
                            "name": "manager",
                            "image": images.of(c),
                            "imagePullPolicy": "IfNotPresent",
                            "args": args,
                            "env": [
                                {"name": "RUNTIME_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            ],
                            "ports": [
                                {"name": "http-prom", "containerPort": 8080, "protocol": "TCP"},
                                {"name": "healthz", "containerPort": 9440, "protocol": "TCP"},
                            ],
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "healthz"}},
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "healthz"}},
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {"cpu": "1000m", "memory": memory_limit},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "data", "mountPath": data_mount}],
                        }],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                    },
                },
            },
        }));
        out.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("{c}-metrics"), "namespace": namespace, "labels": labels(c)},
            "spec": {
                "selector": {"app": c},
                "ports": [{"name": "http-prom", "port": 8080, "targetPort": "http-prom", "protocol": "TCP"}],
            },
        }));
    }
    out
}

/// The namespace object.
pub fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/instance": name}},
    })
}

/// Everything `tagpilot install` applies, in order: the namespace, the CRDs (the GitRepository CRD too with
/// `with_source_crd`), RBAC, the Deployments and Services.
pub fn all(namespace_name: &str, images: &Images, with_source_crd: bool) -> Vec<Value> {
    let mut out = vec![namespace(namespace_name)];
    for c in crd::image_crds() {
        out.push(serde_json::to_value(c).expect("a CRD serialises"));
    }
    if with_source_crd {
        out.push(serde_json::to_value(crd::git_repository_crd()).expect("a CRD serialises"));
    }
    out.extend(rbac(namespace_name));
    out.extend(manager(namespace_name, images));
    out
}

/// The port of the webhook receiver server in the reflector's pod.
pub const RECEIVER_PORT: u16 = 9292;

/// Adds the webhook receivers to installed `objects`: `--receiver-addr` and its port on the reflector's
/// Deployment, the Receiver CRD, and the Service `webhook-receiver` (port 80) in front of it, as Flux's
/// notification-controller has it.
pub fn with_receiver(objects: &mut Vec<Value>, namespace: &str) {
    for o in objects.iter_mut() {
        if o["kind"] == "Deployment" && o["metadata"]["name"] == "image-reflector-controller" {
            let c = &mut o["spec"]["template"]["spec"]["containers"][0];
            if let Some(args) = c["args"].as_array_mut() {
                args.push(json!(format!("--receiver-addr=:{RECEIVER_PORT}")));
            }
            if let Some(ports) = c["ports"].as_array_mut() {
                ports.push(json!({"name": "http-webhook", "containerPort": RECEIVER_PORT, "protocol": "TCP"}));
            }
        }
    }
    let at = objects
        .iter()
        .rposition(|o| o["kind"] == "CustomResourceDefinition")
        .map_or(0, |i| i + 1);
    objects.insert(
        at,
        serde_json::to_value(crd::receiver_crd()).expect("a CRD serialises"),
    );
    let c = "image-reflector-controller";
    objects.push(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "webhook-receiver", "namespace": namespace, "labels": labels(c)},
        "spec": {
            "selector": {"app": c},
            "ports": [{"name": "http", "port": 80, "targetPort": "http-webhook", "protocol": "TCP"}],
        },
    }));
}

/// Objects as one YAML stream (`---` before each).
pub fn to_yaml(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| {
            format!(
                "---\n{}",
                yaml_serde::to_string(o).expect("an object serialises")
            )
        })
        .collect()
}

const HEADER: &str =
    "# Generated by `cargo run -p tagpilot-crdgen` (tagpilot-core::api::install); do not edit.\n";

/// The kustomize files under `config/` besides the CRDs: `rbac/`, `manager/` and `default/` (namespace
/// `flux-system`, everything). `tagpilot install --export` prints the same objects.
pub fn files() -> Vec<crd::CrdFile> {
    let file = |path: &str, yaml: String| crd::CrdFile {
        path: format!("config/{path}"),
        yaml: format!("{HEADER}{yaml}"),
    };
    let kustomization = |resources: &[&str], namespace: Option<&str>| {
        let mut s =
            String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
        if let Some(ns) = namespace {
            s.push_str(&format!("namespace: {ns}\n"));
        }
        s.push_str("resources:\n");
        for r in resources {
            s.push_str(&format!("- {r}\n"));
        }
        s
    };
    vec![
        file("rbac/rbac.yaml", to_yaml(&rbac(DEFAULT_NAMESPACE))),
        file(
            "rbac/kustomization.yaml",
            kustomization(&["rbac.yaml"], None),
        ),
        file(
            "manager/manager.yaml",
            to_yaml(&manager(DEFAULT_NAMESPACE, &Images::default())),
        ),
        file(
            "manager/kustomization.yaml",
            kustomization(&["manager.yaml"], None),
        ),
        file(
            "default/namespace.yaml",
            to_yaml(&[namespace(DEFAULT_NAMESPACE)]),
        ),
        file(
            "default/kustomization.yaml",
            kustomization(
                &["namespace.yaml", "../crd", "../rbac", "../manager"],
                Some(DEFAULT_NAMESPACE),
            ),
        ),
    ]
}

/// The Helm chart's CRD template (`charts/tagpilot/templates/crds.yaml`), each CRD annotated
/// `helm.sh/resource-policy: keep` under `.Values.crds.keep`: the image CRDs under `.Values.crds.install`, the Receiver CRD when the receivers are enabled too, the GitRepository CRD under
/// `.Values.crds.gitRepository`.
pub fn chart_crds_file() -> crd::CrdFile {
    // `helm uninstall` keeps the CRDs, and with them every user's image object (crds.keep, on by default).
    let body = |c: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition| {
        assert!(c.metadata.annotations.is_none(), "the keep annotation is the CRDs' only one");
        // A description may show template syntax (`{{ .Policy.Name }}`): Helm must print it, not run it.
        let yaml = yaml_serde::to_string(c)
            .expect("a CRD serialises")
            .replace("{{", "{{ \"{{\" }}");
        let keep = "metadata:\n{{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n{{- end }}\n";
        format!("---\n{}", yaml.replacen("metadata:\n", keep, 1))
    };
    let mut yaml = String::from(
        "{{- /* Generated by `cargo run -p tagpilot-crdgen` (tagpilot-core::api::install); do not edit. */ -}}\n\
         {{- if .Values.crds.install }}\n",
    );
    for c in crd::image_crds() {
        yaml.push_str(&body(&c));
    }
    yaml.push_str("{{- end }}\n{{- if and .Values.crds.install .Values.receiver.enabled }}\n");
    yaml.push_str(&body(&crd::receiver_crd()));
    yaml.push_str("{{- end }}\n{{- if .Values.crds.gitRepository }}\n");
    yaml.push_str(&body(&crd::git_repository_crd()));
    yaml.push_str("{{- end }}\n");
    crd::CrdFile {
        path: "charts/tagpilot/templates/crds.yaml".into(),
        yaml,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_privilege_rules() {
        let objects = rbac("flux-system");
        let role = |name: &str| {
            objects
                .iter()
                .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == name)
                .unwrap()
                .clone()
        };
        let reflector = role("tagpilot:image-reflector-controller:flux-system");
        let text = reflector.to_string();
        assert!(!text.contains("\"*\""), "no wildcards: {text}");
        assert!(!text.contains("\"delete\""), "{text}");
        for r in reflector["rules"].as_array().unwrap() {
            if r["resources"][0] == "secrets" {
                assert_eq!(r["verbs"], json!(["get"]), "secrets: get only");
            }
        }
        let automation = role("tagpilot:image-automation-controller:flux-system").to_string();
        assert!(automation.contains("gitrepositories"));
        assert!(!automation.contains("imagerepositories"), "{automation}");
    }

    #[test]
    fn deployments_are_hardened() {
        let m = manager(
            "flux-system",
            &Images {
                registry: "example".into(),
                tag: "v1".into(),
            },
        );
        let d = &m[0];
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsUser"], 65534);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        // No command: the image's entrypoint is the controller, as in Flux's Deployments.
        assert!(c.get("command").is_none(), "{c}");
        assert_eq!(c["image"], "example/image-reflector-controller:v1");
        assert!(
            c["args"]
                .as_array()
                .unwrap()
                .contains(&json!("--enable-leader-election"))
        );
    }
}
