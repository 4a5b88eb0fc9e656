//! The setters over a fixture tree (`tests/data/setters/input`), compared byte for byte with
//! `tests/data/setters/expected`. A file absent from `expected` must be left exactly as it was.
//! `TAGPILOT_BLESS=1 cargo test --test setters_fixtures` rewrites `expected` (review the diff before committing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tagpilot_core::setters::{PolicyImage, Setters, update_tree};

fn policy(ns: &str, name: &str, image: &str, tag: &str, digest: Option<&str>) -> PolicyImage {
    PolicyImage {
        namespace: ns.into(),
        name: name.into(),
        image: image.into(),
        tag: tag.into(),
        digest: digest.map(str::to_string),
    }
}

pub fn fixture_setters() -> Setters {
    Setters::from_policies(&[
        policy(
            "flux-system",
            "podinfo",
            "ghcr.io/stefanprodan/podinfo",
            "5.0.3",
            None,
        ),
        policy(
            "flux-system",
            "helm-app",
            "ghcr.io/acme/chart-app",
            "1.2.3",
            None,
        ),
        policy(
            "other-ns",
            "backend",
            "ghcr.io/acme/backend",
            "v2.3.4",
            Some("sha256:1111111111111111111111111111111111111111111111111111111111111111"),
        ),
        policy("flux-system", "dated", "reg/dated", "2024-06-27", None),
        policy("flux-system", "floaty", "reg/floaty", "1.10", None),
        policy("flux-system", "switch", "reg/switch", "on", None),
        policy("flux-system", "odd", "reg/odd", "it's: odd #1", None),
    ])
}

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                dirs.push(p);
            } else if e.file_type().unwrap().is_file() {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in files(from) {
        let dest = to.join(&rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, bytes).unwrap();
    }
}

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/setters")
}

#[test]
fn fixture_tree_is_updated_byte_for_byte() {
    let input = data().join("input");
    let expected_dir = data().join("expected");
    let work = tempfile::tempdir().unwrap();
    copy_tree(&input, work.path());
    let result = update_tree(work.path(), ".", &fixture_setters(), true).unwrap();
    let after = files(work.path());
    let before = files(&input);
    if std::env::var_os("TAGPILOT_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&expected_dir);
        for (rel, bytes) in &after {
            if before.get(rel) != Some(bytes) {
                let dest = expected_dir.join(rel);
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::write(dest, bytes).unwrap();
            }
        }
        std::fs::write(
            data().join("result.json"),
            serde_json::to_string_pretty(&result).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let expected = files(&expected_dir);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "no file added or removed"
    );
    for (rel, bytes) in &after {
        let want = expected.get(rel).or_else(|| before.get(rel)).unwrap();
        assert!(
            bytes == want,
            "{rel} differs from {}:\n--- got ---\n{}\n--- want ---\n{}",
            if expected.contains_key(rel) {
                "expected/"
            } else {
                "the input (it must not change)"
            },
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(want)
        );
    }
    for rel in expected.keys() {
        assert!(
            result.files.iter().any(|f| &f.path == rel),
            "{rel} has an expected output but is not reported as changed"
        );
    }
    let want_json = std::fs::read_to_string(data().join("result.json")).unwrap();
    assert_eq!(
        serde_json::to_string_pretty(&result).unwrap() + "\n",
        want_json,
        "the result model"
    );
}

#[test]
fn a_dry_run_writes_nothing_and_reports_the_same() {
    let input = data().join("input");
    let work = tempfile::tempdir().unwrap();
    copy_tree(&input, work.path());
    let dry = update_tree(work.path(), ".", &fixture_setters(), false).unwrap();
    assert_eq!(
        files(work.path()),
        files(&input),
        "a dry run writes nothing"
    );
    let real = update_tree(work.path(), ".", &fixture_setters(), true).unwrap();
    assert_eq!(dry, real);
    // A second run finds nothing to change.
    let again = update_tree(work.path(), ".", &fixture_setters(), true).unwrap();
    assert!(again.files.is_empty(), "{:?}", again.files);
}
