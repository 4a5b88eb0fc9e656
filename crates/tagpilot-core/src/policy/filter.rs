//! `filterTags`: a Go RE2 pattern (unanchored, ASCII `\d \w \s`) and an optional `extract` template expanded
//! like Go's `Regexp.Expand` (`$1`, `${1}`, `$name`, `${name}`, `$$`).

use regex::bytes::Regex;

/// A compiled `filterTags` pattern with its extract template.
#[derive(Clone, Debug)]
pub struct TagFilter {
    pattern: String,
    regex: Regex,
    extract: Option<Template>,
}

/// The pattern does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid regular expression \"{pattern}\": {reason}")]
pub struct FilterError {
    /// The pattern as written.
    pub pattern: String,
    /// The compiler's message.
    pub reason: String,
}

impl TagFilter {
    /// Compiles `pattern` with Go RE2 semantics (see [`crate::re2`]) and the extract template against it.
    pub fn new(pattern: &str, extract: Option<&str>) -> Result<TagFilter, FilterError> {
        let regex = crate::re2::compile(pattern).map_err(|reason| FilterError {
            pattern: pattern.to_string(),
            reason,
        })?;
        let extract = extract
            .filter(|e| !e.is_empty())
            .map(|t| Template::compile(&regex, t));
        Ok(TagFilter {
            pattern: pattern.to_string(),
            regex,
            extract,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether an extract template is set.
    pub fn extracts(&self) -> bool {
        self.extract.is_some()
    }

    /// Whether `tag` matches the pattern anywhere.
    pub fn is_match(&self, tag: &str) -> bool {
        self.regex.is_match(tag.as_bytes())
    }

    /// The value the policy sees for `tag`: None when the pattern does not match; the tag itself without an
    /// extract template; else the template expanded with the first match's groups.
    pub fn apply(&self, tag: &str) -> Option<String> {
        let mut scratch = self.scratch();
        self.extract_into(tag, &mut scratch).map(str::to_string)
    }

    /// Reusable buffers for [`TagFilter::extract_into`].
    pub fn scratch(&self) -> Scratch {
        Scratch {
            locations: self.regex.capture_locations(),
            out: Vec::new(),
        }
    }

    /// Like [`TagFilter::apply`], expanding into `scratch` without allocating once the buffers have grown.
    /// The value is lossily decoded only when an extract template produced bytes that are not UTF-8.
    pub fn extract_into<'s>(&self, tag: &'s str, scratch: &'s mut Scratch) -> Option<&'s str> {
        let Some(template) = &self.extract else {
            return self.is_match(tag).then_some(tag);
        };
        self.regex
            .captures_read(&mut scratch.locations, tag.as_bytes())?;
        scratch.out.clear();
        for piece in &template.pieces {
            match piece {
                Piece::Literal(text) => scratch.out.extend_from_slice(text.as_bytes()),
                Piece::Group(i) => {
                    if let Some((a, z)) = scratch.locations.get(*i) {
                        scratch.out.extend_from_slice(&tag.as_bytes()[a..z]);
                    }
                }
            }
        }
        if std::str::from_utf8(&scratch.out).is_err() {
            let fixed = String::from_utf8_lossy(&scratch.out)
                .into_owned()
                .into_bytes();
            scratch.out = fixed;
        }
        std::str::from_utf8(&scratch.out).ok()
    }
}

/// Buffers reused across tags by [`TagFilter::extract_into`].
#[derive(Clone, Debug)]
pub struct Scratch {
    locations: regex::bytes::CaptureLocations,
    out: Vec<u8>,
}

/// An extract template compiled against the pattern's groups.
#[derive(Clone, Debug)]
struct Template {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug)]
enum Piece {
    Literal(String),
    /// A capture group index; a name or number the pattern lacks expands to nothing, as in Go.
    Group(usize),
}

impl Template {
    /// Go's `Regexp.Expand` rules, resolved once: `$$`, `$name`, `${name}`, numbers; a malformed `$` is literal.
    fn compile(re: &Regex, template: &str) -> Template {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(pos) = rest.find('$') {
            literal.push_str(&rest[..pos]);
            rest = &rest[pos + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = template_name(rest) else {
                literal.push('$');
                continue;
            };
            rest = after;
            let group = match group_number(name) {
                Some(n) => Some(n),
                None => re.capture_names().position(|n| n == Some(name)),
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            // Out of range: never matches, so it expands to nothing.
            pieces.push(Piece::Group(group.unwrap_or(usize::MAX)));
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Template { pieces }
    }
}

/// Go's `extract`: a name of letters, digits and `_`, optionally in braces; None when malformed.
fn template_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|c| c.is_alphabetic() || c.is_numeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let rest = &body[len..];
    if braced {
        let rest = rest.strip_prefix('}')?;
        Some((name, rest))
    } else {
        Some((name, rest))
    }
}

/// A group number as Go reads it: ASCII digits, no leading zero, below 1e8.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|c| c.is_ascii_digit())
        || (name.len() > 1 && name.starts_with('0'))
        || name.len() > 8
    {
        return None;
    }
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(p: &str, e: &str) -> TagFilter {
        TagFilter::new(p, Some(e)).unwrap()
    }

    #[test]
    fn expands_like_go() {
        assert_eq!(f(r"ver(\d+)", "$1").apply("ver12").as_deref(), Some("12"));
        assert_eq!(
            f(r"ver(\d+)", "${1}x").apply("ver12").as_deref(),
            Some("12x")
        );
        assert_eq!(
            f(r"ver(\d+)", "$1x").apply("ver12").as_deref(),
            Some(""),
            "$1x names group 1x"
        );
        assert_eq!(
            f(r"(?P<num>\d+)", "n=$num").apply("a7").as_deref(),
            Some("n=7")
        );
        assert_eq!(
            f(r"(?P<num>\d+)", "$$num").apply("a7").as_deref(),
            Some("$num")
        );
        assert_eq!(f(r"(\d+)", "$").apply("7").as_deref(), Some("$"));
        assert_eq!(f(r"(\d+)", "${1").apply("7").as_deref(), Some("${1"));
        assert_eq!(f(r"(\d+)", "$9").apply("7").as_deref(), Some(""));
        assert_eq!(f(r"(\d+)", "$01").apply("7").as_deref(), Some(""));
        assert_eq!(f(r"x", "$1").apply("7"), None);
    }

    #[test]
    fn reports_bad_patterns() {
        let e = TagFilter::new("(", None).unwrap_err();
        assert_eq!(e.pattern, "(");
        assert!(
            e.to_string()
                .starts_with("invalid regular expression \"(\""),
            "{e}"
        );
    }
}
