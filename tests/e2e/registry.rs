//! The registry client against the real registries (plain, TLS + basic, TLS + token) and, for behaviours
//! distribution 2.8 lacks, through the fault-injecting proxy in front of the plain one.

use std::time::{Duration, Instant};

use base64::Engine;
use tagpilot_core::registry::{
    Credentials, DEFAULT_EXCLUSIONS, DockerConfig, Exclusions, ImageName, RegistryClient,
    RegistryError, ScanRequest, ScanResult, Transport,
};
use tagpilot_testinfra::{Fault, FaultProxy, Flavour, Infra, Paging, Registry, unique_name};

fn transport(reg: &Registry) -> Transport {
    Transport {
        ca_pem: reg.ca_file.as_ref().map(|f| std::fs::read(f).unwrap()),
        insecure: reg.flavour == Flavour::Plain,
        ..Transport::default()
    }
}

fn creds(reg: &Registry) -> Credentials {
    if reg.needs_auth() {
        Credentials::Basic {
            username: reg.username.clone(),
            password: reg.password.clone(),
        }
    } else {
        Credentials::Anonymous
    }
}

async fn scan(
    client: &RegistryClient,
    image: &str,
    c: &Credentials,
    t: &Transport,
    n: u32,
) -> Result<ScanResult, RegistryError> {
    let image = ImageName::parse(image).unwrap();
    let exclusions = Exclusions::new(DEFAULT_EXCLUSIONS).unwrap();
    client
        .list_tags(&ScanRequest {
            image: &image,
            credentials: c,
            transport: t,
            exclusions: &exclusions,
            page_size: n,
            timeout: Duration::from_secs(60),
            max_tags: tagpilot_core::registry::DEFAULT_MAX_TAGS,
        })
        .await
}

#[tokio::test]
async fn lists_tags_on_every_flavour_with_the_default_exclusion() {
    for flavour in Flavour::ALL {
        let reg = Infra::get().registry(flavour);
        let repo = format!("scan/{}", unique_name("app"));
        reg.push_tags(&repo, &["1.0.0", "1.2.0", "sha256-abc.sig", "latest"])
            .await
            .unwrap();
        let client = RegistryClient::default();
        let r = scan(
            &client,
            &reg.image(&repo),
            &creds(&reg),
            &transport(&reg),
            1000,
        )
        .await
        .unwrap();
        assert_eq!(
            r.tags,
            ["latest", "1.2.0", "1.0.0"],
            "{flavour:?}: byte-wise descending, .sig excluded"
        );
        assert_eq!(r.excluded, 1);
        // A second scan with the same client reuses the registry's challenge and the cached token.
        let again = scan(
            &client,
            &reg.image(&repo),
            &creds(&reg),
            &transport(&reg),
            1000,
        )
        .await
        .unwrap();
        assert_eq!(again.tags, r.tags);
        assert_eq!(
            again.requests, 1,
            "{flavour:?}: one request once the challenge and token are known"
        );
        if flavour == Flavour::Token {
            assert_eq!(r.requests, 3, "list (401), token, list");
        }
    }
}

#[tokio::test]
async fn credentials_from_a_docker_config_and_wrong_passwords() {
    for flavour in [Flavour::Basic, Flavour::Token] {
        let reg = Infra::get().registry(flavour);
        let repo = format!("private/{}", unique_name("app"));
        reg.push_tags(&repo, &["1.0.0"]).await.unwrap();
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", reg.username, reg.password));
        let config = format!(
            r#"{{"auths": {{"https://{}/v1/": {{"auth": "{auth}"}}}}}}"#,
            reg.host
        );
        let from_config = DockerConfig::from_json(config.as_bytes())
            .unwrap()
            .credentials_for(&reg.host)
            .unwrap()
            .unwrap();
        let client = RegistryClient::default();
        let ok = scan(
            &client,
            &reg.image(&repo),
            &from_config,
            &transport(&reg),
            1000,
        )
        .await
        .unwrap();
        assert_eq!(ok.tags, ["1.0.0"]);

        let wrong = Credentials::Basic {
            username: reg.username.clone(),
            password: "wrong-password".into(),
        };
        let err = scan(
            &RegistryClient::default(),
            &reg.image(&repo),
            &wrong,
            &transport(&reg),
            1000,
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, RegistryError::AuthenticationFailed { .. }),
            "{flavour:?}: {msg}"
        );
        assert!(
            msg.starts_with(&format!(
                "authentication failed for registry {}: ",
                reg.host
            )),
            "{msg}"
        );
        assert!(
            !msg.contains("wrong-password"),
            "the password never appears: {msg}"
        );

        let err = scan(
            &RegistryClient::default(),
            &reg.image(&repo),
            &Credentials::Anonymous,
            &transport(&reg),
            1000,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, RegistryError::AuthenticationFailed { .. }),
            "{flavour:?} anonymous: {err}"
        );
    }
}

