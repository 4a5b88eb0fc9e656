//! One table of scenarios run through both drivers of the core's decisions: the controllers on the real API
//! server, and `tagpilot run` on the same manifests (with the Namespaces' labels as documents). Every object
//! must end with the same Ready status, reason and message in both (commit IDs masked: each driver pushes to
//! its own copy of the repository).

use std::time::Duration;

use kube::api::DynamicObject;
use serde_json::Value;
use tagpilot_testinfra::{Flavour, Infra, binary_path, unique_name};

use crate::automation::{secret_yaml, seed_repo};
use crate::kube_support::*;

/// The objects of the table; `NS`, `OTHER`, `IMAGE`, `PUSH_URL`, `CURRENT_URL`, `GIT_USER`, `GIT_PASSWORD` are
/// replaced per driver.
const TABLE: &str = r#"
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: good, namespace: NS}
spec: {image: IMAGE, interval: 1h}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: bad-image, namespace: NS}
spec: {image: "http://IMAGE", interval: 1h}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: missing-secret, namespace: NS}
spec: {image: IMAGE, interval: 1h, secretRef: {name: nope}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: malformed-secret, namespace: NS}
spec: {image: IMAGE, interval: 1h, secretRef: {name: not-docker-config}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: provider-mismatch, namespace: NS}
spec: {image: IMAGE, interval: 1h, provider: aws}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: suspended, namespace: NS}
spec: {image: IMAGE, interval: 1h, suspend: true}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: shared, namespace: OTHER}
spec:
  image: IMAGE
  interval: 1h
  accessFrom:
    namespaceSelectors:
      - matchLabels: {team: a}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: private, namespace: OTHER}
