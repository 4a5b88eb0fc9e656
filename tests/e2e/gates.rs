//! tagpilot's ImagePolicy gates end to end: images pushed to the real registry with chosen creation times,
//! single- and multi-platform, signed in the test (cosign's simple-signing layout) with a key generated here and
//! keylessly by a test CA standing in for Fulcio; unsigned, tampered and other-digest signatures beside them.
//! The same policies run through the reflector on the real API server and through `tagpilot run`: both pick
//! the same tags, and the controller's messages name what was skipped and why.

use std::time::Duration;

use kube::api::DynamicObject;
use tagpilot_testinfra::cosign::{self as signer, KeyPair, Sigstore};
use tagpilot_testinfra::{Flavour, Infra, Registry, binary_path, unique_name};

use crate::automation::secret_yaml;
use crate::kube_support::*;

/// An RFC 3339 time `hours` before now (whole seconds).
fn hours_ago(hours: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(hours);
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

/// The images of the key-signed repository: tag, hours since built, architectures, how it is signed.
enum Signed {
    Yes,
    No,
    /// A valid signature, but over the payload of another digest.
    OtherDigest,
    /// The stored payload differs from the signed one by a byte.
    Tampered,
}

const KEYED: &[(&str, i64, &[&str], Signed)] = &[
    ("1.0.0", 240, &["amd64", "arm64"], Signed::Yes),
    ("1.1.0", 216, &["amd64"], Signed::Yes),
    ("1.2.0", 1, &["amd64", "arm64"], Signed::Yes),
    ("1.3.0", 192, &["amd64", "arm64"], Signed::No),
    ("1.4.0", 168, &["amd64", "arm64"], Signed::OtherDigest),
    ("1.5.0", 144, &["amd64", "arm64"], Signed::Tampered),
];

async fn push_keyed(reg: &Registry, repo: &str, key: &KeyPair) {
    let image = reg.image(repo);
    let mut first = String::new();
    for (tag, hours, arches, signed) in KEYED {
        let digest = reg
            .push_built(repo, tag, &hours_ago(*hours), arches)
            .await
            .unwrap();
        if first.is_empty() {
            first = digest.clone();
        }
        let layer = match signed {
            Signed::No => continue,
            Signed::Yes => key.layer(&signer::payload(&image, &digest)),
            Signed::OtherDigest => key.layer(&signer::payload(&image, &first)),
            Signed::Tampered => {
                let mut l = key.layer(&signer::payload(&image, &digest));
                let at = l.payload.iter().position(|b| *b == b'"').unwrap();
                l.payload.insert(at, b' ');
                l
            }
        };
        reg.push_signatures(repo, &digest, &[layer]).await.unwrap();
    }
}

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const WORKFLOW: &str = "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main";

async fn push_keyless(reg: &Registry, repo: &str, store: &Sigstore) {
    let image = reg.image(repo);
    for (tag, subject) in [
        ("2.0.0", Some(WORKFLOW)),
        (
            "2.1.0",
            Some("https://github.com/evil/fork/.github/workflows/x.yml@refs/heads/main"),
        ),
        ("2.2.0", None),
    ] {
        let digest = reg
            .push_built(repo, tag, &hours_ago(100), &["amd64"])
            .await
            .unwrap();
        if let Some(subject) = subject {
            let layer = store
                .layer(&signer::payload(&image, &digest), subject, ISSUER, None)
                .unwrap();
            reg.push_signatures(repo, &digest, &[layer]).await.unwrap();
        }
    }
}

/// cosign v3's layout: Sigstore bundles as referrers (the registry has no referrers API: the fallback tag).
async fn push_bundled(reg: &Registry, repo: &str, key: &KeyPair, store: &Sigstore) {
    let evil = "https://github.com/evil/fork/.github/workflows/x.yml@refs/heads/main";
    for tag in ["3.0.0", "3.1.0", "3.2.0"] {
        let digest = reg
            .push_built(repo, tag, &hours_ago(100), &["amd64"])
            .await
            .unwrap();
        let bundle = match tag {
            "3.0.0" => key.bundle(&digest),
            "3.1.0" => store.bundle(&digest, WORKFLOW, ISSUER).unwrap(),
            _ => store.bundle(&digest, evil, ISSUER).unwrap(),
        };
        reg.push_bundle(repo, &digest, &bundle).await.unwrap();
    }
}

/// The policies: `name`, the spec's body after `imageRepositoryRef`, and what both drivers must give:
/// the Ready status, the reason, and the tag (for Ready=True).
const POLICIES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "signed",
        "keyed",
        "policy: {semver: {range: '>=1.0.0'}}\n  verify: {secretRef: {name: cosign-keys}}",
        "True",
        "1.2.0",
    ),
    (
        "settled",
        "keyed",
        "policy: {semver: {range: '>=1.0.0'}}\n  verify: {secretRef: {name: cosign-keys}}\n  minimumAge: 72h",
        "True",
        "1.1.0",
    ),
    (
        "arm",
        "keyed",
        "policy: {semver: {range: '>=1.0.0'}}\n  verify: {secretRef: {name: cosign-keys}}\n  minimumAge: 72h\n  platforms: [linux/arm64]",
        "True",
        "1.0.0",
    ),
    (
        "arm-only",
        "keyed",
        "policy: {semver: {range: '>=1.0.0'}}\n  platforms: [linux/arm64, linux/amd64]",
        "True",
        "1.5.0",
    ),
    (
        "newest",
        "keyed",
        "policy: {newestBuild: {}}",
        "True",
        "1.2.0",
    ),
    (
        "newest-settled",
        "keyed",
        "policy: {newestBuild: {}}\n  minimumAge: 72h",
        "True",
        "1.5.0",
    ),
    (
        "newest-filtered",
        "keyed",
        "policy: {newestBuild: {}}\n  filterTags: {pattern: '^1\\.[01]\\.'}",
        "True",
        "1.1.0",
    ),
    (
        "first-seen",
        "keyed",
        "policy: {semver: {range: '>=1.0.0'}}\n  minimumAge: 72h\n  ageSource: FirstSeen",
        "False",
        "NoEligibleTag",
    ),
    (
        "keyless",
        "keyless",
        "policy: {semver: {range: '>=2.0.0'}}\n  verify:\n    matchOIDCIdentity: [{issuer: 'https://token\\.actions\\.githubusercontent\\.com', subject: 'https://github\\.com/org/app/.*'}]\n    trustedRootSecretRef: {name: trusted-root}",
        "True",
        "2.0.0",
    ),
    (
        "bundle-keys",
        "bundled",
        "policy: {semver: {range: '>=3.0.0'}}\n  verify: {secretRef: {name: cosign-keys}}",
        "True",
        "3.0.0",
    ),
    (
        "bundle-keyless",
        "bundled",
        "policy: {semver: {range: '>=3.0.0'}}\n  verify:\n    matchOIDCIdentity: [{issuer: 'https://token\\.actions\\.githubusercontent\\.com', subject: 'https://github\\.com/org/app/.*'}]\n    trustedRootSecretRef: {name: trusted-root}",
        "True",
        "3.1.0",
    ),
    (
        "keyless-configmap",
        "keyless",
        "policy: {semver: {range: '>=2.0.0'}}\n  verify:\n    matchOIDCIdentity: [{issuer: 'https://token\\.actions\\.githubusercontent\\.com', subject: 'https://github\\.com/org/app/.*'}]\n    trustedRootConfigMapRef: {name: trusted-root}",
        "True",
        "2.0.0",
    ),
    (
        "unsigned-only",
        "keyed",
        "policy: {semver: {range: '1.3.x'}}\n  verify: {secretRef: {name: cosign-keys}}",
        "False",
        "VerificationFailed",
    ),
    (
        "no-keys",
        "keyed",
        "policy: {semver: {range: '>=1.0.0'}}\n  verify: {secretRef: {name: not-keys}}",
        "False",
        "VerificationFailed",
    ),
    (
        "keyless-no-root",
        "keyless",
        "policy: {semver: {range: '>=2.0.0'}}\n  verify:\n    matchOIDCIdentity: [{issuer: '.*', subject: '.*'}]",
        "False",
        "InvalidPolicy",
    ),
    (
        "bad-platform",
        "keyed",
        "policy: {semver: {range: '>=1.0.0'}}\n  platforms: [arm64]",
        "False",
        "InvalidPolicy",
    ),
];

