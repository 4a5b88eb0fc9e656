//! Finding the marked scalars of a YAML text, with their exact byte spans.
//!
//! saphyr's event parser gives the structure (which scalars are mapping values or sequence items, in which
//! document, under which path) and where each scalar starts. The end of a quoted scalar is found here by
//! reading the quotes (saphyr's end mark can run past a quoted scalar into the rest of the line). Comments are
//! read from the text: a scalar's line comment is the `#` comment that follows it on its last line with only
//! blanks or flow punctuation in between; its head comment is the single comment line right above it, used
//! only when the scalar starts its line (after indentation and `- ` indicators) and has no line comment.
//!
//! A scalar's properties (`&anchor`, `!tag`) are not part of its span: an edit replaces the text after them.
//! The scan is the first reader of a file and bounds the work of every later one: it refuses nesting deeper
//! than [`MAX_DEPTH`] as soon as it sees it, and it measures (never performs) alias expansion, refusing a text
//! whose aliases would expand to more nodes than [`alias_budget`] allows before any parser expands them.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::render::Style;

/// One step of a path into a document: the n-th entry of a mapping or the n-th item of a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The value of the n-th key of a mapping.
    Entry(usize),
    /// The n-th item of a sequence.
    Item(usize),
}

/// A scalar marked with a setter comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marked {
    /// Byte offset of the scalar's first character (the quote for a quoted scalar).
    pub start: usize,
    /// Byte offset just past the scalar (past the closing quote).
    pub end: usize,
    /// The quoting style.
    pub style: Style,
    /// Whether the scalar is inside a flow collection.
    pub in_flow: bool,
    /// The decoded value.
    pub value: String,
    /// The setter the marker names (`ns:name`, `ns:name:tag`, ...).
    pub setter: String,
    /// Index of the document within the stream.
    pub document: usize,
    /// Where in the document the scalar is.
    pub path: Vec<Step>,
}

/// How deep collections may nest in a marked file (serde_yaml's and kyaml's parsers stop at about this depth).
pub const MAX_DEPTH: usize = 128;

/// How many nodes a text's aliases may expand to in all: four times the text's own nodes, and at least 10,000.
/// Anchors and aliases in real manifests repeat a few blocks; a "billion laughs" text exceeds this at once.
pub fn alias_budget(own_nodes: usize) -> usize {
    own_nodes.saturating_mul(4).max(10_000)
}

/// Why a text could not be scanned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ScanError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The parser's message.
    pub message: String,
}

/// Where anchors are defined and aliases used, for reading an edit the way YAML does: an alias of an edited
/// anchor reads the new value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Anchors {
    /// `(document, path)` of each anchored node, by anchor id.
    pub defined: HashMap<usize, (usize, Vec<Step>)>,
    /// `(document, path, anchor id)` of each alias.
    pub aliases: Vec<(usize, Vec<Step>, usize)>,
}

impl Anchors {
    /// Every path at which the node at `(document, path)` is read: itself and, through aliases of anchored
    /// nodes that contain it, its copies. At most `limit` paths (the alias budget bounds the real number).
    pub fn readings(&self, document: usize, path: &[Step], limit: usize) -> Vec<Vec<Step>> {
        let mut out = vec![path.to_vec()];
        let mut i = 0;
        while i < out.len() && out.len() < limit {
            let p = out[i].clone();
            i += 1;
            for (id, (doc, at)) in &self.defined {
                if *doc != document || !p.starts_with(at) {
                    continue;
                }
                for (adoc, apath, aid) in &self.aliases {
                    if adoc == &document && aid == id {
                        let mut copy = apath.clone();
                        copy.extend_from_slice(&p[at.len()..]);
                        if !out.contains(&copy) {
                            out.push(copy);
                        }
                    }
                }
            }
        }
        out
    }
}

/// What a scan found: the marked scalars in document order, the number of documents, the anchors, and the
/// number of nodes with and without alias expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The marked scalars.
    pub marked: Vec<Marked>,
    /// How many documents the stream has.
    pub documents: usize,
    /// Anchors and aliases.
    pub anchors: Anchors,
    /// Nodes as written.
    pub nodes: usize,
    /// Nodes with every alias expanded.
    pub expanded: usize,
}

