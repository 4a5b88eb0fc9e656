//! Cloud registry logins (AWS, GCP, Azure) against loopback stand-ins of the cloud endpoints
//! (`hack/testinfra/cloud-fake.py`, which checks SigV4 signatures with an implementation of its own), each chain
//! ending in a real tag listing from the bearer-token docker-registry with the credentials it produced (the
//! token server accepts the logins the fake hands out, as the cloud registries accept theirs).

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::json;
use tagpilot_core::cloud::{Env, Logins};
use tagpilot_core::registry::{
    Credentials, DEFAULT_EXCLUSIONS, Exclusions, ImageName, RegistryClient, ScanRequest, Transport,
};
use tagpilot_testinfra::{Flavour, Infra, unique_name};

/// Environment variables.
type EnvVars<'a> = Vec<(&'a str, &'a str)>;

const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// The fake AWS endpoints, stopped (by PID) when dropped.
struct CloudFake {
    child: Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for CloudFake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CloudFake {
    fn start() -> CloudFake {
        let reg = Infra::get().registry(Flavour::Token);
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let gcp_token = unique_name("ya29.gcp-token");
        let acr_refresh = unique_name("acr-refresh");
        // The registry's token server accepts the logins the fake hands out.
        let mut users = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Infra::get().path("REGISTRY_TOKEN_EXTRA_USERS"))
            .unwrap();
        use std::io::Write;
        writeln!(users, "oauth2accesstoken:{gcp_token}").unwrap();
        writeln!(
            users,
            "{}:{acr_refresh}",
            tagpilot_core::cloud::azure::ACR_USER
        )
        .unwrap();
        std::fs::write(
            &state,
            json!({
                "keys": {"AKIDENV": "env-secret", "ASIASTS": "sts-secret", "ASIAIMDS": "imds-secret"},
                "web_identity_token": "eyJhbGciOiJSUzI1NiJ9.web-identity.sig",
                "sts_credentials": {"id": "ASIASTS", "secret": "sts-secret", "token": "sts-session"},
                "imds_credentials": {"id": "ASIAIMDS", "secret": "imds-secret", "token": "imds-session"},
                "registry_username": reg.username,
                "registry_password": reg.password,
                "gcp_token": gcp_token,
                "gcp_subject_token": "eyJhbGciOiJSUzI1NiJ9.k8s-service-account.sig",
                "azure_assertion": "eyJhbGciOiJSUzI1NiJ9.aks-federated.sig",
                "acr_refresh_token": acr_refresh,
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
            .arg(Infra::get().scripts_dir().join("cloud-fake.py"))
            .arg(port.to_string())
            .arg(&state)
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "cloud-fake.py did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        CloudFake {
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
        let host = self.url.trim_start_matches("http://");
        let exchange = format!("{}/oauth2/exchange", self.url);
        let mut vars = vec![
            ("AWS_ENDPOINT_URL_ECR", self.url.as_str()),
            ("AWS_ENDPOINT_URL_STS", self.url.as_str()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", self.url.as_str()),
            ("GCE_METADATA_HOST", host),
            ("AZURE_IMDS_ENDPOINT", self.url.as_str()),
            ("AZURE_AUTHORITY_HOST", self.url.as_str()),
            ("TAGPILOT_ACR_EXCHANGE_URL", exchange.as_str()),
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
            max_tags: tagpilot_core::registry::DEFAULT_MAX_TAGS,
        })
        .await
        .unwrap()
        .tags
}

#[tokio::test]
async fn ecr_logins_by_each_credential_source_end_in_a_real_tag_listing() {
    let fake = CloudFake::start();
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
        let logins = Logins::default();
        let env = fake.env(&vars);
        let creds = logins
            .credentials_for("aws", &http, &env, ECR_HOST)
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
        logins
            .credentials_for("aws", &http, &env, ECR_HOST)
            .await
            .unwrap();
        assert_eq!(fake.verdicts().len(), before, "{name}: cached");
    }
}

#[tokio::test]
async fn a_bad_signature_or_token_names_the_step_and_the_answer_but_no_secret() {
    let fake = CloudFake::start();
    let http = reqwest::Client::new();
    let env = fake.env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "wrong-secret"),
    ]);
    let e = Logins::default()
        .credentials_for("aws", &http, &env, ECR_HOST)
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
    let e = Logins::default()
        .credentials_for("aws", &http, &env, ECR_HOST)
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

