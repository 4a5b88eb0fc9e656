//! What is said about outside input: credentials in URLs redacted, text from registries, git servers and
//! cloud endpoints capped, before it reaches a status, an event or a log line.
//!
//! A URL's userinfo is a credential wherever it appears (`https://user:password@host`, and a token given as
//! the user name, `https://TOKEN@host`, as GitHub and GitLab document): the password, or a lone user name of an
//! HTTP(S) URL, becomes `***`. An SSH URL's lone user name (`ssh://git@host`) is an account, not a secret,
//! and is kept.

/// The longest message from outside kept in a status condition, an event or a log line (bytes).
pub const MAX_MESSAGE: usize = 1024;

/// `url` with the credentials of its userinfo replaced by `***`.
pub fn url(url: &str) -> String {
    text(url)
}

/// `s` with the userinfo credentials of every URL in it replaced by `***`.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i);
        // Past the last character that cannot be in a scheme (whatever its width: found by the fuzz target).
        let scheme_start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(n, c)| n + c.len_utf8());
        let scheme = &before[scheme_start..];
        out.push_str(before);
        out.push_str("://");
        let after = &after[3..];
        // The authority ends at the path, query, fragment or any character a URL does not hold.
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#')
                    || c.is_whitespace()
                    || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')' | ']' | ',')
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) if !userinfo.is_empty() => {
                let ssh = scheme.eq_ignore_ascii_case("ssh") || scheme.ends_with("+ssh");
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None if ssh => out.push_str(userinfo),
                    None => out.push_str("***"),
                }
                out.push('@');
                out.push_str(host);
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Outside text for a message: redacted as [`text`], control characters but newlines and tabs dropped, and
/// cut at [`MAX_MESSAGE`] bytes (on a character boundary) with a note of how much was left out.
pub fn message(s: &str) -> String {
    let cleaned: String = text(s)
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect();
    cap(&cleaned, MAX_MESSAGE)
}

/// `s` cut at `max` bytes on a character boundary, with `… (N more bytes)` when cut.
pub fn cap(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_userinfo_is_redacted() {
        let cases = [
            (
                "https://bot:s3cret@git.example.com/org/repo.git",
                "https://bot:***@git.example.com/org/repo.git",
            ),
            (
                "https://ghp_TOKEN123@github.com/org/repo.git",
                "https://***@github.com/org/repo.git",
            ),
            (
                "http://x-access-token:TOKEN@h:8080/r",
                "http://x-access-token:***@h:8080/r",
            ),
            ("https://user:p@ss:w0rd@host/r", "https://user:***@host/r"),
            ("ssh://git@host:22/r.git", "ssh://git@host:22/r.git"),
            ("ssh://git:secret@host/r.git", "ssh://git:***@host/r.git"),
            ("git+https://TOKEN@host/r", "git+https://***@host/r"),
            ("https://host/r.git", "https://host/r.git"),
            ("é€://TOKEN@h/x", "é€://***@h/x"),
            ("«https://u:p@h»", "«https://u:***@h»"),
            ("https://host/path?x=a@b", "https://host/path?x=a@b"),
            ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
            (
                "fetch 'https://TOKEN@h/r' failed; see https://u:pw@other/x and http://TOK2@h2",
                "fetch 'https://***@h/r' failed; see https://u:***@other/x and http://***@h2",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(text(input), want, "{input}");
        }
    }

    #[test]
    fn messages_are_capped_on_character_boundaries() {
        let long = "é".repeat(MAX_MESSAGE);
        let m = message(&long);
        assert!(m.len() < MAX_MESSAGE + 40, "{}", m.len());
        assert!(m.ends_with(&format!("… ({} more bytes)", long.len() - MAX_MESSAGE)));
        assert_eq!(message("a\u{1b}[31mb\nc"), "a[31mb\nc");
        assert_eq!(cap("short", 10), "short");
    }
}