enum Frame {
    Map {
        flow: bool,
        expect_key: bool,
        entries: usize,
        anchor: usize,
        size: usize,
    },
    Seq {
        flow: bool,
        items: usize,
        anchor: usize,
        size: usize,
    },
}

impl Frame {
    fn size(&mut self) -> &mut usize {
        match self {
            Frame::Map { size, .. } | Frame::Seq { size, .. } => size,
        }
    }
}

/// The marked scalars of `text` in document order, its documents, anchors and node counts.
///
/// saphyr refuses a tab after `:` before a value that contains `:` (`image:\tghcr.io/a:1`), which YAML
/// allows and libyaml accepts. Such a text is scanned again as a copy with its tabs turned into spaces, which
/// keeps every offset (both are one byte); values are then read from the original text, and a quoted or
/// multi-line scalar with a tab inside it is left alone rather than decoded from the copy.
pub fn find_marked(text: &str) -> Result<Scan, ScanError> {
    match scan(text, text) {
        Err(e) if text.contains('\t') => scan(text, &text.replace('\t', " ")).map_err(|_| e),
        result => result,
    }
}

/// Scans the structure of `parsed` (the text, or its copy with tabs as spaces) and reads spans, comments and
/// values from `text`.
fn scan(text: &str, parsed: &str) -> Result<Scan, ScanError> {
    let offsets = CharOffsets::new(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut path: Vec<Step> = Vec::new();
    let mut found = Scan::default();
    // Expanded size of each anchored node, by anchor id (an alias costs what its anchor's node costs).
    let mut anchor_sizes: HashMap<usize, usize> = HashMap::new();
    let mut parser = Parser::new_from_str(parsed);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| ScanError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let start = offsets.byte(span.start.index());
        let refuse = |message: String| {
            let line = text[..start].matches('\n').count() + 1;
            let column = start - text[..start].rfind('\n').map_or(0, |n| n + 1) + 1;
            ScanError {
                line,
                column,
                message,
            }
        };
        // Every node adds its expanded size to the collection it is in and to the whole text.
        let node_size = match &event {
            Event::Alias(id) => Some(anchor_sizes.get(id).copied().unwrap_or(1)),
            Event::Scalar(..) | Event::MappingStart(..) | Event::SequenceStart(..) => Some(1),
            _ => None,
        };
        if let Some(n) = node_size {
            found.nodes += 1;
            found.expanded = found.expanded.saturating_add(n);
            if let Some(top) = stack.last_mut() {
                *top.size() = top.size().saturating_add(n);
            }
            if found.expanded > alias_budget(found.nodes) {
                return Err(refuse(format!(
                    "aliases expand to more than {} nodes (the limit for a text of {} nodes); not expanded",
                    alias_budget(found.nodes),
                    found.nodes
                )));
            }
        }
        match event {
            Event::DocumentStart(_) => {
                found.documents += 1;
                stack.clear();
                path.clear();
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(refuse(format!(
                        "collections nest deeper than {MAX_DEPTH} levels"
                    )));
                }
                let is_map = matches!(event, Event::MappingStart(..));
                let role = node_role(&mut stack, &mut path);
                let flow = matches!(text.as_bytes().get(start), Some(b'{' | b'['));
                if role == Role::Key {
                    // A complex key: its contents are never candidates; keep the structure consistent.
                    path.push(Step::Entry(usize::MAX));
                }
                if anchor != 0 {
                    found
                        .anchors
                        .defined
                        .insert(anchor, (found.documents.saturating_sub(1), path.clone()));
                }
                stack.push(if is_map {
                    Frame::Map {
                        flow,
                        expect_key: true,
                        entries: 0,
                        anchor,
                        size: 1,
                    }
                } else {
                    Frame::Seq {
                        flow,
                        items: 0,
                        anchor,
                        size: 1,
                    }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(Frame::Map { anchor, size, .. } | Frame::Seq { anchor, size, .. }) =
                    stack.pop()
                {
                    if anchor != 0 {
                        anchor_sizes.insert(anchor, size);
                    }
                    // The collection's own node was counted when it started.
                    if let Some(top) = stack.last_mut() {
                        *top.size() = top.size().saturating_add(size - 1);
                    }
                }
                path.pop();
            }
            Event::Alias(id) => {
                // An alias is a node like any other; only its path step has to be undone.
                let role = node_role(&mut stack, &mut path);
                if role != Role::Key {
                    found.anchors.aliases.push((
                        found.documents.saturating_sub(1),
                        path.clone(),
                        id,
                    ));
                    path.pop();
                }
            }
            Event::Scalar(value, style, anchor, _) => {
                let role = node_role(&mut stack, &mut path);
                if anchor != 0 {
                    anchor_sizes.insert(anchor, 1);
                    if role != Role::Key {
                        found
                            .anchors
                            .defined
                            .insert(anchor, (found.documents.saturating_sub(1), path.clone()));
                    }
                }
                if role == Role::Key {
                    continue;
                }
                let here = path.clone();
                path.pop();
                if role == Role::Root {
                    continue;
                }
                // The scalar's text starts after its properties (`&anchor`, `!tag`), which an edit keeps.
                let props_start = start;
                let start = skip_properties(text, start);
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    // Block scalars are never image references; they are left as they are.
                    _ => continue,
                };
                let in_flow = stack.iter().any(|f| {
                    matches!(
                        f,
                        Frame::Map { flow: true, .. } | Frame::Seq { flow: true, .. }
                    )
                });
                let Some(end) = scalar_end(text, start, offsets.byte(span.end.index()), style)
                else {
                    continue;
                };
                let Some(setter) = marker_of(text, props_start, end, in_flow) else {
                    continue;
                };
                let source = &text[start..end];
                let value = if source == &parsed[start..end] {
                    value.into_owned()
                } else if style == Style::Plain && !source.contains(['\n', '\r']) {
                    source.to_string()
                } else {
                    continue;
                };
                found.marked.push(Marked {
                    start,
                    end,
                    style,
                    in_flow,
                    value,
                    setter,
                    document: found.documents.saturating_sub(1),
                    path: here,
                });
            }
            Event::StreamEnd => break,
            _ => {}
        }
    }
    Ok(found)
}

