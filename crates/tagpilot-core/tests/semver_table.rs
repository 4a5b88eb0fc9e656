//! The range table in `tests/data/semver-ranges.tsv`: (range, version, true|false|error). The same file is
//! checked against Go's Masterminds/semver by `hack/go-harness/semvercheck` (see the file's header).

use tagpilot_core::semver::{Range, Version};

#[test]
fn range_table() {
    let table = include_str!("data/semver-ranges.tsv");
    let mut cases = 0;
    let mut failures = Vec::new();
    for (n, line) in table.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let (range, version, want) = (fields[0], fields[1], fields[2]);
        cases += 1;
        let parsed = Range::parse(range);
        let got = match (&parsed, want) {
            (Err(_), "error") => continue,
            (Ok(_), "error") => "parses".to_string(),
            (Err(e), _) => format!("error: {e}"),
            (Ok(r), _) => r
                .matches(&Version::parse(version).expect("table versions parse"))
                .to_string(),
        };
        if got != want {
            failures.push(format!(
                "line {}: {range:?} {version:?}: want {want}, got {got}",
                n + 1
            ));
        }
    }
    assert!(cases >= 150, "the table has {cases} cases");
    assert!(
        failures.is_empty(),
        "{} of {cases} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn range_errors_quote_the_range() {
    let e = Range::parse(">=1.0.0 <2.x.y").unwrap_err();
    assert_eq!(e.range, ">=1.0.0 <2.x.y");
    assert!(
        e.to_string()
            .starts_with("invalid semver range \">=1.0.0 <2.x.y\""),
        "{e}"
    );
}
