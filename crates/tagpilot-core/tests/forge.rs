//! The provider clients against the stateful GitHub stand-in (no git server: a bare repository of the
//! test's own): GitHub App installation tokens cached, exchanged again when less than five minutes are left,
//! and replaced when the provider refuses one; auto-merge through GraphQL; a second create answered "already
//! exists" updates the open request.

use std::collections::BTreeMap;
use std::time::Duration;

use tagpilot_core::forge::{self, Credentials, Forge, Proposal, Provider, RepoId, app};
use tagpilot_testinfra::forge::{Flavour, ForgeStandIn, app_key};

/// A bare repository `r.git` under `dir` with `main` and `feature` (one commit apart).
fn repository(dir: &std::path::Path) {
    let repo = git2::Repository::init_bare(dir.join("r.git")).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let tree = repo
        .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
        .unwrap();
    let base = repo
        .commit(Some("refs/heads/main"), &sig, &sig, "base", &tree, &[])
        .unwrap();
    let parent = repo.find_commit(base).unwrap();
    repo.commit(
        Some("refs/heads/feature"),
        &sig,
        &sig,
        "change",
        &tree,
        &[&parent],
    )
    .unwrap();
}

#[tokio::test]
async fn github_app_tokens_are_cached_refreshed_and_replaced_when_refused() {
    let tmp = tempfile::tempdir().unwrap();
    repository(tmp.path());
    let stand_in = ForgeStandIn::start(Flavour::GitHub, tmp.path(), &[]).await;
    let (pem, public) = app_key();
    stand_in.add_app("31337", public, 9);
    let data: BTreeMap<String, Vec<u8>> = [
        ("githubAppID", "31337"),
        ("githubAppPrivateKey", pem.as_str()),
        ("githubAppInstallationID", "9"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect();
    let a = app::GitHubApp::from_secret_data(&data, &stand_in.url)
        .unwrap()
        .unwrap();
    let f = Forge {
        provider: Provider::GitHub,
        api_url: stand_in.url.clone(),
        repo: RepoId::parse("https://github.example/git/r").unwrap(),
        credentials: Credentials::GitHubApp(a.clone()),
        http: forge::http::client(),
    };

    // One exchange serves every call while the token has more than five minutes left.
    assert!(f.find_open("feature", "main").await.unwrap().is_none());
    assert!(f.find_open("feature", "main").await.unwrap().is_none());
    assert_eq!(stand_in.exchanges(), 1);

    // The provider stops accepting it (revoked, expired early): forgotten, exchanged once more.
    stand_in.expire_issued_tokens();
    assert!(f.find_open("feature", "main").await.unwrap().is_none());
    assert_eq!(stand_in.exchanges(), 2);

    // Tokens that live less than five minutes are exchanged again at each use.
    stand_in.set_token_lifetime(Duration::from_secs(240));
    app::forget(&a);
    f.find_open("feature", "main").await.unwrap();
    f.find_open("feature", "main").await.unwrap();
    assert_eq!(stand_in.exchanges(), 4);

    // A request with auto-merge (GraphQL, straight to the stand-in: GraphQL has no OpenAPI description).
    let p = Proposal {
        head: "feature".into(),
        base: "main".into(),
        title: "t".into(),
        body: "b".into(),
        labels: vec!["x".into()],
        reviewers: vec!["alice".into(), "org/team".into()],
        draft: true,
        auto_merge: Some("squash".into()),
    };
    let (pr, new) = f.open(&p).await.unwrap();
    assert!(new);
    let stored = stand_in.prs("git/r");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].auto_merge.as_deref(), Some("squash"));
    assert!(stored[0].draft, "GitHub's own draft flag, no title prefix");
    assert_eq!(stored[0].title, "t");
    assert_eq!(stored[0].labels, ["x"]);
    assert_eq!(
        stored[0].reviewers,
        ["alice"],
        "a team goes to team_reviewers"
    );

    // Opening again: GitHub says "already exists"; the open request is updated, never a second one.
    let again = Proposal {
        body: "b2".into(),
        ..p
    };
    let (same, new) = f.open(&again).await.unwrap();
    assert!(!new);
    assert_eq!(same.number, pr.number);
    assert_eq!(stand_in.prs("git/r").len(), 1);
    assert_eq!(stand_in.prs("git/r")[0].body, "b2");
}
