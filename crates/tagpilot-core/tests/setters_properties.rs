//! Property tests of the setters over generated YAML with markers: bytes outside the replaced scalars never
//! change, every marked value ends up as its setter says (read back by a fresh scan), and nothing panics.

use proptest::prelude::*;
use tagpilot_core::setters::{
    Marker, PolicyImage, Setters, markers, plain_reads_back, update_text,
};

/// Values a policy may resolve to, including ones that need quoting.
const VALUES: &[&str] = &[
    "5.0.3",
    "1.10",
    "2024-06-27",
    "on",
    "it's: odd #1",
    "a\"b\\c",
    "ghcr.io/x/y:1.0@sha256:ab",
    "-dash",
    "[x]",
    "null",
    "é-ü",
    "~",
    "v1.2.3-rc.1+build",
    "0x1F",
    "#hash",
    "tab\there",
];

fn setters(values: &[usize]) -> Setters {
    let mut s = Setters::default();
    for (i, v) in values.iter().enumerate() {
        s.add(&PolicyImage {
            namespace: "ns".into(),
            name: format!("p{i}"),
            image: format!("reg/p{i}"),
            tag: VALUES[*v].into(),
            digest: None,
        });
    }
    s
}

#[derive(Clone, Debug)]
enum Node {
    Scalar {
        value: usize,
        style: u8,
        marker: Option<String>,
        pad: usize,
    },
    Map(Vec<Node>),
    Seq(Vec<Node>, bool),
    Flow(Vec<(usize, u8)>, Option<String>),
    Block(Option<String>),
}

fn setter_name() -> impl Strategy<Value = String> {
    prop_oneof![
        (0usize..3).prop_map(|i| format!("ns:p{i}")),
        (0usize..3).prop_map(|i| format!("ns:p{i}:tag")),
        (0usize..3).prop_map(|i| format!("ns:p{i}:name")),
        Just("ns:unknown".to_string()),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let scalar = (
        0..VALUES.len(),
        0u8..3,
        prop::option::of(setter_name()),
        1usize..3,
    )
        .prop_map(|(value, style, marker, pad)| Node::Scalar {
            value,
            style,
            marker,
            pad,
        });
    let leaf = prop_oneof![
        4 => scalar,
        1 => (prop::collection::vec((0..VALUES.len(), 0u8..3), 1..4), prop::option::of(setter_name()))
            .prop_map(|(items, m)| Node::Flow(items, m)),
        1 => prop::option::of(setter_name()).prop_map(Node::Block),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Node::Map),
            (prop::collection::vec(inner, 1..4), any::<bool>())
                .prop_map(|(v, head)| Node::Seq(v, head)),
        ]
    })
}

fn scalar_text(value: &str, style: u8) -> String {
    match style {
        0 if plain_reads_back(value, false) => value.to_string(),
        0 | 1 if !value.contains(['\t', '\n']) => format!("'{}'", value.replace('\'', "''")),
        _ => format!(
            "\"{}\"",
            value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\t', "\\t")
        ),
    }
}

fn marker(m: &Option<String>) -> String {
    m.as_ref()
        .map(|s| format!(" # {{\"$imagepolicy\": \"{s}\"}}"))
        .unwrap_or_default()
}

/// Renders a node as the value of a mapping key (after `key:`) at `indent`.
fn render(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Scalar {
            value,
            style,
            marker: m,
            pad: p,
        } => {
            out.push(' ');
            out.push_str(&scalar_text(VALUES[*value], *style));
            out.push_str(&" ".repeat(*p - 1));
            out.push_str(&marker(m));
            out.push('\n');
        }
        Node::Flow(items, m) => {
            let items: Vec<String> = items
                .iter()
                .map(|(v, s)| {
                    if VALUES[*v].contains([',', '[', ']', '{', '}', '#']) {
                        scalar_text(VALUES[*v], 2)
                    } else {
                        scalar_text(VALUES[*v], *s)
                    }
                })
                .collect();
            out.push_str(&format!(" [{}]{}\n", items.join(", "), marker(m)));
        }
        Node::Block(m) => {
            out.push_str(" |\n");
            out.push_str(&format!(
                "{pad}  image: reg/p0:1.0{}\n{pad}  second line\n",
                marker(m)
            ));
        }
        Node::Map(entries) => {
            out.push('\n');
            for (i, e) in entries.iter().enumerate() {
                out.push_str(&format!("{pad}k{i}:"));
                render(e, indent + 2, out);
            }
        }
        Node::Seq(items, head) => {
            out.push('\n');
            for item in items {
                match item {
                    Node::Scalar {
                        value,
                        style,
                        marker: m,
                        ..
                    } if *head && m.is_some() => {
                        out.push_str(&format!("{pad}{}\n", marker(m).trim_start()));
                        out.push_str(&format!("{pad}- {}\n", scalar_text(VALUES[*value], *style)));
                    }
                    Node::Map(_) | Node::Seq(..) => {
                        out.push_str(&format!("{pad}- k:"));
                        render(item, indent + 4, out);
                    }
                    other => {
                        out.push_str(&format!("{pad}-"));
                        render(other, indent + 2, out);
                    }
                }
            }
        }
    }
}

