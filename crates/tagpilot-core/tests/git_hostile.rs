//! A git server is outside input: host A (127.0.0.1) redirects to host B (127.0.0.2), which asks for
//! credentials. B must receive none of A's: neither the Basic credentials after its 401 nor a bearer token on
//! its first request.

use std::sync::Arc;

use tagpilot_core::git::{GitAuth, clone_branch};

mod support;
use support::{authorizations, reply, serve};

/// B: asks for Basic credentials on everything. A: redirects everything to B.
async fn redirecting_hosts() -> (String, std::sync::Arc<std::sync::Mutex<Vec<support::Seen>>>) {
    let (b_port, b_seen) = serve(
        "127.0.0.2",
        Arc::new(|_, _| {
            reply(
                "401 Unauthorized",
                &[("WWW-Authenticate", "Basic realm=\"b\"".into())],
                "",
            )
        }),
    )
    .await;
    let (a_port, _) = serve(
        "127.0.0.1",
        Arc::new(move |line, _| {
            let path = line.split(' ').nth(1).unwrap_or("/").to_string();
            reply(
                "302 Found",
                &[("Location", format!("http://127.0.0.2:{b_port}{path}"))],
                "",
            )
        }),
    )
    .await;
    (format!("http://127.0.0.1:{a_port}/org/repo.git"), b_seen)
}

async fn clone_with(auth: GitAuth) -> (String, Vec<String>, usize) {
    let (url, b_seen) = redirecting_hosts().await;
    let dir = tempfile::tempdir().unwrap();
    let e = tokio::task::spawn_blocking(move || {
        clone_branch(&url, &dir.path().join("c"), Some("main"), &auth)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    })
    .await
    .unwrap();
    let requests = b_seen.lock().unwrap().len();
    (e, authorizations(&b_seen), requests)
}

#[tokio::test]
async fn basic_credentials_do_not_follow_a_redirect_to_another_host() {
    let (e, sent, _) = clone_with(GitAuth {
        username: Some("bot".into()),
        password: Some("s3cret-for-A".into()),
        ..Default::default()
    })
    .await;
    assert!(
        e.contains("refusing to send the credentials for http://127.0.0.1"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
    // Before: B's 401 was answered with A's Basic credentials.
    assert_eq!(sent, Vec::<String>::new(), "B received credentials");
}

#[tokio::test]
async fn a_bearer_token_does_not_follow_a_redirect() {
    let (e, sent, requests) = clone_with(GitAuth {
        bearer_token: Some("tok-for-A".into()),
        ..Default::default()
    })
    .await;
    assert!(!e.is_empty());
    assert!(!e.contains("tok-for-A"), "{e}");
    // Before: B's first request carried `Authorization: Bearer tok-for-A`.
    assert_eq!(sent, Vec::<String>::new(), "B received the token");
    assert_eq!(requests, 0, "the redirect is not followed at all");
}
