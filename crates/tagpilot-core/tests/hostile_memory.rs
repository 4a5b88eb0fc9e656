//! Inputs that exhausted memory before, run under a 1 GiB address-space limit (as the Deployment's memory
//! limit would stop the process): each fails with a message and the process lives. Peak RSS is printed
//! (`cargo test --test hostile_memory -- --nocapture`), not asserted.

use tagpilot_core::setters::{PolicyImage, Setters, update_tree};
use tagpilot_core::template::{Template, Value};

mod support;
use support::{one_gib, peak_rss_mib};

#[test]
fn a_yaml_alias_bomb_next_to_a_marked_value_is_skipped_with_a_warning() {
    one_gib();
    let root = tempfile::tempdir().unwrap();
    let items = vec!["x"; 2000].join(", ");
    let aliases = vec!["*a"; 2000].join(", ");
    // 10 KB of text, 4 million nodes expanded (1.2 GB and SIGABRT before).
    std::fs::write(
        root.path().join("bomb.yaml"),
        format!("a: &a [{items}]\nb: [{aliases}]\nimage: app:1 # {{\"$imagepolicy\": \"ns:p\"}}\n"),
    )
    .unwrap();
    let setters = Setters::from_policies(&[PolicyImage {
        namespace: "ns".into(),
        name: "p".into(),
        image: "app".into(),
        tag: "2".into(),
        digest: None,
    }]);
    let r = update_tree(root.path(), ".", &setters, true).unwrap();
    assert_eq!(r.errors.len(), 1);
    assert!(
        r.errors[0].message.contains("aliases expand"),
        "{:?}",
        r.errors
    );
    println!("alias bomb: peak RSS {} MiB", peak_rss_mib());
}

#[test]
fn commit_templates_that_would_allocate_without_bound_fail() {
    one_gib();
    let data = Value::from_json(&serde_json::json!({}));
    for text in [
        r#"{{ repeat 100000000000 "x" }}"#,
        r#"{{ printf "%*d" 100000000000 1 }}"#,
        "{{ range until 100000000000 }}x{{ end }}",
    ] {
        let e = Template::parse("msg", text)
            .unwrap()
            .execute(&data)
            .unwrap_err();
        assert!(e.to_string().contains("limit"), "{text}: {e}");
    }
    println!("template bombs: peak RSS {} MiB", peak_rss_mib());
}
