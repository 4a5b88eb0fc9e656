use super::*;

fn setters() -> Setters {
    Setters::from_policies(&[PolicyImage {
        namespace: "flux-system".into(),
        name: "podinfo".into(),
        image: "ghcr.io/stefanprodan/podinfo".into(),
        tag: "5.0.3".into(),
        digest: None,
    }])
}

const MARKED: &str =
    "image: ghcr.io/stefanprodan/podinfo:5.0.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n";

#[test]
fn setters_cover_the_four_forms() {
    let mut s = setters();
    assert_eq!(
        s.get("flux-system:podinfo"),
        Some("ghcr.io/stefanprodan/podinfo:5.0.3")
    );
    assert_eq!(s.get("flux-system:podinfo:tag"), Some("5.0.3"));
    assert_eq!(
        s.get("flux-system:podinfo:name"),
        Some("ghcr.io/stefanprodan/podinfo")
    );
    assert_eq!(
        s.get("flux-system:podinfo:digest"),
        None,
        "no digest, no digest setter"
    );
    s.add(&PolicyImage {
        namespace: "a".into(),
        name: "b".into(),
        image: "img".into(),
        tag: "1".into(),
        digest: Some("sha256:ab".into()),
    });
    assert_eq!(s.get("a:b"), Some("img:1@sha256:ab"));
    assert_eq!(s.get("a:b:digest"), Some("sha256:ab"));
}

#[test]
fn text_without_the_needle_is_not_parsed() {
    assert_eq!(update_text("not: [valid", &setters()), Ok(None));
}

#[test]
fn update_text_reports_changes_and_edits_only_the_value() {
    let u = update_text(MARKED, &setters()).unwrap().unwrap();
    assert_eq!(u.text, MARKED.replace("5.0.0", "5.0.3"));
    assert_eq!(u.objects.len(), 1);
    assert_eq!(
        u.objects[0].object,
        ObjectId::default(),
        "not a Kubernetes object"
    );
    assert_eq!(
        u.objects[0].changes,
        vec![Change {
            old_value: "ghcr.io/stefanprodan/podinfo:5.0.0".into(),
            new_value: "ghcr.io/stefanprodan/podinfo:5.0.3".into(),
            setter: "flux-system:podinfo".into(),
            policy: PolicyKey::from_setter("flux-system:podinfo"),
        }]
    );
}

#[test]
fn anchors_and_tags_of_a_marked_scalar_are_kept_and_aliases_read_the_new_value() {
    let m = "# {\"$imagepolicy\": \"flux-system:podinfo\"}";
    let cases = [
        // (before, after): block and flow, plain and quoted, anchors and tags in either order.
        (
            format!("anchored: &img ghcr.io/stefanprodan/podinfo:5.0.0 {m}\nother: *img\n"),
            format!("anchored: &img ghcr.io/stefanprodan/podinfo:5.0.3 {m}\nother: *img\n"),
        ),
        (
            format!("t: !!str ghcr.io/stefanprodan/podinfo:5.0.0 {m}\n"),
            format!("t: !!str ghcr.io/stefanprodan/podinfo:5.0.3 {m}\n"),
        ),
        (
            format!("t: !custom 'ghcr.io/stefanprodan/podinfo:5.0.0' {m}\n"),
            format!("t: !custom 'ghcr.io/stefanprodan/podinfo:5.0.3' {m}\n"),
        ),
        (
            format!("t: &a !!str \"ghcr.io/stefanprodan/podinfo:5.0.0\" {m}\nu: *a\n"),
            format!("t: &a !!str \"ghcr.io/stefanprodan/podinfo:5.0.3\" {m}\nu: *a\n"),
        ),
        (
            format!("t: !!str &a ghcr.io/stefanprodan/podinfo:5.0.0 {m}\nu: [*a, *a]\n"),
            format!("t: !!str &a ghcr.io/stefanprodan/podinfo:5.0.3 {m}\nu: [*a, *a]\n"),
        ),
        (
            format!("f: {{i: &a ghcr.io/stefanprodan/podinfo:5.0.0}} {m}\ng: *a\n"),
            format!("f: {{i: &a ghcr.io/stefanprodan/podinfo:5.0.3}} {m}\ng: *a\n"),
        ),
        (
            format!("l:\n- &a\n  ghcr.io/stefanprodan/podinfo:5.0.0 {m}\n- *a\n"),
            format!("l:\n- &a\n  ghcr.io/stefanprodan/podinfo:5.0.3 {m}\n- *a\n"),
        ),
        // An anchored collection holding the marked value: its alias is a copy with the new value.
        (
            format!(
                "base: &b\n  image: ghcr.io/stefanprodan/podinfo:5.0.0 {m}\ncopy: *b\nnested: {{x: *b}}\n"
            ),
            format!(
                "base: &b\n  image: ghcr.io/stefanprodan/podinfo:5.0.3 {m}\ncopy: *b\nnested: {{x: *b}}\n"
            ),
        ),
    ];
    for (before, after) in cases {
        let u = update_text(&before, &setters())
            .unwrap_or_else(|e| panic!("{before}: {e}"))
            .unwrap_or_else(|| panic!("{before}: no change"));
        assert_eq!(u.text, after);
        assert_eq!(update_text(&after, &setters()), Ok(None), "{after}");
    }
}

