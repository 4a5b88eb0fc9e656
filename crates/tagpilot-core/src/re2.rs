//! Regular expressions with Go RE2 semantics, as Flux compiles `filterTags.pattern` and `exclusionList`.
//!
//! Tags are ASCII (the OCI grammar), so patterns run over bytes with Unicode classes off: `\d`, `\w`, `\s`,
//! `\b` then have their RE2 (ASCII) meaning. A pattern that needs Unicode (`\pL`) is compiled with Unicode on.
//! RE2's `\Q...\E` quoting, which the regex crate lacks, is translated.

use regex::bytes::{Regex, RegexBuilder};

/// Compiles `pattern`; the error is the compiler's message, reduced to its last line.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    let translated = translate_quoted_literals(pattern);
    RegexBuilder::new(&translated)
        .unicode(false)
        .build()
        .or_else(|_| RegexBuilder::new(&translated).unicode(true).build())
        .map_err(|e| {
            e.to_string()
                .lines()
                .last()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
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
    use super::compile;

    #[test]
    fn classes_are_ascii_as_in_re2() {
        let d = compile(r"^\d+$").unwrap();
        assert!(d.is_match(b"123"));
        assert!(
            !d.is_match("١٢٣".as_bytes()),
            "Arabic-Indic digits are not \\d in RE2"
        );
        assert!(compile(r"^\pL+$").unwrap().is_match(b"abc"));
        assert!(compile(r"^\Qa.b\E$").unwrap().is_match(b"a.b"));
        assert!(!compile(r"^\Qa.b\E$").unwrap().is_match(b"axb"));
        assert!(compile("(").is_err());
    }
}
