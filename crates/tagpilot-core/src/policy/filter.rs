//! `filterTags`: a Go RE2 pattern (unanchored, ASCII `\d \w \s`) and an optional `extract` template expanded
//! like Go's `Regexp.Expand` (`$1`, `${1}`, `$name`, `${name}`, `$$`).

use regex::bytes::{Regex, RegexBuilder};

/// A compiled `filterTags` pattern with its extract template.
#[derive(Clone, Debug)]
pub struct TagFilter {
    pattern: String,
    regex: Regex,
    extract: Option<String>,
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
    /// Compiles `pattern` with RE2 semantics. Tags are ASCII (the OCI grammar), so the pattern runs over bytes
    /// with Unicode classes off, which gives `\d`, `\w`, `\s`, `\b` their RE2 (ASCII) meaning; a pattern that
    /// needs Unicode (`\pL`) is compiled with Unicode on.
    pub fn new(pattern: &str, extract: Option<&str>) -> Result<TagFilter, FilterError> {
        let translated = translate_quoted_literals(pattern);
        let regex = RegexBuilder::new(&translated)
            .unicode(false)
            .build()
            .or_else(|_| RegexBuilder::new(&translated).unicode(true).build())
            .map_err(|e| FilterError {
                pattern: pattern.to_string(),
                reason: e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            })?;
        Ok(TagFilter {
            pattern: pattern.to_string(),
            regex,
            extract: extract.filter(|e| !e.is_empty()).map(str::to_string),
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
        let Some(template) = &self.extract else {
            return self.is_match(tag).then(|| tag.to_string());
        };
        let caps = self.regex.captures(tag.as_bytes())?;
        let mut out = Vec::with_capacity(template.len() + tag.len());
        expand(&self.regex, &caps, template, &mut out);
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Go's `Regexp.Expand`.
fn expand(re: &Regex, caps: &regex::bytes::Captures<'_>, template: &str, out: &mut Vec<u8>) {
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        out.extend_from_slice(&rest.as_bytes()[..pos]);
        rest = &rest[pos + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push(b'$');
            rest = after;
            continue;
        }
        let Some((name, after)) = template_name(rest) else {
            out.push(b'$');
            continue;
        };
        rest = after;
        let group = match group_number(name) {
            Some(n) => caps.get(n),
            None => re
                .capture_names()
                .position(|n| n == Some(name))
                .and_then(|i| caps.get(i)),
        };
        if let Some(m) = group {
            out.extend_from_slice(m.as_bytes());
        }
    }
    out.extend_from_slice(rest.as_bytes());
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

/// RE2 accepts `\Q...\E` quoted literals; the regex crate does not, so they are escaped here.
fn translate_quoted_literals(pattern: &str) -> String {
    if !pattern.contains("\\Q") {
        return pattern.to_string();
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, 'Q')) => {
                let start = i + 2;
                let body_end = pattern[start..]
                    .find("\\E")
                    .map_or(pattern.len(), |p| start + p);
                out.push_str(&regex::escape(&pattern[start..body_end]));
                let resume = (body_end + 2).min(pattern.len());
                while chars.peek().is_some_and(|&(j, _)| j < resume) {
                    chars.next();
                }
            }
            Some((_, other)) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
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
    fn classes_are_ascii_as_in_re2() {
        let d = TagFilter::new(r"^\d+$", None).unwrap();
        assert!(d.is_match("123"));
        assert!(!d.is_match("١٢٣"), "Arabic-Indic digits are not \\d in RE2");
        assert!(TagFilter::new(r"^\pL+$", None).unwrap().is_match("abc"));
        assert!(TagFilter::new(r"^\Qa.b\E$", None).unwrap().is_match("a.b"));
        assert!(!TagFilter::new(r"^\Qa.b\E$", None).unwrap().is_match("axb"));
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
