//! Template conformance: every case in `tests/data/templates/corpus.txt`, rendered by our engine, must give
//! what Go's text/template + sprig gave (`expected.json`, written by `make template-conformance`): the same
//! output, or an error at the same line (and, for execution errors, the same column).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;
use tagpilot_core::message::{self, MessageInput, TEMPLATE_NAME};
use tagpilot_core::setters::{
    Change, FileChanges, ObjectChanges, ObjectId, PolicyImage, PolicyKey, UpdateResult,
};
use tagpilot_core::template::{Template, TemplateError, Value};

fn dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/templates"))
}

struct Case {
    name: String,
    data: String,
    text: String,
}

fn corpus() -> Vec<Case> {
    let text = std::fs::read_to_string(dir().join("corpus.txt")).unwrap();
    let mut cases = Vec::new();
    let mut cur: Option<(String, Option<String>, Vec<&str>)> = None;
    let flush = |cur: Option<(String, Option<String>, Vec<&str>)>, cases: &mut Vec<Case>| {
        if let Some((name, data, lines)) = cur {
            cases.push(Case {
                name,
                data: data.expect("@data line"),
                text: lines.join("\n"),
            });
        }
    };
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            flush(cur.take(), &mut cases);
            cur = Some((name.to_string(), None, Vec::new()));
            continue;
        }
        let Some((_, data, lines)) = cur.as_mut() else {
            continue;
        };
        if data.is_none() {
            *data = Some(
                line.strip_prefix("@data ")
                    .expect("@data line after ###")
                    .to_string(),
            );
            continue;
        }
        lines.push(line);
    }
    flush(cur, &mut cases);
    cases
}

fn s(v: &Json, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// Builds an automation dataset the way the controller does: a setters result and policies, through
/// `message::template_data`. Also checks our image-ref parts against the go-containerregistry values in the spec.
fn automation(spec: &Json) -> Value {
    let policies: Vec<PolicyImage> = spec["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let policy = PolicyImage {
                namespace: s(p, "namespace"),
                name: s(p, "name"),
                image: s(p, "image"),
                tag: s(p, "tag"),
                digest: None,
            };
            let parts = message::image_ref_parts(&policy);
            assert_eq!(parts.string, s(p, "ref"));
            assert_eq!(parts.registry, s(p, "registry"));
            assert_eq!(parts.repository, s(p, "repository"));
            assert_eq!(parts.name, s(p, "fullName"));
            assert_eq!(parts.identifier, s(p, "identifier"));
            policy
        })
        .collect();
    let mut files: Vec<FileChanges> = spec["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| FileChanges {
            path: s(f, "path"),
            objects: f["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| ObjectChanges {
                    object: ObjectId {
                        api_version: s(o, "apiVersion"),
                        kind: s(o, "kind"),
                        name: s(o, "name"),
                        namespace: s(o, "namespace"),
                    },
                    changes: o["changes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| Change {
                            old_value: s(c, "old"),
                            new_value: s(c, "new"),
                            setter: s(c, "setter"),
                            policy: PolicyKey::from_setter(&s(c, "setter")),
                        })
                        .collect(),
                })
                .collect(),
            before: String::new(),
            after: String::new(),
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let result = UpdateResult {
        files,
        errors: Vec::new(),
    };
    let values: BTreeMap<String, String> = spec["values"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    message::template_data(&MessageInput {
        namespace: spec["namespace"].as_str().unwrap(),
        name: spec["name"].as_str().unwrap(),
        result: &result,
        policies: &policies,
        values: &values,
    })
}

#[test]
fn corpus_matches_go() {
    let datasets: BTreeMap<String, Json> =
        serde_json::from_str(&std::fs::read_to_string(dir().join("datasets.json")).unwrap())
            .unwrap();
    let expected: BTreeMap<String, Json> =
        serde_json::from_str(&std::fs::read_to_string(dir().join("expected.json")).unwrap())
            .unwrap();
    let data: BTreeMap<&str, Value> = datasets
        .iter()
        .map(|(name, d)| {
            let v = match d.get("automation") {
                Some(spec) => automation(spec),
                None => Value::from_json(&d["json"]),
            };
            (name.as_str(), v)
        })
        .collect();
    let cases = corpus();
    assert!(cases.len() >= 80, "the corpus has {} cases", cases.len());
    assert_eq!(
        cases.len(),
        expected.len(),
        "expected.json is stale: run `make template-conformance`"
    );
    let mut failures = Vec::new();
    for case in &cases {
        let want = &expected[&case.name];
        let got = Template::parse(TEMPLATE_NAME, &case.text)
            .and_then(|t| t.execute(&data[case.data.as_str()]));
        let ok = match (&got, want.get("output")) {
            (Ok(out), Some(w)) => out == w.as_str().unwrap(),
            (Err(e), None) => {
                let (kind, col) = match e {
                    TemplateError::Parse { .. } => ("parse", None),
                    TemplateError::Exec { col, .. } => ("exec", Some(*col as u64)),
                };
                kind == want["kind"].as_str().unwrap()
                    && e.line() as u64 == want["line"].as_u64().unwrap()
                    && (kind == "parse" || col == want["col"].as_u64())
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{}:\n  go:   {want}\n  ours: {got:?}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Go:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