#[tokio::test]
async fn tokens_are_scoped_per_repository() {
    let reg = Infra::get().registry(Flavour::Token);
    let (a, b) = (
        format!("scope/{}", unique_name("a")),
        format!("scope/{}", unique_name("b")),
    );
    reg.push_tags(&a, &["1"]).await.unwrap();
    reg.push_tags(&b, &["2"]).await.unwrap();
    let client = RegistryClient::default();
    let ra = scan(
        &client,
        &reg.image(&a),
        &creds(&reg),
        &transport(&reg),
        1000,
    )
    .await
    .unwrap();
    let rb = scan(
        &client,
        &reg.image(&b),
        &creds(&reg),
        &transport(&reg),
        1000,
    )
    .await
    .unwrap();
    assert_eq!(
        (ra.tags.as_slice(), rb.tags.as_slice()),
        (["1".to_string()].as_slice(), ["2".to_string()].as_slice())
    );
    assert_eq!(
        rb.requests, 3,
        "repository b needs its own token: list (401), token, list"
    );
}

#[tokio::test]
async fn tls_needs_the_ca() {
    let reg = Infra::get().registry(Flavour::Basic);
    let repo = format!("tls/{}", unique_name("app"));
    reg.push_tags(&repo, &["1.0.0"]).await.unwrap();
    let no_ca = Transport::default();
    let err = scan(
        &RegistryClient::default(),
        &reg.image(&repo),
        &creds(&reg),
        &no_ca,
        1000,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn a_repository_of_3000_tags() {
    let reg = Infra::get().registry(Flavour::Plain);
    let repo = format!("big/{}", unique_name("app"));
    let tags: Vec<String> = (0..3000)
        .map(|i| format!("1.{}.{}", i / 100, i % 100))
        .collect();
    reg.push_tags_same_manifest(&repo, &tags).await.unwrap();
    let r = scan(
        &RegistryClient::default(),
        &reg.image(&repo),
        &Credentials::Anonymous,
        &transport(&reg),
        1000,
    )
    .await
    .unwrap();
    assert_eq!(r.tags.len(), 3000);
    assert_eq!(
        r.requests, 1,
        "distribution ignores n: one reply holds everything, and that is seen"
    );
}

#[tokio::test]
async fn a_local_registry_without_insecure_falls_back_to_http() {
    let reg = Infra::get().registry(Flavour::Plain);
    let repo = format!("fallback/{}", unique_name("app"));
    reg.push_tags(&repo, &["1.0.0"]).await.unwrap();
    let client = RegistryClient::default();
    let r = scan(
        &client,
        &reg.image(&repo),
        &Credentials::Anonymous,
        &Transport::default(),
        1000,
    )
    .await
    .unwrap();
    assert_eq!(r.tags, ["1.0.0"]);
    // The failed TLS handshake is not retried (it would fail again), then plain HTTP answers.
    assert_eq!(r.requests, 2, "one HTTPS attempt, one HTTP request");
    // The next scan starts with plain HTTP.
    let again = scan(
        &client,
        &reg.image(&repo),
        &Credentials::Anonymous,
        &Transport::default(),
        1000,
    )
    .await
    .unwrap();
    assert_eq!(again.requests, 1);
}

#[tokio::test]
async fn digests_of_an_image_and_an_index() {
    for flavour in Flavour::ALL {
        let reg = Infra::get().registry(flavour);
        let repo = format!("digest/{}", unique_name("app"));
        let pushed = reg.push_tags(&repo, &["1.0.0"]).await.unwrap();
        let index = reg.push_index(&repo, "multi").await.unwrap();
        let client = RegistryClient::default();
        let image = ImageName::parse(&reg.image(&repo)).unwrap();
        let d = client
            .digest(&image, "1.0.0", &creds(&reg), &transport(&reg))
            .await
            .unwrap();
        assert_eq!(d, pushed[0], "{flavour:?}");
        let d = client
            .digest(&image, "multi", &creds(&reg), &transport(&reg))
            .await
            .unwrap();
        assert_eq!(
            d, index,
            "{flavour:?}: the index digest for a multi-arch image"
        );
        let err = client
            .digest(&image, "missing", &creds(&reg), &transport(&reg))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    }
}

async fn proxied(paging: Paging, tags: usize) -> (FaultProxy, String, Vec<String>) {
    let reg = Infra::get().registry(Flavour::Plain);
    let repo = format!("paging/{}", unique_name("app"));
    let all: Vec<String> = (0..tags).map(|i| format!("v{i:04}")).collect();
    reg.push_tags_same_manifest(&repo, &all).await.unwrap();
    let proxy = FaultProxy::start(&reg.host, paging).await;
    let image = format!("{}/{repo}", proxy.host());
    let mut want = all;
    want.sort_by(|a, b| b.cmp(a));
    (proxy, image, want)
}

fn insecure() -> Transport {
    Transport {
        insecure: true,
        ..Transport::default()
    }
}

#[tokio::test]
async fn paging_styles_of_other_registries() {
    for (paging, n, pages) in [
        (Paging::LinkRelative, 100, 3),
        (Paging::LinkAbsolute, 100, 3),
        (Paging::LinkWithoutPort, 100, 3),
        (Paging::LastOnly, 100, 3),
        (Paging::Quay, 1000, 5),
    ] {
        let (proxy, image, want) = proxied(paging, 250).await;
        let r = scan(
            &RegistryClient::default(),
            &image,
            &Credentials::Anonymous,
            &insecure(),
            n,
        )
        .await
        .unwrap();
        assert_eq!(r.tags, want, "{paging:?}");
        assert_eq!(r.pages, pages, "{paging:?}: {:?}", proxy.requests());
        if paging == Paging::Quay {
            let first = &proxy.requests()[0];
            assert!(first.contains("n=1000"), "{first}");
            assert!(
                proxy.requests()[1].contains("n=100"),
                "413 shrinks n: {:?}",
                proxy.requests()
            );
        }
    }
}

#[tokio::test]
async fn a_link_to_another_host_is_refused() {
    let (_proxy, image, _) = proxied(Paging::LinkOtherHost, 150).await;
    let err = scan(
        &RegistryClient::default(),
        &image,
        &Credentials::Anonymous,
        &insecure(),
        100,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("refusing to follow a Link to another scheme or host"),
        "{err}"
    );
}

#[tokio::test]
async fn retries_honour_retry_after_and_give_up_in_the_end() {
    let (proxy, image, want) = proxied(Paging::LinkRelative, 10).await;
    proxy.inject(vec![
        Fault::Status(429, Some("1".into())),
        Fault::Status(503, None),
        Fault::Status(502, None),
    ]);
    let started = Instant::now();
    let r = scan(
        &RegistryClient::default(),
        &image,
        &Credentials::Anonymous,
        &insecure(),
        100,
    )
    .await
    .unwrap();
    assert_eq!(r.tags, want);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(r.requests, 4);

    proxy.inject(vec![Fault::Status(500, None); 10]);
    let client = RegistryClient::new(tagpilot_core::registry::ClientOptions {
        backoff: Duration::from_millis(10),
        ..Default::default()
    });
    let err = scan(&client, &image, &Credentials::Anonymous, &insecure(), 100)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 500, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("injected 500"),
        "the registry's message is kept: {err}"
    );
}

#[tokio::test]
async fn garbage_replies_are_errors() {
    let (proxy, image, _) = proxied(Paging::LinkRelative, 3).await;
    for (fault, expect) in [
        (
            Fault::Body("application/json", b"{not json".to_vec()),
            "not the expected JSON",
        ),
        (
            Fault::Body("text/html", b"<html>login</html>".to_vec()),
            "not the expected JSON",
        ),
        (
            Fault::Body("application/json", br#"{"tags": [1, 2]}"#.to_vec()),
            "not the expected JSON",
        ),
        (
            Fault::Body("application/json", vec![b' '; 40 << 20]),
            "larger than 32 MiB",
        ),
    ] {
        proxy.inject(vec![fault]);
        let err = scan(
            &RegistryClient::default(),
            &image,
            &Credentials::Anonymous,
            &insecure(),
            100,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RegistryError::Protocol { .. }), "{err}");
        assert!(err.to_string().contains(expect), "{err}");
    }
}

#[tokio::test]
async fn missing_repositories_and_timeouts() {
    let reg = Infra::get().registry(Flavour::Plain);
    let err = scan(
        &RegistryClient::default(),
        &reg.image("nope/nothing-here"),
        &Credentials::Anonymous,
        &insecure(),
        100,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("NAME_UNKNOWN"), "{err}");

    let (proxy, image, _) = proxied(Paging::LinkRelative, 3).await;
    proxy.inject(vec![Fault::Status(429, Some("30".into()))]);
    let image = ImageName::parse(&image).unwrap();
    let ex = Exclusions::new::<&str>(&[]).unwrap();
    let err = RegistryClient::default()
        .list_tags(&ScanRequest {
            image: &image,
            credentials: &Credentials::Anonymous,
            transport: &insecure(),
            exclusions: &ex,
            page_size: 100,
            timeout: Duration::from_secs(2),
            max_tags: tagpilot_core::registry::DEFAULT_MAX_TAGS,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Timeout { seconds: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let reg = Infra::get().registry(Flavour::Mtls);
    let repo = format!("mtls/{}", unique_name("app"));
    reg.push_tags(&repo, &["1.0.0"]).await.unwrap();
    let (cert, key) = reg.client_identity.clone().unwrap();
    let with_cert = Transport {
        ca_pem: Some(std::fs::read(reg.ca_file.as_ref().unwrap()).unwrap()),
        client_identity_pem: Some((std::fs::read(cert).unwrap(), std::fs::read(key).unwrap())),
        ..Transport::default()
    };
    let r = scan(
        &RegistryClient::default(),
        &reg.image(&repo),
        &Credentials::Anonymous,
        &with_cert,
        1000,
    )
    .await
    .unwrap();
    assert_eq!(r.tags, ["1.0.0"]);
    let without = Transport {
        client_identity_pem: None,
        ..with_cert
    };
    let err = scan(
        &RegistryClient::default(),
        &reg.image(&repo),
        &Credentials::Anonymous,
        &without,
        1000,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unreachable { .. }),
        "no client certificate, no connection: {err}"
    );
}

#[tokio::test]
async fn through_an_http_proxy_with_credentials() {
    let reg = Infra::get().registry(Flavour::Plain);
    let repo = format!("proxied/{}", unique_name("app"));
    reg.push_tags(&repo, &["1.0.0", "2.0.0"]).await.unwrap();
    let proxy = FaultProxy::start_forward_proxy("proxy-user", "proxy-pass").await;
    let via = |password: &str| Transport {
        insecure: true,
        proxy: Some(tagpilot_core::registry::Proxy {
            address: format!("http://{}", proxy.host()),
            username: Some("proxy-user".into()),
            password: Some(password.into()),
        }),
        ..Transport::default()
    };
    let r = scan(
        &RegistryClient::default(),
        &reg.image(&repo),
        &Credentials::Anonymous,
        &via("proxy-pass"),
        1000,
    )
    .await
    .unwrap();
    assert_eq!(r.tags, ["2.0.0", "1.0.0"]);
    assert!(
        proxy
            .requests()
            .iter()
            .any(|l| l.contains(&format!("http://{}/v2/{repo}/tags/list", reg.host))),
        "{:?}",
        proxy.requests()
    );
    let err = scan(
        &RegistryClient::default(),
        &reg.image(&repo),
        &Credentials::Anonymous,
        &via("wrong"),
        1000,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RegistryError::Status { status: 407, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong"), "{err}");
}

#[tokio::test]
async fn requests_in_flight_per_registry_are_limited() {
    let (proxy, image, want) = proxied(Paging::LinkRelative, 5).await;
    proxy.delay_replies(Duration::from_millis(100));
    let client = RegistryClient::new(tagpilot_core::registry::ClientOptions {
        per_registry_concurrency: 2,
        ..Default::default()
    });
    let scans: Vec<_> = (0..12)
        .map(|_| {
            let (client, image) = (client.clone(), image.clone());
            tokio::spawn(async move {
                scan(&client, &image, &Credentials::Anonymous, &insecure(), 100).await
            })
        })
        .collect();
    for s in scans {
        assert_eq!(s.await.unwrap().unwrap().tags, want);
    }
    assert_eq!(
        proxy.peak_in_flight(),
        2,
        "12 scans, at most 2 requests at the registry at once"
    );
}