/// The offset past a node's properties (`&anchor`, `!tag`, `!<verbatim>`, in any order) and the blanks,
/// line breaks and comments after them; `start` itself when the node has none.
fn skip_properties(text: &str, start: usize) -> usize {
    let b = text.as_bytes();
    let mut i = start;
    while matches!(b.get(i), Some(b'&' | b'!')) {
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        loop {
            match b.get(i) {
                Some(b' ' | b'\t' | b'\r' | b'\n') => i += 1,
                Some(b'#') => {
                    i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
                }
                _ => break,
            }
        }
    }
    i
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Root,
    Key,
    Value,
    Item,
}

/// Advances the parent frame for a new node and pushes the node's path step (except for keys and the root).
fn node_role(stack: &mut [Frame], path: &mut Vec<Step>) -> Role {
    match stack.last_mut() {
        None => {
            path.push(Step::Item(0));
            Role::Root
        }
        Some(Frame::Map {
            expect_key,
            entries,
            ..
        }) => {
            if *expect_key {
                *expect_key = false;
                Role::Key
            } else {
                *expect_key = true;
                path.push(Step::Entry(*entries));
                *entries += 1;
                Role::Value
            }
        }
        Some(Frame::Seq { items, .. }) => {
            path.push(Step::Item(*items));
            *items += 1;
            Role::Item
        }
    }
}