fn manifests(ns: &str, images: &[(&str, String)], secrets: &str) -> String {
    let mut out = String::new();
    for (name, image) in images {
        out.push_str(&format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec: {{image: {image}, interval: 1h}}\n---\n"
        ));
    }
    out.push_str(secrets);
    for (name, repo, body, _, _) in POLICIES {
        out.push_str(&format!(
            "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {{name: {name}, namespace: {ns}}}\n\
             spec:\n  imageRepositoryRef: {{name: {repo}}}\n  {body}\n"
        ));
    }
    out
}

#[tokio::test]
async fn each_gate_picks_the_same_tag_in_the_reflector_and_in_tagpilot_run() {
    let infra = Infra::get();
    crate::reflector::shared_controller();
    let client = infra.kube_client().await;
    let reg = infra.registry(Flavour::Plain);
    let ns = unique_name("gates");
    let key = KeyPair::generate();
    let store = Sigstore::new().unwrap();
    let (keyed_repo, keyless_repo, bundled_repo) = (
        format!("{ns}/keyed"),
        format!("{ns}/keyless"),
        format!("{ns}/bundled"),
    );
    push_keyed(&reg, &keyed_repo, &key).await;
    push_keyless(&reg, &keyless_repo, &store).await;
    push_bundled(&reg, &bundled_repo, &key, &store).await;
    let config_map = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: trusted-root, namespace: {ns}}}\n\
         data:\n  trusted_root.json: {}\n",
        serde_json::to_string(&store.trusted_root()).unwrap()
    );
    let secrets = format!(
        "{config_map}---\n{}---\n{}---\n{}",
        secret_yaml(&ns, "cosign-keys", &[("cosign.pub", &key.public_pem())]),
        secret_yaml(
            &ns,
            "trusted-root",
            &[("trusted_root.json", &store.trusted_root())]
        ),
        secret_yaml(&ns, "not-keys", &[("README", "no keys here")]),
    );
    let all = manifests(
        &ns,
        &[
            ("keyed", reg.image(&keyed_repo)),
            ("keyless", reg.image(&keyless_repo)),
            ("bundled", reg.image(&bundled_repo)),
        ],
        &secrets,
    );

    namespace(&client, &ns, &[]).await;
    apply_yaml(&client, &all).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("all.yaml"), &all).unwrap();
    let (manifests, state) = (dir.path().join("all.yaml"), dir.path().join("state"));
    let (_, outcomes, _) = crate::cli_run::run(
        &[
            "--manifests",
            manifests.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
        &[],
    );

    let api = image_api(&client, &ns, "v1", "ImagePolicy");
    for (name, _, _, status, expect) in POLICIES {
        let cli = outcomes
            .iter()
            .find(|o| o["kind"] == "ImagePolicy" && o["name"] == *name)
            .unwrap_or_else(|| panic!("tagpilot run: no ImagePolicy {name}: {outcomes:?}"));
        let cli_ready = if cli["ready"] == true {
            "True"
        } else {
            "False"
        };
        assert_eq!(cli_ready, *status, "tagpilot run, {name}: {cli}");
        let cli_message = cli["message"].as_str().unwrap_or_default();
        if *status == "True" {
            assert!(
                cli_message.contains(&format!("resolved to {expect}")),
                "tagpilot run, {name}: {cli}"
            );
        } else {
            assert_eq!(cli["reason"], *expect, "tagpilot run, {name}: {cli}");
        }
        let obj = wait_for(
            &api,
            name,
            Duration::from_secs(90),
            &format!("ImagePolicy {name}: {status} {expect}"),
            |o: &DynamicObject| {
                let Some((s, r, _)) = ready(o) else {
                    return false;
                };
                if *status == "True" {
                    s == "True" && o.data["status"]["latestRef"]["tag"] == *expect
                } else {
                    s == "False" && r == *expect
                }
            },
        )
        .await;
        let message = ready_message(&obj);
        eprintln!("{name}: {message}");
        // The same words in both drivers, but for times that depend on when each saw the tags first.
        if *name != "first-seen" {
            assert_eq!(message, cli_message, "{name}: the drivers disagree");
        }
    }

    // What the messages say about the skipped tags.
    let msg = |name: &str| {
        let api = api.clone();
        let name = name.to_string();
        async move { ready_message(&api.get(&name).await.unwrap()) }
    };
    let signed = msg("signed").await;
    for part in [
        "skipped newer: 1.5.0 (no valid cosign signature: signature does not verify",
        "1.4.0 (no valid cosign signature: a signature for another image",
        "1.3.0 (not signed: no cosign signature (sha256-",
    ] {
        assert!(signed.contains(part), "{part:?} not in {signed}");
    }
    let settled = msg("settled").await;
    assert!(
        settled.contains("1.2.0 (built ")
            && settled.contains("younger than minimumAge 72h0m0s; eligible at"),
        "{settled}"
    );
    let arm = msg("arm").await;
    assert!(
        arm.contains("1.1.0 (lacks platform linux/arm64 (has linux/amd64))"),
        "{arm}"
    );
    let keyless = msg("keyless").await;
    assert!(
        keyless.contains("2.2.0 (not signed")
            && keyless.contains(
                "2.1.0 (no valid cosign signature: signed by https://github.com/evil/fork"
            ),
        "{keyless}"
    );
    let bundled = msg("bundle-keyless").await;
    assert!(
        bundled
            .contains("3.2.0 (no valid cosign signature: signed by https://github.com/evil/fork"),
        "{bundled}"
    );
    let no_keys = msg("no-keys").await;
    assert!(
        no_keys.contains(&format!(
            "secret '{ns}/not-keys' (spec.verify.secretRef) has no '*.pub' key"
        )),
        "{no_keys}"
    );
    let bad = msg("bad-platform").await;
    assert!(bad.contains("spec.platforms[0] \"arm64\""), "{bad}");

    // A skipped signature is an event (the policy's Ready announcement names it).
    let events = events_of(&client, &ns, "ImagePolicy", "signed").await;
    assert!(
        events.iter().any(|e| e.contains("skipped newer: 1.5.0")),
        "{events:?}"
    );
}