spec: {image: IMAGE, interval: 1h}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: latest, namespace: NS, labels: {app: demo}}
spec: {imageRepositoryRef: {name: good}, policy: {semver: {range: ">=1.0.0"}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: missing-repo, namespace: NS}
spec: {imageRepositoryRef: {name: nope}, policy: {semver: {range: ">=1.0.0"}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: bad-range, namespace: NS}
spec: {imageRepositoryRef: {name: good}, policy: {semver: {range: "not a range"}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: bad-regex, namespace: NS}
spec:
  imageRepositoryRef: {name: good}
  filterTags: {pattern: "(unclosed"}
  policy: {alphabetical: {}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: no-match, namespace: NS}
spec: {imageRepositoryRef: {name: good}, policy: {semver: {range: ">=9.0.0"}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: cross-allowed, namespace: NS}
spec: {imageRepositoryRef: {name: shared, namespace: OTHER}, policy: {semver: {range: ">=1.0.0"}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: cross-denied, namespace: NS}
spec: {imageRepositoryRef: {name: private, namespace: OTHER}, policy: {semver: {range: ">=1.0.0"}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: suspended, namespace: NS}
spec: {imageRepositoryRef: {name: good}, suspend: true, policy: {semver: {range: ">=1.0.0"}}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: push, namespace: NS}
spec: {interval: 1h, url: PUSH_URL, ref: {branch: main}, secretRef: {name: git}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: current, namespace: NS}
spec: {interval: 1h, url: CURRENT_URL, ref: {branch: main}, secretRef: {name: git}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: push, namespace: NS}
spec:
  interval: 1h
  sourceRef: {kind: GitRepository, name: push}
  policySelector: {matchLabels: {app: demo}}
  git: {commit: {author: {name: bot, email: bot@example.com}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: nothing-to-do, namespace: NS}
spec:
  interval: 1h
  sourceRef: {kind: GitRepository, name: current}
  policySelector: {matchLabels: {app: demo}}
  git: {commit: {author: {name: bot, email: bot@example.com}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: missing-source, namespace: NS}
spec:
  interval: 1h
  sourceRef: {kind: GitRepository, name: nope}
  git: {commit: {author: {name: bot, email: bot@example.com}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: bad-template, namespace: NS}
spec:
  interval: 1h
  sourceRef: {kind: GitRepository, name: push}
  git: {commit: {author: {name: bot, email: bot@example.com}, messageTemplate: "{{range .Changed.Changes}}"}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: missing-signing-key, namespace: NS}
spec:
  interval: 1h
  sourceRef: {kind: GitRepository, name: current}
  git: {commit: {author: {name: bot, email: bot@example.com}, signingKey: {secretRef: {name: nokey}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: suspended, namespace: NS}
spec:
  interval: 1h
  suspend: true
  sourceRef: {kind: GitRepository, name: push}
  git: {commit: {author: {name: bot, email: bot@example.com}}}
"#;

/// `(kind, name, namespace)` of every object in the table but the suspended ones.
const RESULTS: &[(&str, &str, &str)] = &[
    ("ImageRepository", "good", "NS"),
    ("ImageRepository", "bad-image", "NS"),
    ("ImageRepository", "missing-secret", "NS"),
    ("ImageRepository", "malformed-secret", "NS"),
    ("ImageRepository", "provider-mismatch", "NS"),
    ("ImageRepository", "shared", "OTHER"),
    ("ImageRepository", "private", "OTHER"),
    ("ImagePolicy", "latest", "NS"),
    ("ImagePolicy", "missing-repo", "NS"),
    ("ImagePolicy", "bad-range", "NS"),
    ("ImagePolicy", "bad-regex", "NS"),
    ("ImagePolicy", "no-match", "NS"),
    ("ImagePolicy", "cross-allowed", "NS"),
    ("ImagePolicy", "cross-denied", "NS"),
    ("ImageUpdateAutomation", "push", "NS"),
    ("ImageUpdateAutomation", "nothing-to-do", "NS"),
    ("ImageUpdateAutomation", "missing-source", "NS"),
    ("ImageUpdateAutomation", "bad-template", "NS"),
    ("ImageUpdateAutomation", "missing-signing-key", "NS"),
];

/// `pushed commit 'abc1234' to branch ...` with the ID replaced by `<commit>`.
fn mask_commit(message: &str) -> String {
    match message.find("commit '") {
        Some(i) => {
            let start = i + "commit '".len();
            let end = message[start..]
                .find('\'')
                .map_or(message.len(), |e| start + e);
            format!("{}<commit>{}", &message[..start], &message[end..])
        }
        None => message.to_string(),
    }
}

#[tokio::test]
async fn the_controllers_and_tagpilot_run_agree_on_every_object() {
    let infra = Infra::get();
    crate::reflector::shared_controller();
    crate::automation::shared_controller();
    let client = infra.kube_client().await;
    let git = infra.git();
    let reg = infra.registry(Flavour::Plain);
    let ns = unique_name("agree");
    let other = unique_name("agree-other");
    let repo_path = format!("{ns}/app");
    let image = reg.image(&repo_path);
    reg.push_tags(&repo_path, &["1.0.0", "1.0.1"])
        .await
        .unwrap();
    let marker = format!("# {{\"$imagepolicy\": \"{ns}:latest\"}}");
    let stale = format!("image: {image}:1.0.0 {marker}\n");
    let current = format!("image: {image}:1.0.1 {marker}\n");
    // Each driver gets its own copies of the repositories: both push.
    let repos = || {
        (
            seed_repo(&git, &[("app.yaml", &stale)]),
            seed_repo(&git, &[("app.yaml", &current)]),
        )
    };
    let manifests = |(push, current): &(String, String)| {
        TABLE
            .replace("OTHER", &other)
            .replace("NS", &ns)
            .replace("IMAGE", &image)
            .replace("PUSH_URL", &git.http_url(push))
            .replace("CURRENT_URL", &git.http_url(current))
    };
    let secrets = format!(
        "{}---\n{}",
        secret_yaml(
            &ns,
            "git",
            &[("username", &git.username), ("password", &git.password)]
        ),
        secret_yaml(
            &ns,
            "not-docker-config",
            &[(".dockerconfigjson", "{not json")]
        ),
    );

    // The controllers.
    namespace(&client, &ns, &[("team", "a")]).await;
    namespace(&client, &other, &[]).await;
    let cluster_repos = repos();
    apply_yaml(&client, &secrets).await;
    apply_yaml(&client, &manifests(&cluster_repos)).await;

    // tagpilot run, on the same objects (and the Namespaces' labels).
    let dir = tempfile::tempdir().unwrap();
    let cli_repos = repos();
    let namespaces = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    team: a\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {other}\n"
    );
    std::fs::write(
        dir.path().join("all.yaml"),
        format!("{}---\n{secrets}---\n{namespaces}", manifests(&cli_repos)),
    )
    .unwrap();
    let out = std::process::Command::new(binary_path("tagpilot"))
        .args(["run", "--json", "--manifests"])
        .arg(dir.path().join("all.yaml"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        // No cloud identity in the environment: the provider login fails the same way in both drivers.
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .expect("run tagpilot");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let outcomes: Vec<Value> = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "JSON summary: {e}\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(1), "some objects fail: {stdout}");

    for (kind, name, space) in RESULTS {
        let namespace = if *space == "NS" { &ns } else { &other };
        let cli = outcomes
            .iter()
            .find(|o| o["kind"] == *kind && o["name"] == *name && o["namespace"] == **namespace)
            .unwrap_or_else(|| panic!("tagpilot run: no {kind} {name}: {stdout}"));
        let want = (
            if cli["ready"] == true {
                "True"
            } else {
                "False"
            }
            .to_string(),
            cli["reason"].as_str().unwrap_or_default().to_string(),
            mask_commit(cli["message"].as_str().unwrap_or_default()),
        );
        eprintln!("{kind} {name}: {want:?}");
        let api = image_api(&client, namespace, "v1", kind);
        wait_for(
            &api,
            name,
            Duration::from_secs(90),
            &format!("{kind} {namespace}/{name} as tagpilot run: {want:?}"),
            |o: &DynamicObject| {
                ready(o).map(|(s, r, m)| (s, r, mask_commit(&m))) == Some(want.clone())
            },
        )
        .await;
    }
    // Suspended objects: no result in either.
    for kind in ["ImageRepository", "ImagePolicy", "ImageUpdateAutomation"] {
        let cli = outcomes
            .iter()
            .find(|o| o["kind"] == kind && o["name"] == "suspended")
            .unwrap();
        assert!(cli["reason"].is_null(), "{cli}");
        let obj = image_api(&client, &ns, "v1", kind)
            .get("suspended")
            .await
            .unwrap();
        assert_eq!(
            ready(&obj),
            None,
            "{kind} suspended: {:?}",
            obj.data["status"]
        );
    }
    let pushed = outcomes
        .iter()
        .find(|o| o["kind"] == "ImageUpdateAutomation" && o["name"] == "push")
        .unwrap();
    assert!(pushed["pushedCommit"].is_string(), "{pushed}");
}