/// The byte offset just past the scalar that starts at `start`.
fn scalar_end(text: &str, start: usize, parser_end: usize, style: Style) -> Option<usize> {
    let b = text.as_bytes();
    match style {
        Style::Plain => {
            let end = parser_end.min(b.len()).max(start);
            // YAML's white space only: U+2028 and other Unicode spaces are content in YAML 1.2.
            Some(
                start
                    + text[start..end]
                        .trim_end_matches([' ', '\t', '\r', '\n'])
                        .len(),
            )
        }
        Style::SingleQuoted => {
            if b.get(start) != Some(&b'\'') {
                return None;
            }
            let mut i = start + 1;
            loop {
                let q = i + memchr::memchr(b'\'', b.get(i..)?)?;
                if b.get(q + 1) == Some(&b'\'') {
                    i = q + 2;
                } else {
                    return Some(q + 1);
                }
            }
        }
        Style::DoubleQuoted => {
            if b.get(start) != Some(&b'"') {
                return None;
            }
            let mut i = start + 1;
            loop {
                let q = i + memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
                if b[q] == b'\\' {
                    i = q + 2;
                } else {
                    return Some(q + 1);
                }
            }
        }
    }
}

/// The setter named by the scalar's line comment, else by its head comment.
fn marker_of(text: &str, start: usize, end: usize, in_flow: bool) -> Option<String> {
    match line_comment(text, end, in_flow) {
        Some(comment) => setter_in(comment),
        None => head_comment(text, start).and_then(setter_in),
    }
}

/// The `#` comment after `end` on the same line, with only blanks (and, in flow context, `,` `]` `}`) between.
fn line_comment(text: &str, end: usize, in_flow: bool) -> Option<&str> {
    let b = text.as_bytes();
    let mut i = end;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' => i += 1,
            b',' | b']' | b'}' if in_flow => i += 1,
            b'#' if i > 0 && matches!(b[i - 1], b' ' | b'\t') => {
                let eol = memchr::memchr2(b'\n', b'\r', &b[i..]).map_or(b.len(), |n| i + n);
                return Some(&text[i..eol]);
            }
            _ => return None,
        }
    }
    None
}