/// The messages of the Kubernetes Events about one object.
async fn events_of(client: &kube::Client, ns: &str, kind: &str, name: &str) -> Vec<String> {
    let api: kube::Api<k8s_openapi::api::core::v1::Event> =
        kube::Api::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list = api.list(&Default::default()).await.unwrap();
        let found: Vec<String> = list
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some(kind)
                    && e.involved_object.name.as_deref() == Some(name)
            })
            .filter_map(|e| e.message)
            .collect();
        if !found.is_empty() || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Four images get a new tag within seconds; an automation with `quietPeriod` waits until its policies have
/// been still for the period, then pushes one commit naming all four.
#[tokio::test]
async fn a_burst_of_four_tags_gives_one_commit() {
    let infra = Infra::get();
    crate::reflector::shared_controller();
    crate::automation::shared_controller();
    let client = infra.kube_client().await;
    let reg = infra.registry(Flavour::Plain);
    let git = infra.git();
    let ns = unique_name("burst");
    namespace(&client, &ns, &[]).await;
    let apps = ["api", "web", "worker", "cron"];
    let mut file = String::new();
    let mut objects = String::new();
    for app in apps {
        let path = format!("{ns}/{app}");
        reg.push_tags(&path, &["1.0.0"]).await.unwrap();
        let image = reg.image(&path);
        file.push_str(&format!(
            "{app}: {image}:1.0.0 # {{\"$imagepolicy\": \"{ns}:{app}\"}}\n"
        ));
        objects.push_str(&format!(
            "---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: {app}, namespace: {ns}}}\n\
             spec: {{image: {image}, interval: 1h}}\n\
             ---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {{name: {app}, namespace: {ns}}}\n\
             spec: {{imageRepositoryRef: {{name: {app}}}, policy: {{semver: {{range: 1.0.x}}}}}}\n"
        ));
    }
    let repo = crate::automation::seed_repo(&git, &[("apps.yaml", &file)]);
    crate::automation::http_source(&client, &git, &ns, "source", &repo).await;
    apply_yaml(&client, &objects).await;
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    for app in apps {
        wait_ready(&policies, app).await;
    }
    let template = "Burst\n{{ range .Changed.Changes }}- {{ .NewValue }}\n{{ end }}";
    apply_yaml(
        &client,
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\nmetadata: {{name: burst, namespace: {ns}}}\n\
             spec:\n  interval: 1h\n  quietPeriod: 15s\n  sourceRef: {{kind: GitRepository, name: source}}\n\
             \x20 git:\n    commit:\n      author: {{name: bot, email: bot@example.com}}\n      messageTemplate: {}\n",
            serde_json::to_string(template).unwrap()
        ),
    )
    .await;
    let autos = image_api(&client, &ns, "v1", "ImageUpdateAutomation");
    // The first run does not wait (nothing to gather): up to date.
    wait_for(&autos, "burst", Duration::from_secs(60), "first run", |o| {
        ready(o).is_some_and(|(s, _, m)| s == "True" && m == "repository up-to-date")
    })
    .await;
    let before = crate::automation::head(&git, &repo, "main");

    // The burst: a new tag for each image, a scan asked for each, a second apart.
    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    for app in apps {
        reg.push_tags(&format!("{ns}/{app}"), &["1.0.1"])
            .await
            .unwrap();
        request_reconcile(&repos, app).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // While the policies settle, the automation says it waits (and pushes nothing).
    wait_for(
        &autos,
        "burst",
        Duration::from_secs(30),
        "waiting for the quiet period",
        |o| {
            ready(o).is_some_and(|(_, _, m)| {
                m.starts_with("waiting for the quiet period (spec.quietPeriod 15s)")
            })
        },
    )
    .await;
    assert_eq!(crate::automation::head(&git, &repo, "main"), before);
    let (pushed, _) =
        crate::automation::wait_head_change(&git, &repo, "main", before, Duration::from_secs(120))
            .await;
    let facts = crate::automation::commit_facts(&git, &repo, pushed);
    assert_eq!(
        facts.parents,
        before.into_iter().collect::<Vec<_>>(),
        "one commit"
    );
    for app in apps {
        let image = reg.image(&format!("{ns}/{app}"));
        assert!(
            facts.message.contains(&format!("- {image}:1.0.1")),
            "{app} not in {}",
            facts.message
        );
    }
    assert_eq!(facts.changes["apps.yaml"].len(), 8, "{:?}", facts.changes);
    wait_for(&autos, "burst", Duration::from_secs(30), "pushed", |o| {
        ready(o).is_some_and(|(s, _, m)| s == "True" && m.starts_with("pushed commit"))
    })
    .await;
}