#[test]
fn alias_bombs_deep_nesting_and_large_files_are_refused_before_parsing() {
    let marked =
        "image: ghcr.io/stefanprodan/podinfo:5.0.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n";
    // 2,000 x 2,000 aliases: 4 million nodes if expanded (1.2 GB through an expanding parser).
    let items = vec!["x"; 2000].join(", ");
    let aliases = vec!["*a"; 2000].join(", ");
    let bomb = format!("a: &a [{items}]\nb: [{aliases}]\n{marked}");
    let t0 = std::time::Instant::now();
    let err = update_text(&bomb, &setters()).unwrap_err().to_string();
    assert!(err.contains("aliases expand to more than"), "{err}");
    // Deep nesting: refused at the limit, not after reading everything.
    let deep = format!("{}{}\n{marked}", "[".repeat(100_000), "]".repeat(100_000));
    let err = update_text(&deep, &setters()).unwrap_err().to_string();
    // saphyr's scanner stops flow nesting itself (at 256); block nesting meets our limit.
    assert!(err.contains("recursion limit exceeded"), "{err}");
    let block: String = (0..200)
        .map(|i| format!("{}- \n", "  ".repeat(i)))
        .collect();
    let err = update_text(&format!("{marked}x:\n{block}"), &setters())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("nest deeper than {MAX_DEPTH}")),
        "{err}"
    );
    let large = format!("{marked}big: {}\n", "x".repeat(MAX_FILE_BYTES));
    assert_eq!(
        update_text(&large, &setters()),
        Err(TextError::TooLarge(large.len()))
    );
    // Bounded work: far below the 40 s the expanding parser took; a generous bound for debug builds.
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    // A few aliases, as real manifests have them, stay within the budget.
    let small = format!("a: &a [x, y]\nb: [*a, *a]\n{marked}");
    assert!(update_text(&small, &setters()).unwrap().is_some());
}

#[test]
fn a_refused_file_is_named_and_the_others_are_updated() {
    let root = tempfile::tempdir().unwrap();
    let items = vec!["x"; 2000].join(", ");
    let aliases = vec!["*a"; 2000].join(", ");
    std::fs::write(
        root.path().join("bomb.yaml"),
        format!("a: &a [{items}]\nb: [{aliases}]\n{MARKED}"),
    )
    .unwrap();
    let big = format!("{MARKED}big: {}\n", "x".repeat(MAX_FILE_BYTES));
    std::fs::write(root.path().join("big.yaml"), &big).unwrap();
    std::fs::write(
        root.path().join("huge-unmarked.yaml"),
        "y".repeat(MAX_FILE_BYTES + 1),
    )
    .unwrap();
    std::fs::write(root.path().join("ok.yaml"), MARKED).unwrap();
    let r = update_tree(root.path(), ".", &setters(), true).unwrap();
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.files[0].path, "ok.yaml");
    let errors: Vec<(&str, &str)> = r
        .errors
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, "big.yaml");
    assert!(
        errors[0].1.contains("over the limit of 4194304"),
        "{errors:?}"
    );
    assert_eq!(errors[1].0, "bomb.yaml");
    assert!(errors[1].1.contains("aliases expand"), "{errors:?}");
    assert_eq!(
        std::fs::read_to_string(root.path().join("big.yaml")).unwrap(),
        big
    );
}