/// The comment block right above the scalar's line, when the scalar starts its line.
fn head_comment(text: &str, start: usize) -> Option<&str> {
    let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
    if !starts_its_line(&text[line_start..start]) {
        return None;
    }
    // Lines above, nearest first: a contiguous block of comment lines.
    let mut above = text[..line_start].strip_suffix('\n')?;
    let mut block: Vec<&str> = Vec::new();
    loop {
        let line_begin = above.rfind('\n').map_or(0, |n| n + 1);
        let line = above[line_begin..]
            .trim_end_matches('\r')
            .trim_start_matches([' ', '\t', '\u{feff}']);
        if !line.starts_with('#') {
            break;
        }
        block.push(line.trim_end());
        if line_begin == 0 {
            break;
        }
        above = &above[..line_begin - 1];
    }
    // Flux parses the whole block as one JSON text: only a single line can be a marker.
    match block.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// Whether the text before a scalar on its line is only indentation and `- ` indicators: `^[ \t]*(-[ \t]+)*$`.
fn starts_its_line(prefix: &str) -> bool {
    let mut rest = prefix.trim_start_matches([' ', '\t', '\u{feff}']);
    while let Some(after) = rest.strip_prefix('-') {
        let trimmed = after.trim_start_matches([' ', '\t']);
        if trimmed.len() == after.len() {
            return false;
        }
        rest = trimmed;
    }
    rest.is_empty()
}

/// The `$imagepolicy` value of a comment that is exactly a JSON object of strings (after its leading `#`s).
fn setter_in(comment: &str) -> Option<String> {
    let json = comment.trim_start_matches('#');
    if !json.contains("$imagepolicy") {
        return None;
    }
    let mut fields: HashMap<String, String> = serde_json::from_str(json).ok()?;
    fields.remove("$imagepolicy").filter(|s| !s.is_empty())
}

/// Byte offsets of char indexes (saphyr counts chars); identity for ASCII text.
struct CharOffsets {
    table: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> CharOffsets {
        let table = (!text.is_ascii()).then(|| text.char_indices().map(|(i, _)| i).collect());
        CharOffsets {
            table,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(t) => t.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(text: &str) -> Vec<(String, String, String)> {
        find_marked(text)
            .unwrap()
            .marked
            .into_iter()
            .map(|m| (text[m.start..m.end].to_string(), m.value, m.setter))
            .collect()
    }

    fn one(t: &str, v: &str, s: &str) -> (String, String, String) {
        (t.into(), v.into(), s.into())
    }

    #[test]
    fn finds_line_comment_markers_in_every_style() {
        let text = "a: app:1 # {\"$imagepolicy\": \"ns:a\"}\nb: 'app:2' # {\"$imagepolicy\": \"ns:b\"}\n\
                    c: \"app:3\"   # {\"$imagepolicy\": \"ns:c\"}\nd:\n- app:4 # {\"$imagepolicy\": \"ns:d\"}\n\
                    e: [x, 'app:5'] # {\"$imagepolicy\": \"ns:e\"}\n";
        assert_eq!(
            marked(text),
            vec![
                one("app:1", "app:1", "ns:a"),
                one("'app:2'", "app:2", "ns:b"),
                one("\"app:3\"", "app:3", "ns:c"),
                one("app:4", "app:4", "ns:d"),
                one("'app:5'", "app:5", "ns:e"),
            ]
        );
    }

    #[test]
    fn head_comments_count_only_for_scalars_that_start_their_line() {
        let text = "images:\n  # {\"$imagepolicy\": \"ns:a\"}\n  - app:1\nimage:\n  # {\"$imagepolicy\": \"ns:b\"}\n  app:2\n\
                    # {\"$imagepolicy\": \"ns:c\"}\nkey: app:3\n";
        assert_eq!(
            marked(text),
            vec![one("app:1", "app:1", "ns:a"), one("app:2", "app:2", "ns:b")]
        );
    }

    #[test]
    fn keys_trailing_text_and_other_json_are_not_markers() {
        let text = "app:1: x # {\"$imagepolicy\": \"ns:a\"}\n\
                    b: app:2 # {\"$imagepolicy\": \"ns:b\"} trailing\n\
                    c: app:3 # {\"$imagepolicy\": 3}\n\
                    d: app:4 # {\"other\": \"ns:d\"}\n\
                    e: app:5 ## {\"$imagepolicy\": \"ns:e\"}\n\
                    f: 'it''s' # {\"$imagepolicy\": \"ns:f\", \"x\": \"y\"}\n";
        assert_eq!(
            marked(text),
            vec![
                one("x", "x", "ns:a"),
                one("app:5", "app:5", "ns:e"),
                one("'it''s'", "it's", "ns:f")
            ]
        );
    }

    #[test]
    fn tabs_after_colons_are_read_like_spaces() {
        let text = "a:\tapp:1 # {\"$imagepolicy\": \"ns:a\"}\nb:\t'x\ty' # {\"$imagepolicy\": \"ns:b\"}\nc:\tp\tq # {\"$imagepolicy\": \"ns:c\"}\n";
        assert_eq!(
            marked(text),
            vec![one("app:1", "app:1", "ns:a"), one("p\tq", "p\tq", "ns:c")]
        );
    }

    #[test]
    fn documents_paths_and_non_ascii_offsets() {
        let text = "\u{feff}---\r\nnäme: wert\r\nimage: app:1 # {\"$imagepolicy\": \"ns:a\"}\r\n---\r\nlist:\r\n- é\r\n- \"app:2\" # {\"$imagepolicy\": \"ns:b\"}\r\n";
        let scan = find_marked(text).unwrap();
        let (found, docs) = (scan.marked, scan.documents);
        assert_eq!(docs, 2);
        assert_eq!(&text[found[0].start..found[0].end], "app:1");
        assert_eq!(
            (found[0].document, found[0].path.clone()),
            (0, vec![Step::Item(0), Step::Entry(1)])
        );
        assert_eq!(&text[found[1].start..found[1].end], "\"app:2\"");
        assert_eq!(
            (found[1].document, found[1].path.clone()),
            (1, vec![Step::Item(0), Step::Entry(0), Step::Item(1)])
        );
    }
}