    let e = Logins::default()
        .credentials_for("aws", &http, &env, "ghcr.io")
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("\"ghcr.io\" is not an aws registry"),
        "{e}"
    );
}

#[tokio::test]
async fn gcp_and_azure_logins_end_in_a_real_tag_listing() {
    let fake = CloudFake::start();
    let reg = Infra::get().registry(Flavour::Token);
    let repo = format!("cloud/{}", unique_name("app"));
    reg.push_tags(&repo, &["2.0.0"]).await.unwrap();
    let http = reqwest::Client::new();
    let tmp = tempfile::tempdir().unwrap();
    let subject = tmp.path().join("k8s-token");
    std::fs::write(&subject, "eyJhbGciOiJSUzI1NiJ9.k8s-service-account.sig").unwrap();
    let config = tmp.path().join("federation.json");
    std::fs::write(
        &config,
        json!({
            "type": "external_account",
            "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k8s",
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": format!("{}/v1/token", fake.url),
            "service_account_impersonation_url": format!(
                "{}/v1/projects/-/serviceAccounts/reader@p.iam.gserviceaccount.com:generateAccessToken",
                fake.url
            ),
            "credential_source": {"file": subject.display().to_string()},
        })
        .to_string(),
    )
    .unwrap();
    let azure_token = tmp.path().join("azure-token");
    std::fs::write(&azure_token, "eyJhbGciOiJSUzI1NiJ9.aks-federated.sig").unwrap();
    let config_path = config.display().to_string();
    let azure_path = azure_token.display().to_string();
    // (provider, host, source, environment, the fake's log entry proving the source)
    let cases: [(&str, &str, &str, EnvVars, &str); 4] = [
        (
            "gcp",
            "europe-docker.pkg.dev",
            "metadata server",
            vec![],
            "gcp metadata",
        ),
        (
            "gcp",
            "eu.gcr.io",
            "workload identity federation",
            vec![("GOOGLE_APPLICATION_CREDENTIALS", &config_path)],
            "gcp impersonation",
        ),
        (
            "azure",
            "myregistry.azurecr.io",
            "workload identity",
            vec![
                ("AZURE_FEDERATED_TOKEN_FILE", &azure_path),
                ("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
                ("AZURE_TENANT_ID", "66666666-7777-8888-9999-000000000000"),
            ],
            "azure aad",
        ),
        (
            "azure",
            "myregistry.azurecr.io",
            "managed identity",
            vec![],
            "azure imds",
        ),
    ];
    for (provider, host, source, vars, proof) in cases {
        let env = fake.env(&vars);
        let creds = Logins::default()
            .credentials_for(provider, &http, &env, host)
            .await
            .unwrap_or_else(|e| panic!("{provider} {source}: {e}"));
        assert_eq!(list(&repo, &creds).await, ["2.0.0"], "{provider} {source}");
        let verdicts = fake.verdicts();
        assert!(
            verdicts.contains(&proof.to_string()),
            "{provider} {source}: {verdicts:?}"
        );
        if provider == "azure" {
            assert_eq!(verdicts.last().map(String::as_str), Some("acr exchange"));
        }
    }

    // Failures name the provider, the step and the answer.
    std::fs::write(&subject, "another-token").unwrap();
    let env = fake.env(&[("GOOGLE_APPLICATION_CREDENTIALS", &config_path)]);
    let e = Logins::default()
        .credentials_for("gcp", &http, &env, "gcr.io")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("gcp: workload identity federation (STS token exchange): ")
            && e.contains("The incoming token is not valid"),
        "{e}"
    );
    std::fs::write(&azure_token, "another-assertion").unwrap();
    let env = fake.env(&[
        ("AZURE_FEDERATED_TOKEN_FILE", &azure_path),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_TENANT_ID", "t"),
    ]);
    let e = Logins::default()
        .credentials_for("azure", &http, &env, "myregistry.azurecr.io")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("azure: workload identity (Entra ID token)") && e.contains("AADSTS700213"),
        "{e}"
    );
    assert!(!e.contains("another-assertion"));
    let e = Logins::default()
        .credentials_for("gcp", &http, &env, "myregistry.azurecr.io")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"myregistry.azurecr.io\" is not a gcp registry (it is azure's)"),
        "{e}"
    );
}