#[test]
fn update_path_stays_inside_the_root() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("clusters/prod")).unwrap();
    let r = root.path().canonicalize().unwrap();
    assert_eq!(
        resolve_update_path(root.path(), "clusters/prod").unwrap(),
        r.join("clusters/prod")
    );
    assert_eq!(
        resolve_update_path(root.path(), "./clusters/../clusters/prod").unwrap(),
        r.join("clusters/prod")
    );
    assert_eq!(
        resolve_update_path(root.path(), "../../..").unwrap(),
        r,
        "`..` never climbs above the root"
    );
    assert_eq!(
        resolve_update_path(root.path(), "/clusters").unwrap(),
        r.join("clusters"),
        "absolute is relative"
    );
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
    let err = resolve_update_path(root.path(), "escape").unwrap_err();
    assert!(matches!(err, UpdateError::PathEscapes { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "update path \"escape\" is outside the repository"
    );
    assert!(matches!(
        resolve_update_path(root.path(), "missing"),
        Err(UpdateError::PathUnusable { .. })
    ));
}

#[test]
fn symlinks_are_not_followed_and_git_is_skipped() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.yaml"), MARKED).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("linked-dir")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.yaml"),
        root.path().join("linked.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(root.path().join(".git")).unwrap();
    std::fs::write(root.path().join(".git/x.yaml"), MARKED).unwrap();
    std::fs::write(root.path().join("real.yaml"), MARKED).unwrap();
    let result = update_tree(root.path(), ".", &setters(), true).unwrap();
    assert_eq!(
        result
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["real.yaml"]
    );
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.yaml")).unwrap(),
        MARKED
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join(".git/x.yaml")).unwrap(),
        MARKED
    );
}

#[test]
fn writes_keep_the_mode_and_leave_no_temporary_files() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("app.yaml");
    std::fs::write(&file, MARKED).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    update_tree(root.path(), ".", &setters(), true).unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let names: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["app.yaml"]);
}

#[test]
fn unified_diff_shows_the_change() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("app.yaml"), MARKED).unwrap();
    let result = update_tree(root.path(), ".", &setters(), false).unwrap();
    let diff = unified_diff(&result.files[0]);
    assert!(
        diff.starts_with("--- a/app.yaml\n+++ b/app.yaml\n"),
        "{diff}"
    );
    assert!(
        diff.contains("-image: ghcr.io/stefanprodan/podinfo:5.0.0 #"),
        "{diff}"
    );
    assert!(
        diff.contains("+image: ghcr.io/stefanprodan/podinfo:5.0.3 #"),
        "{diff}"
    );
}

#[test]
fn references_split_at_the_last_colon_after_the_last_slash() {
    let split = |r| PolicyImage::split_reference(r);
    assert_eq!(
        split("ghcr.io/a/b:1.0"),
        ("ghcr.io/a/b".into(), "1.0".into(), None)
    );
    assert_eq!(
        split("localhost:5000/a/b"),
        ("localhost:5000/a/b".into(), String::new(), None)
    );
    assert_eq!(
        split("localhost:5000/a/b:v1@sha256:ab"),
        (
            "localhost:5000/a/b".into(),
            "v1".into(),
            Some("sha256:ab".into())
        )
    );
    assert_eq!(split("alpine"), ("alpine".into(), String::new(), None));
    let untagged = PolicyImage {
        namespace: "n".into(),
        name: "p".into(),
        image: "img".into(),
        tag: String::new(),
        digest: Some("sha256:ab".into()),
    };
    assert_eq!(untagged.reference(), "img@sha256:ab");
}

#[test]
fn tab_separated_values_found_by_the_fuzzer() {
    // saphyr alone refuses `:\t` before a value containing `:`; the edit must still be made and re-read.
    let text = "i !\t:\t::amg:amgg # {\"$imagepolicy\": \"flux-system:podinfo\"}";
    let u = update_text(text, &setters()).unwrap().unwrap();
    assert_eq!(
        u.text,
        "i !\t:\tghcr.io/stefanprodan/podinfo:5.0.3 # {\"$imagepolicy\": \"flux-system:podinfo\"}"
    );
    assert_eq!(update_text(&u.text, &setters()), Ok(None));
}

#[test]
fn unicode_line_separators_are_content_found_by_the_fuzzer() {
    let text = "- a\u{2028} # {\"$imagepolicy\": \"flux-system:podinfo\"}\n";
    let u = update_text(text, &setters()).unwrap().unwrap();
    assert_eq!(u.objects[0].changes[0].old_value, "a\u{2028}");
    assert_eq!(update_text(&u.text, &setters()), Ok(None));
    assert_eq!(
        markers(&u.text).unwrap()[0].value,
        "ghcr.io/stefanprodan/podinfo:5.0.3"
    );
}