/// A tag too young for `minimumAge` becomes the latest on its own once it is old enough: the reflector
/// requeues the policy for that moment, with no further scan of the repository.
#[tokio::test]
async fn a_young_tag_becomes_eligible_without_another_scan() {
    let infra = Infra::get();
    crate::reflector::shared_controller();
    let client = infra.kube_client().await;
    let reg = infra.registry(Flavour::Plain);
    let ns = unique_name("age");
    namespace(&client, &ns, &[]).await;
    let path = format!("{ns}/app");
    reg.push_tags(&path, &["1.0.0"]).await.unwrap();
    apply_yaml(
        &client,
        &format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: app, namespace: {ns}}}\n\
             spec: {{image: {}, interval: 1h}}\n---\n\
             apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {{name: app, namespace: {ns}}}\n\
             spec:\n  imageRepositoryRef: {{name: app}}\n  policy: {{semver: {{range: '>=1.0.0'}}}}\n\
             \x20 minimumAge: 10s\n  ageSource: FirstSeen\n",
            reg.image(&path)
        ),
    )
    .await;
    let policies = image_api(&client, &ns, "v1", "ImagePolicy");
    let repos = image_api(&client, &ns, "v1", "ImageRepository");
    // Every tag was first seen by the first scan: none is old enough yet.
    let young = wait_not_ready(&policies, "app", "NoEligibleTag").await;
    assert!(
        ready_message(&young).contains("1.0.0 (first seen "),
        "{}",
        ready_message(&young)
    );
    let scanned =
        wait_ready(&repos, "app").await.data["status"]["lastScanResult"]["scanTime"].clone();
    wait_for(
        &policies,
        "app",
        Duration::from_secs(60),
        "1.0.0 once 10 s old",
        |o| o.data["status"]["latestRef"]["tag"] == "1.0.0",
    )
    .await;

    // A newer tag: the last pick stands, naming it, until it is old enough.
    reg.push_tags(&path, &["1.1.0"]).await.unwrap();
    request_reconcile(&repos, "app").await;
    let waiting = wait_for(
        &policies,
        "app",
        Duration::from_secs(30),
        "1.1.0 skipped",
        |o| ready_message(o).contains("skipped newer: 1.1.0 (first seen "),
    )
    .await;
    assert_eq!(waiting.data["status"]["latestRef"]["tag"], "1.0.0");
    let rescanned =
        repos.get("app").await.unwrap().data["status"]["lastScanResult"]["scanTime"].clone();
    assert_ne!(rescanned, scanned);
    wait_for(
        &policies,
        "app",
        Duration::from_secs(60),
        "1.1.0 once 10 s old",
        |o| o.data["status"]["latestRef"]["tag"] == "1.1.0",
    )
    .await;
    let last = repos.get("app").await.unwrap().data["status"]["lastScanResult"]["scanTime"].clone();
    assert_eq!(last, rescanned, "no scan in between");
}

