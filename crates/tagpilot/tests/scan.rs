//! `tagpilot scan` against the three real registries.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use tagpilot_testinfra::{Flavour, Infra, unique_name};

fn tagpilot(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tagpilot"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn scans_each_flavour() {
    let dir = tempfile::tempdir().unwrap();
    for flavour in Flavour::ALL.into_iter().chain([Flavour::Mtls]) {
        let reg = Infra::get().registry(flavour);
        let repo = format!("cli/{}", unique_name("app"));
        let digests = reg
            .push_tags(&repo, &["5.0.0", "5.0.3", "v5.0.2", "x.sig"])
            .await
            .unwrap();
        let image = reg.image(&repo);
        let mut args = vec!["scan".to_string(), image.clone()];
        let mut stdin = String::new();
        match flavour {
            Flavour::Plain => args.push("--insecure".into()),
            Flavour::Mtls => {
                let (cert, key) = reg.client_identity.clone().unwrap();
                args.extend(["--cert-file".into(), cert.to_string_lossy().into_owned()]);
                args.extend(["--key-file".into(), key.to_string_lossy().into_owned()]);
            }
            Flavour::Basic => {
                args.extend([
                    "--username".into(),
                    reg.username.clone(),
                    "--password-stdin".into(),
                ]);
                stdin = format!("{}\n", reg.password);
            }
            Flavour::Token => {
                let config = dir.path().join("config.json");
                std::fs::write(
                    &config,
                    format!(
                        r#"{{"auths": {{"{}": {{"username": "{}", "password": "{}"}}}}}}"#,
                        reg.host, reg.username, reg.password
                    ),
                )
                .unwrap();
                args.extend([
                    "--docker-config".into(),
                    config.to_string_lossy().into_owned(),
                ]);
            }
        }
        if let Some(ca) = &reg.ca_file {
            args.extend(["--ca-file".into(), ca.to_string_lossy().into_owned()]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = tagpilot(&argv, &stdin);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{flavour:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "v5.0.2\n5.0.3\n5.0.0\n",
            "{flavour:?}"
        );

        let mut json_args = argv.clone();
        json_args.push("--json");
        let o = tagpilot(&json_args, &stdin);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["canonicalName"], image);
        assert_eq!(v["count"], 3);
        assert_eq!(v["tags"][0], "v5.0.2");

        let mut digest_args = argv.clone();
        digest_args.extend(["--digest", "5.0.3"]);
        let o = tagpilot(&digest_args, &stdin);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            digests[1],
            "{flavour:?}"
        );
    }
}

#[tokio::test]
async fn wrong_password_and_bad_arguments() {
    let reg = Infra::get().registry(Flavour::Basic);
    let ca = reg.ca_file.as_ref().unwrap().to_string_lossy().into_owned();
    let o = tagpilot(
        &[
            "scan",
            &reg.image("cli/whatever"),
            "--username",
            &reg.username,
            "--password-stdin",
            "--ca-file",
            &ca,
        ],
        "not-the-password\n",
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "error: authentication failed for registry {}",
            reg.host
        )),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");

    for args in [
        vec!["scan", "ghcr.io/a/b:1.0"],
        vec!["scan", "https://ghcr.io/a"],
        vec!["scan", "a/b", "--exclude", "(["],
    ] {
        let o = tagpilot(&args, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}
