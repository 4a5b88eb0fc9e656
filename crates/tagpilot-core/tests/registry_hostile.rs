//! A registry is outside input: loopback HTTP servers (127.0.0.1 is the registry, 127.0.0.2 "another host")
//! that redirect, link elsewhere, list names that are not tags, or list more tags than the limit. Each server
//! records what it received, so the tests assert what another host got. Memory is the point of the large
//! pages: the process runs under a 1 GiB address-space limit, and peak RSS is printed (run with
//! `--test-threads=1 --nocapture` to read it per test).

use std::sync::Arc;
use std::time::Duration;

use tagpilot_core::registry::{
    Credentials, DEFAULT_MAX_TAGS, Exclusions, ImageName, RegistryClient, RegistryError,
    ScanRequest, Transport,
};

mod support;
use support::{Handler, authorizations, one_gib, peak_rss_mib, reply, serve};

/// A registry that asks for Basic credentials, then answers `then` to an authenticated request.
fn basic_registry(then: impl Fn(&str) -> String + Send + Sync + 'static) -> Handler {
    Arc::new(move |line, auth| match auth {
        None => reply(
            "401 Unauthorized",
            &[("WWW-Authenticate", "Basic realm=\"r\"".into())],
            "{}",
        ),
        Some(_) => then(line),
    })
}

/// One page of `n` tags (`"0"`, `"1"`, ...): 10 MB for a million.
fn page_of(n: usize) -> Arc<String> {
    let mut b = String::from("{\"tags\": [");
    for i in 0..n {
        if i > 0 {
            b.push(',');
        }
        b.push_str(&format!("\"{i}\""));
    }
    b.push_str("]}");
    Arc::new(b)
}

/// The message of a scan (default tag limit) that must fail.
async fn scan_error(port: u16) -> String {
    scan(port, DEFAULT_MAX_TAGS).await.unwrap_err().to_string()
}

async fn scan(
    port: u16,
    max_tags: usize,
) -> Result<tagpilot_core::registry::ScanResult, RegistryError> {
    let image = ImageName::parse(&format!("127.0.0.1:{port}/app")).unwrap();
    let credentials = Credentials::Basic {
        username: "alice".into(),
        password: "s3cret-of-A".into(),
    };
    let transport = Transport {
        insecure: true,
        ..Default::default()
    };
    RegistryClient::default()
        .list_tags(&ScanRequest {
            image: &image,
            credentials: &credentials,
            transport: &transport,
            exclusions: &Exclusions::new::<&str>(&[]).unwrap(),
            page_size: 1000,
            timeout: Duration::from_secs(20),
            max_tags,
        })
        .await
}

#[tokio::test]
async fn a_redirect_to_another_host_gets_no_credentials() {
    let (b_port, b_seen) = serve(
        "127.0.0.2",
        Arc::new(|_, _| {
            reply(
                "200 OK",
                &[("Link", "</v2/app/tags/list?last=1>; rel=\"next\"".into())],
                r#"{"tags": ["1"]}"#,
            )
        }),
    )
    .await;
    let (a_port, a_seen) = serve(
        "127.0.0.1",
        basic_registry(move |line| {
            let path = line.split(' ').nth(1).unwrap_or("/").to_string();
            reply(
                "307 Temporary Redirect",
                &[("Location", format!("http://127.0.0.2:{b_port}{path}"))],
                "",
            )
        }),
    )
    .await;
    let e = scan_error(a_port).await;
    assert!(
        e.contains("refusing to follow a redirect to another scheme, host or port"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    assert_eq!(
        authorizations(&a_seen).len(),
        1,
        "A got its credentials once"
    );
    // Before: B received A's Basic credentials on its page request (and on the Link's next page).
    assert!(
        b_seen.lock().unwrap().is_empty(),
        "B received {:?}",
        b_seen.lock().unwrap()
    );
}

#[tokio::test]
async fn a_redirect_within_the_registry_and_a_link_elsewhere() {
    let (b_port, b_seen) = serve(
        "127.0.0.2",
        Arc::new(|_, _| reply("200 OK", &[], r#"{"tags": ["x"]}"#)),
    )
    .await;
    let (a_port, a_seen) = serve(
        "127.0.0.1",
        basic_registry(move |line| {
            if line.contains("/moved/") {
                // The same host: followed, with the credentials.
                reply(
                    "200 OK",
                    &[(
                        "Link",
                        format!(
                            "<http://127.0.0.2:{b_port}/v2/app/tags/list?last=2>; rel=\"next\""
                        ),
                    )],
                    r#"{"tags": ["1", "2"]}"#,
                )
            } else {
                reply(
                    "307 Temporary Redirect",
                    &[("Location", "/moved/v2/app/tags/list".into())],
                    "",
                )
            }
        }),
    )
    .await;
    let e = scan_error(a_port).await;
    assert!(
        e.contains("refusing to follow a Link to another scheme or host"),
        "{e}"
    );
    assert!(
        authorizations(&a_seen)
            .iter()
            .all(|a| a.starts_with("Basic "))
    );
    assert!(b_seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn names_that_are_not_tags_are_dropped_and_counted() {
    let (port, _) = serve(
        "127.0.0.1",
        Arc::new(|_, _| {
            reply(
                "200 OK",
                &[],
                r#"{"tags": ["1.0.0", "2.0.0\n9.9.9", "", "../x", "1.1.0"]}"#,
            )
        }),
    )
    .await;
    let r = scan(port, DEFAULT_MAX_TAGS).await.unwrap();
    assert_eq!(r.tags, ["1.1.0", "1.0.0"]);
    assert_eq!(r.invalid, 3);
}

#[tokio::test]
async fn a_repository_over_the_tag_limit_is_an_error_giving_the_limit() {
    one_gib();
    // A million tags in one 10 MB page, against a limit of 100,000.
    let body = page_of(1_000_000);
    let (port, _) = serve(
        "127.0.0.1",
        Arc::new(move |_, _| reply("200 OK", &[], &body)),
    )
    .await;
    let e = scan(port, DEFAULT_MAX_TAGS).await.unwrap_err();
    assert!(
        matches!(e, RegistryError::TooManyTags { limit: 100_000, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("--max-tags-per-repository"), "{e}");
    println!(
        "a million tags over the limit: peak RSS {} MiB",
        peak_rss_mib()
    );
}

#[tokio::test]
async fn a_million_tags_in_one_page_are_read_as_a_stream() {
    one_gib();
    let body = page_of(1_000_000);
    let (port, _) = serve(
        "127.0.0.1",
        Arc::new(move |_, _| reply("200 OK", &[], &body)),
    )
    .await;
    let r = scan(port, 2_000_000).await.unwrap();
    assert_eq!(r.tags.len(), 1_000_000);
    // Before: 228 MB for this page (a list of the page, a set of seen tags and the tags, each a copy).
    println!("a million tags read: peak RSS {} MiB", peak_rss_mib());
}

#[tokio::test]
async fn a_registry_error_body_is_capped() {
    let huge = format!(
        r#"{{"errors": [{{"code": "DENIED", "message": "{}"}}]}}"#,
        "x".repeat(100_000)
    );
    let (port, _) = serve(
        "127.0.0.1",
        Arc::new(move |_, _| reply("403 Forbidden", &[], &huge)),
    )
    .await;
    let e = scan_error(port).await;
    assert!(e.len() < 1200, "{} bytes", e.len());
    assert!(e.contains("more bytes)"), "{e}");
}
