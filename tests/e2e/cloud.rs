//! Cloud registry logins against loopback stand-ins of the cloud endpoints (`hack/testinfra/aws-fake.py`,
//! which checks SigV4 signatures with an implementation of its own), ending in a real tag listing from the
//! bearer-token docker-registry with the credentials the chain produced.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;
use tagpilot_core::cloud::aws::{EcrLogins, Env};
use tagpilot_core::registry::{
    Credentials, DEFAULT_EXCLUSIONS, Exclusions, ImageName, RegistryClient, ScanRequest, Transport,
};
use tagpilot_testinfra::{Flavour, Infra, unique_name};

/// Environment variables.
type EnvVars<'a> = Vec<(&'a str, &'a str)>;

const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// The fake AWS endpoints, stopped (by PID) when dropped.
struct AwsFake {
    child: Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for AwsFake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AwsFake {
    fn start() -> AwsFake {
        let reg = Infra::get().registry(Flavour::Token);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        std::fs::write(
            &state,
            json!({
                "keys": {"AKIDENV": "env-secret", "ASIASTS": "sts-secret", "ASIAIMDS": "imds-secret"},
                "web_identity_token": "eyJhbGciOiJSUzI1NiJ9.web-identity.sig",
                "sts_credentials": {"id": "ASIASTS", "secret": "sts-secret", "token": "sts-session"},
                "imds_credentials": {"id": "ASIAIMDS", "secret": "imds-secret", "token": "imds-session"},
                "registry_username": reg.username,
                "registry_password": reg.password,
            })
            .to_string(),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .arg(Infra::get().scripts_dir().join("aws-fake.py"))
            .arg(port.to_string())
            .arg(&state)
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "aws-fake.py did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        AwsFake {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log: state.with_extension("json.log"),
            _dir: dir,
        }
    }

    /// The verdicts the fake logged, in order.
    fn verdicts(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["verdict"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    fn env(&self, extra: &[(&str, &str)]) -> Env {
        let mut vars = vec![
            ("AWS_ENDPOINT_URL_ECR", self.url.as_str()),
            ("AWS_ENDPOINT_URL_STS", self.url.as_str()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", self.url.as_str()),
        ];
        vars.extend_from_slice(extra);
        Env::of(&vars)
    }
}

/// Lists the tags of `repo` on the bearer-token registry with `credentials`.
async fn list(repo: &str, credentials: &Credentials) -> Vec<String> {
    let reg = Infra::get().registry(Flavour::Token);
    let image = ImageName::parse(&reg.image(repo)).unwrap();
    let transport = Transport {
        ca_pem: reg.ca_file.as_ref().map(|f| std::fs::read(f).unwrap()),
        ..Transport::default()
    };
    RegistryClient::default()
        .list_tags(&ScanRequest {
            image: &image,
            credentials,
            transport: &transport,
            exclusions: &Exclusions::new(DEFAULT_EXCLUSIONS).unwrap(),
            page_size: 1000,
            timeout: Duration::from_secs(30),
        })
        .await
        .unwrap()
        .tags
}

#[tokio::test]
async fn ecr_logins_by_each_credential_source_end_in_a_real_tag_listing() {
    let fake = AwsFake::start();
    let reg = Infra::get().registry(Flavour::Token);
    let repo = format!("ecr/{}", unique_name("app"));
    reg.push_tags(&repo, &["1.0.0", "1.1.0"]).await.unwrap();
    let http = reqwest::Client::new();
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.web-identity.sig\n").unwrap();
    let token_path = token_file.display().to_string();
    // (source, environment, the fake's log entry that proves the source was used)
    let sources: [(&str, EnvVars, &str); 3] = [
        (
            "environment",
            vec![
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ],
            "signed",
        ),
        (
            "web identity",
            vec![
                ("AWS_WEB_IDENTITY_TOKEN_FILE", &token_path),
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/tagpilot"),
            ],
            "assumed",
        ),
        ("instance metadata", vec![], "imds credentials"),
    ];
    for (name, vars, step) in sources {
        let logins = EcrLogins::default();
        let env = fake.env(&vars);
        let creds = logins
            .credentials_for(&http, &env, ECR_HOST)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut tags = list(&repo, &creds).await;
        tags.sort();
        assert_eq!(tags, ["1.0.0", "1.1.0"], "{name}");
        let verdicts = fake.verdicts();
        assert!(verdicts.contains(&step.to_string()), "{name}: {verdicts:?}");
        assert_eq!(
            verdicts.last().map(String::as_str),
            Some("signed"),
            "{name}: {verdicts:?}"
        );
        // The login is cached: no second GetAuthorizationToken.
        let before = fake.verdicts().len();
        logins.credentials_for(&http, &env, ECR_HOST).await.unwrap();
        assert_eq!(fake.verdicts().len(), before, "{name}: cached");
    }
}

#[tokio::test]
async fn a_bad_signature_or_token_names_the_step_and_the_answer_but_no_secret() {
    let fake = AwsFake::start();
    let http = reqwest::Client::new();
    let env = fake.env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "wrong-secret"),
    ]);
    let e = EcrLogins::default()
        .credentials_for(&http, &env, ECR_HOST)
        .await
        .unwrap_err();
    assert_eq!(e.step, "ECR GetAuthorizationToken");
    assert!(
        e.message
            .contains("The request signature we calculated does not match"),
        "{e}"
    );
    assert!(!e.to_string().contains("wrong-secret"));

    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "not-the-token").unwrap();
    let path = token_file.display().to_string();
    let env = fake.env(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", &path),
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/x"),
    ]);
    let e = EcrLogins::default()
        .credentials_for(&http, &env, ECR_HOST)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("web identity (STS AssumeRoleWithWebIdentity)"),
        "{e}"
    );
    assert!(
        e.to_string().contains("Couldn't retrieve verification key"),
        "{e}"
    );

    let e = EcrLogins::default()
        .credentials_for(&http, &env, "ghcr.io")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("\"ghcr.io\" is not an ECR registry"),
        "{e}"
    );
}
