//! How a new value is written into the scalar it replaces: the scalar's own quoting style, upgraded to double
//! quotes when a plain scalar would not read back as the same string.

use std::sync::LazyLock;

use regex::Regex;

/// The quoting style of a scalar in the source text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Unquoted.
    Plain,
    /// `'...'`.
    SingleQuoted,
    /// `"..."`.
    DoubleQuoted,
}

/// The text to put in place of a scalar of `style` so that it reads back as the string `value`.
pub fn render(value: &str, style: Style, in_flow: bool) -> String {
    match style {
        Style::Plain if plain_reads_back(value, in_flow) => value.to_string(),
        Style::SingleQuoted if value.chars().all(|c| !c.is_control()) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        _ => double_quoted(value),
    }
}

/// Whether `value` written plain reads back as that same string under YAML 1.1, YAML 1.2 and Kubernetes.
pub fn plain_reads_back(value: &str, in_flow: bool) -> bool {
    plain_is_well_formed(value, in_flow) && !resolves_to_non_string(value)
}

/// Whether a plain scalar with this text would be read as something other than a string (null, bool, int,
/// float, timestamp, merge or value key) by a YAML 1.1 or 1.2 parser: `1.10`, `yes`, `on`, `~`, `.inf`,
/// `2024-06-27`, `0x1F`, `1_000`, `12:30`.
pub fn resolves_to_non_string(value: &str) -> bool {
    static NON_STRING: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"^(?:",
            // null
            r"~|null|Null|NULL|",
            // booleans, YAML 1.1 and 1.2
            r"y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|",
            // YAML 1.1 value and merge keys
            r"=|<<|",
            // integers: 1.1 binary, octal, decimal, hex, sexagesimal; 1.2 decimal, octal, hex
            r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|",
            r"[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+|[-+]?[0-9]+|0o[0-7]+|",
            // floats: 1.1 (underscores, sexagesimal, exponent sign required), 1.2, infinities, NaN
            r"[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|",
            r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|",
            r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|",
            // timestamps and dates
            r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|",
            r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?",
            r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?",
            r")$"
        ))
        .unwrap()
    });
    value.is_empty() || NON_STRING.is_match(value)
}

/// Whether `value` is a well-formed single-line plain scalar in block (or flow) context.
fn plain_is_well_formed(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return false;
    }
    if value.chars().any(|c| c.is_control() || c == '\u{feff}') {
        return false;
    }
    if ",[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if "-?:".contains(first) {
        match value[1..].chars().next() {
            None => return false,
            Some(c) if c.is_whitespace() || (in_flow && ",[]{}".contains(c)) => return false,
            _ => {}
        }
    }
    if value.starts_with("---") || value.starts_with("...") {
        return false;
    }
    if value.contains(": ") || value.contains(" #") || value.ends_with(':') {
        return false;
    }
    !(in_flow && value.contains([',', '[', ']', '{', '}']))
}

/// A double-quoted scalar with YAML escapes.
pub fn double_quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{feff}' => {
                let n = c as u32;
                if n <= 0xff {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_would_not_read_back_as_strings_are_quoted() {
        for v in [
            "1.10",
            "1",
            "010",
            "0x1F",
            "0o17",
            "0b101",
            "1_000",
            "12:30",
            "1e3",
            "1.5e+3",
            ".5",
            "+1",
            "-1",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "true",
            "null",
            "~",
            "",
            ".inf",
            "-.Inf",
            ".NaN",
            "2024-06-27",
            "2024-6-7",
            "2001-12-14t21:59:43.10-05:00",
            "2001-12-14 21:59:43.10 -5",
            "=",
            "<<",
        ] {
            assert_eq!(render(v, Style::Plain, false), double_quoted(v), "{v:?}");
        }
    }

    #[test]
    fn ordinary_image_references_stay_plain() {
        for v in [
            "5.0.3",
            "v1.2.3",
            "1.2.3-rc.1",
            "ghcr.io/stefanprodan/podinfo:5.0.3",
            "127.0.0.1:5000/team/app:1.0.0@sha256:0123abcd",
            "main-3f2a9c1-1719820800",
            "latest",
            "2024-06-27T10-20-30",
            "1.2.3.4",
            "-dev",
            "app:12:30",
        ] {
            assert_eq!(render(v, Style::Plain, false), v, "{v:?}");
        }
    }

    #[test]
    fn plain_text_that_is_not_well_formed_is_quoted() {
        for v in [
            "a: b", "a #b", "#x", "*alias", "&a", "!tag", "|", ">", "'q", "\"q", "- x", "x:", " x",
            "---x",
        ] {
            assert_eq!(render(v, Style::Plain, false), double_quoted(v), "{v:?}");
        }
        assert_eq!(render("a,b", Style::Plain, true), "\"a,b\"");
        assert_eq!(render("a,b", Style::Plain, false), "a,b");
    }

    #[test]
    fn quoted_styles_are_kept() {
        assert_eq!(render("1.10", Style::SingleQuoted, false), "'1.10'");
        assert_eq!(render("it's", Style::SingleQuoted, false), "'it''s'");
        assert_eq!(
            render("a\"b\\c", Style::DoubleQuoted, false),
            r#""a\"b\\c""#
        );
        assert_eq!(
            render("tab\there", Style::SingleQuoted, false),
            "\"tab\\there\""
        );
    }
}