/// `tagpilot policy select --image` checks the same gates against the registry, without a cluster; bad gate
/// flags are refused by name.
#[tokio::test]
async fn policy_select_checks_the_gates_against_the_registry() {
    let infra = Infra::get();
    let reg = infra.registry(Flavour::Plain);
    let ns = unique_name("select-gates");
    let key = KeyPair::generate();
    let store = Sigstore::new().unwrap();
    let repo = format!("{ns}/keyed");
    push_keyed(&reg, &repo, &key).await;
    let dir = tempfile::tempdir().unwrap();
    let pub_key = dir.path().join("cosign.pub");
    std::fs::write(&pub_key, key.public_pem()).unwrap();
    let root = dir.path().join("trusted_root.json");
    std::fs::write(&root, store.trusted_root()).unwrap();
    let image = reg.image(&repo);
    let select = |args: &[&str]| {
        let out = std::process::Command::new(binary_path("tagpilot"))
            .args(["policy", "select", "--image", &image])
            .args(args)
            .output()
            .expect("run tagpilot");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let key_arg = pub_key.to_str().unwrap();
    // The same picks as the reflector's policies `signed`, `settled`, `arm`, `newest-settled`.
    for (args, want) in [
        (
            vec!["--semver", ">=1.0.0", "--verify-key", key_arg],
            "1.2.0",
        ),
        (
            vec![
                "--semver",
                ">=1.0.0",
                "--verify-key",
                key_arg,
                "--minimum-age",
                "72h",
            ],
            "1.1.0",
        ),
        (
            vec![
                "--semver",
                ">=1.0.0",
                "--verify-key",
                key_arg,
                "--minimum-age",
                "72h",
                "--platform",
                "linux/arm64",
            ],
            "1.0.0",
        ),
        (vec!["--newest-build", "--minimum-age", "72h"], "1.5.0"),
    ] {
        let (code, tag, stderr) = select(&args);
        assert_eq!((code, tag.as_str()), (Some(0), want), "{args:?}: {stderr}");
    }
    let (_, _, stderr) = select(&["--semver", ">=1.0.0", "--verify-key", key_arg]);
    assert!(stderr.contains("skipped 1.3.0: not signed"), "{stderr}");
    // Nothing verifies keylessly here: exit 1, each candidate named.
    let (code, _, stderr) = select(&[
        "--semver",
        ">=1.0.0",
        "--verify-trusted-root",
        root.to_str().unwrap(),
        "--verify-subject",
        ".*",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("no candidate tag passes the policy's gates"),
        "{stderr}"
    );
    // Bad flags: exit 2, the field and value named.
    let (code, _, stderr) = select(&["--semver", ">=1.0.0", "--platform", "arm64"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("spec.platforms[0] \"arm64\""), "{stderr}");
    let (code, _, stderr) = select(&["--semver", ">=1.0.0", "--minimum-age", "3 days"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("spec.minimumAge \"3 days\""), "{stderr}");
    // A gate without --image.
    let out = std::process::Command::new(binary_path("tagpilot"))
        .args(["policy", "select", "--semver", "1.x", "--minimum-age", "1h"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("need --image"));
}