fn document_stream() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::collection::vec(node(), 1..5), 1..3),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(docs, crlf, bom, final_newline)| {
            let mut out = String::new();
            if bom {
                out.push('\u{feff}');
            }
            for (d, entries) in docs.iter().enumerate() {
                if d > 0 || crlf {
                    out.push_str("---\n");
                }
                out.push_str("# a comment\n");
                for (i, e) in entries.iter().enumerate() {
                    out.push_str(&format!("key{i}:"));
                    render(e, 2, &mut out);
                }
            }
            if crlf {
                out = out.replace('\n', "\r\n");
            }
            if !final_newline {
                out.truncate(out.trim_end().len());
            }
            out
        })
}

/// The text between consecutive markers (and before the first and after the last).
fn gaps<'t>(text: &'t str, ms: &[Marker]) -> Vec<&'t str> {
    let mut out = Vec::new();
    let mut at = 0;
    for m in ms {
        out.push(&text[at..m.start]);
        at = m.end;
    }
    out.push(&text[at..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn only_marked_scalars_change(text in document_stream(), values in prop::collection::vec(0..VALUES.len(), 3)) {
        let setters = setters(&values);
        let before = markers(&text).expect("generated YAML scans");
        match update_text(&text, &setters) {
            Ok(None) => {
                for m in &before {
                    prop_assert!(setters.get(&m.setter).is_none_or(|v| v == m.value), "{m:?} was due a change");
                }
            }
            Ok(Some(update)) => {
                let after = markers(&update.text).expect("the output scans");
                prop_assert_eq!(after.len(), before.len(), "same markers after the edit");
                prop_assert_eq!(gaps(&text, &before), gaps(&update.text, &after), "bytes outside the scalars");
                for (b, a) in before.iter().zip(&after) {
                    prop_assert_eq!(&a.setter, &b.setter);
                    let want = setters.get(&b.setter).unwrap_or(&b.value);
                    prop_assert_eq!(&a.value, want, "the value read back");
                }
                prop_assert!(update_text(&update.text, &setters).unwrap().is_none(), "a second run changes nothing");
            }
            Err(e) => prop_assert!(false, "generated YAML was refused: {e}\n{text}"),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(prefix in "\\PC{0,60}", suffix in "\\PC{0,60}", value in 0..VALUES.len()) {
        let text = format!("{prefix}x: y # {{\"$imagepolicy\": \"ns:p0\"}}{suffix}");
        let _ = update_text(&text, &setters(&[value]));
        let bytes: String = text.chars().rev().collect();
        let _ = update_text(&bytes, &setters(&[value]));
    }
}

/// The generator must exercise the engine: most streams carry markers and many get edited.
#[test]
fn generated_streams_exercise_edits() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut with_markers, mut edited, mut quoted_values, mut total) = (0, 0, 0, 0);
    for _ in 0..300 {
        let text = document_stream().new_tree(&mut runner).unwrap().current();
        let values = prop::collection::vec(0..VALUES.len(), 3)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        total += 1;
        let found = markers(&text).unwrap();
        if !found.is_empty() {
            with_markers += 1;
        }
        if let Ok(Some(u)) = update_text(&text, &setters(&values)) {
            edited += 1;
            if u.text.contains("# {\"$imagepolicy\"") && u.text.contains("\"1.10\"") {
                quoted_values += 1;
            }
        }
    }
    assert!(
        with_markers * 10 >= total * 8,
        "{with_markers}/{total} streams have markers"
    );
    assert!(edited * 2 >= total, "{edited}/{total} streams were edited");
    assert!(quoted_values > 0, "no edit needed quoting");
}
