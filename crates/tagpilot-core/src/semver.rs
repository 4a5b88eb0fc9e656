//! Semantic versions and version ranges with the semantics of Masterminds/semver v3, as Flux uses them.
//!
//! [`Version::parse`] is Masterminds' loose `NewVersion` (a `v` prefix, missing minor/patch, leading zeros in
//! numeric parts); [`Version::parse_tag`] adds Flux's rule that a tag needs at least two dots to be a version
//! candidate. [`Range`] is Masterminds' constraint language: `=` `!=` `>` `<` `>=` `=>` `<=` `=<` `~` `~>` `^`,
//! wildcards `x` `X` `*`, partial versions, hyphen ranges `1.2 - 1.4.5`, AND by whitespace or comma, OR by `||`.
//!
//! Prereleases follow Masterminds v3.3 and later: a version with a prerelease satisfies an AND group only when
//! one of the group's comparators has a prerelease itself (so `^1.x-0` and `>=1.0.0-0 <2.0.0` admit `1.9.0-rc.2`).
//! Precedence ignores build metadata and compares numeric prerelease identifiers as numbers.
//!
//! Parsing a version borrows from its text and never allocates; neither does matching or comparing.

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// A parsed semantic version that borrows its prerelease and build metadata from the original text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version<'a> {
    /// Major number.
    pub major: u64,
    /// Minor number (0 when absent).
    pub minor: u64,
    /// Patch number (0 when absent).
    pub patch: u64,
    /// Prerelease identifiers without the leading `-` (empty when none).
    pub pre: &'a str,
    /// Build metadata without the leading `+` (empty when none); ignored by precedence.
    pub build: &'a str,
    /// The text the version was parsed from.
    pub original: &'a str,
}

/// Why a string is not a version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The text does not have the shape of a (loose) semantic version.
    #[error("invalid semantic version")]
    Invalid,
    /// A major, minor or patch number does not fit in 64 bits.
    #[error("version number out of range")]
    OutOfRange,
    /// A numeric prerelease identifier has a leading zero.
    #[error("version segment starts with 0")]
    SegmentStartsZero,
    /// Flux requires at least two dots in a tag before it is considered a version.
    #[error("string does not contain at least two dots")]
    TooFewDots,
}

impl<'a> Version<'a> {
    /// Parses like Masterminds' `NewVersion`: `v?MAJOR(.MINOR)?(.PATCH)?(-PRE)?(+BUILD)?`.
    pub fn parse(text: &'a str) -> Result<Version<'a>, VersionError> {
        let b = text.as_bytes();
        let mut i = usize::from(b.first() == Some(&b'v'));
        let (major, n) = digits(b, i)?;
        i = n;
        let mut minor = 0;
        let mut patch = 0;
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            (minor, i) = digits(b, i + 1)?;
            if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                (patch, i) = digits(b, i + 1)?;
            }
        }
        let mut pre = "";
        if b.get(i) == Some(&b'-') {
            let end = identifiers_end(b, i + 1).ok_or(VersionError::Invalid)?;
            pre = &text[i + 1..end];
            i = end;
        }
        let mut build = "";
        if b.get(i) == Some(&b'+') {
            let end = identifiers_end(b, i + 1).ok_or(VersionError::Invalid)?;
            build = &text[i + 1..end];
            i = end;
        }
        if i != b.len() {
            return Err(VersionError::Invalid);
        }
        if pre
            .split('.')
            .any(|p| p.len() > 1 && p.starts_with('0') && p.bytes().all(|c| c.is_ascii_digit()))
        {
            return Err(VersionError::SegmentStartsZero);
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            build,
            original: text,
        })
    }

    /// Parses a tag as Flux does: at least two dots, then [`Version::parse`].
    pub fn parse_tag(tag: &'a str) -> Result<Version<'a>, VersionError> {
        if tag.bytes().filter(|&c| c == b'.').count() < 2 {
            return Err(VersionError::TooFewDots);
        }
        Version::parse(tag)
    }

    /// Semantic-version precedence: numbers, then a release above its prereleases, then prerelease
    /// identifiers left to right (numeric ones as numbers, below alphanumeric ones). Build metadata is ignored.
    pub fn precedence(&self, other: &Version<'_>) -> Ordering {
        self.major
            .cmp(&other.major)
            .then(self.minor.cmp(&other.minor))
            .then(self.patch.cmp(&other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(self.pre, other.pre),
            })
    }
}

impl fmt::Display for Version<'_> {
    /// Canonical form `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, as Masterminds' `String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

/// Reads one or more ASCII digits at `i` as a u64; returns the value and the index after them.
fn digits(b: &[u8], i: usize) -> Result<(u64, usize), VersionError> {
    let end = i + b[i.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if end == i {
        return Err(VersionError::Invalid);
    }
    let mut n: u64 = 0;
    for &c in &b[i..end] {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or(VersionError::OutOfRange)?;
    }
    Ok((n, end))
}

/// The end of `[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*` starting at `i`, or None when it is empty or ends in a dot.
fn identifiers_end(b: &[u8], mut i: usize) -> Option<usize> {
    let ident = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-';
    loop {
        let len = b[i.min(b.len())..].iter().take_while(|c| ident(c)).count();
        if len == 0 {
            return None;
        }
        i += len;
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(ident) {
            i += 1;
        } else {
            return Some(i);
        }
    }
}

/// Masterminds' `comparePrerelease`: identifier by identifier; a missing identifier sorts first; numeric
/// identifiers (digits that fit in a u64) compare as numbers and sort below alphanumeric ones.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut xs = a.split('.');
    let mut ys = b.split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => {
                let d = compare_pre_part(x.unwrap_or(""), y.unwrap_or(""));
                if d != Ordering::Equal {
                    return d;
                }
            }
        }
    }
}

fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    let number = |t: &str| -> Option<u64> {
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    match (number(s), number(o)) {
        (None, None) => s.cmp(o),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        // Equal numbers with different text cannot occur (leading zeros are rejected); Go returns -1 there.
        (Some(x), Some(y)) => x.cmp(&y).then(Ordering::Less),
    }
}

/// A version range: alternatives (`||`) of AND groups of comparators.
#[derive(Clone, Debug)]
pub struct Range {
    text: String,
    groups: Vec<Group>,
}

#[derive(Clone, Debug)]
struct Group {
    comparators: Vec<Comparator>,
    /// Some comparator of the group has a prerelease: the group admits prerelease versions.
    admits_prereleases: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

#[derive(Clone, Debug)]
struct Comparator {
    op: Op,
    major: u64,
    minor: u64,
    patch: u64,
    pre: Box<str>,
    /// A wildcard or missing part somewhere (`1.x`, `1.2`, `*`).
    dirty: bool,
    /// The minor part is a wildcard or missing (`1`, `1.x`).
    minor_dirty: bool,
    /// The patch part is a wildcard or missing (`1.2`, `1.2.x`).
    patch_dirty: bool,
}

/// Why a range does not parse; the message quotes the range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid semver range \"{range}\": {reason}")]
pub struct RangeError {
    /// The range as written.
    pub range: String,
    /// What is wrong with it.
    pub reason: String,
}

// Masterminds' expressions, with RE2's ASCII `\s` spelled out (the regex crate's `\s` is Unicode).
const WS: &str = r"[\t\n\f\r ]";
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

static CONSTRAINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{WS}*({OPS}){WS}*({CV}){WS}*$")).unwrap());
static RANGE_HYPHEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("{WS}*({CV}){WS}+-{WS}+({CV}){WS}*")).unwrap());
static FIND_CONSTRAINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("({OPS}){WS}*({CV})")).unwrap());
static VALID_GROUP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        "^({WS}*({OPS}){WS}*({CV}){WS}*)((?:{WS}+|,{WS}*)({OPS}){WS}*({CV}){WS}*)*$"
    ))
    .unwrap()
});

impl Range {
    /// Parses a range in Masterminds' constraint language.
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let err = |reason: String| RangeError {
            range: text.to_string(),
            reason,
        };
        let rewritten = rewrite_hyphen_ranges(text);
        let mut groups = Vec::new();
        for alternative in rewritten.split("||") {
            if !VALID_GROUP.is_match(alternative) {
                return Err(err(format!("improper constraint: {alternative}")));
            }
            let mut comparators = Vec::new();
            for m in FIND_CONSTRAINT.find_iter(alternative) {
                comparators.push(Comparator::parse(m.as_str()).map_err(err)?);
            }
            if comparators.is_empty() {
                comparators.push(Comparator::parse(alternative).map_err(err)?);
            }
            let admits_prereleases = comparators.iter().any(|c| !c.pre.is_empty());
            groups.push(Group {
                comparators,
                admits_prereleases,
            });
        }
        Ok(Range {
            text: text.to_string(),
            groups,
        })
    }

    /// The range as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `v` satisfies some alternative of the range.
    pub fn matches(&self, v: &Version<'_>) -> bool {
        self.groups.iter().any(|g| {
            (v.pre.is_empty() || g.admits_prereleases) && g.comparators.iter().all(|c| c.matches(v))
        })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Masterminds' `rewriteRange`: each `A - B` becomes `>= A, <= B ` (the first occurrence of the matched text).
/// The match takes the blanks around it, so the replacement ends with a blank: a comparator right after the
/// range (`1.0.0 - 2.0.0 <=2.0.0`) stays a comparator of its own (Masterminds v3.2.1 and later).
fn rewrite_hyphen_ranges(text: &str) -> String {
    let mut out = text.to_string();
    for caps in RANGE_HYPHEN.captures_iter(text) {
        let whole = caps.get(0).unwrap().as_str();
        let replacement = format!(">= {}, <= {} ", &caps[1], &caps[11]);
        out = out.replacen(whole, &replacement, 1);
    }
    out
}

fn is_wildcard(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

impl Comparator {
    /// Masterminds' `parseConstraint` for one `OP VERSION` (the empty string is not reachable here).
    fn parse(text: &str) -> Result<Comparator, String> {
        let caps = CONSTRAINT
            .captures(text)
            .ok_or_else(|| format!("improper constraint: {text}"))?;
        let op = match &caps[1] {
            "" | "=" => Op::TildeOrEqual,
            "!=" => Op::NotEqual,
            ">" => Op::Greater,
            "<" => Op::Less,
            ">=" | "=>" => Op::GreaterEqual,
            "<=" | "=<" => Op::LessEqual,
            "~" | "~>" => Op::Tilde,
            "^" => Op::Caret,
            other => return Err(format!("unknown operator {other}")),
        };
        let part = |i: usize| caps.get(i).map_or("", |m| m.as_str());
        let (major, minor, patch, pre) = (part(3), part(4), part(5), part(6));
        let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
        let version_text = if is_wildcard(major) || major.is_empty() {
            dirty = true;
            format!("0.0.0{pre}")
        } else if is_wildcard(minor.trim_start_matches('.')) || minor.is_empty() {
            (dirty, minor_dirty) = (true, true);
            format!("{major}.0.0{pre}")
        } else if is_wildcard(patch.trim_start_matches('.')) || patch.is_empty() {
            (dirty, patch_dirty) = (true, true);
            format!("{major}{minor}.0{pre}")
        } else {
            part(2).to_string()
        };
        let v = Version::parse(&version_text)
            .map_err(|e| format!("improper constraint: {text} ({e})"))?;
        Ok(Comparator {
            op,
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            pre: v.pre.into(),
            dirty,
            minor_dirty,
            patch_dirty,
        })
    }

    fn con(&self) -> Version<'_> {
        Version {
            major: self.major,
            minor: self.minor,
            patch: self.patch,
            pre: &self.pre,
            build: "",
            original: "",
        }
    }

    /// One comparator; the group has already refused prereleases it does not admit.
    fn matches(&self, v: &Version<'_>) -> bool {
        let con = self.con();
        match self.op {
            Op::TildeOrEqual if self.dirty => self.tilde(v),
            Op::TildeOrEqual => v.precedence(&con) == Ordering::Equal,
            Op::NotEqual => self.not_equal(v),
            Op::Greater => self.greater(v),
            Op::Less => v.precedence(&con) == Ordering::Less,
            Op::GreaterEqual => v.precedence(&con) != Ordering::Less,
            Op::LessEqual => self.less_equal(v),
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &Version<'_>) -> bool {
        if self.dirty {
            if self.major != v.major {
                return true;
            }
            if self.minor != v.minor && !self.minor_dirty {
                return true;
            } else if self.minor_dirty {
                return false;
            } else if self.patch != v.patch && !self.patch_dirty {
                return true;
            } else if self.patch_dirty {
                if !v.pre.is_empty() || !self.pre.is_empty() {
                    return compare_prerelease(v.pre, &self.pre) != Ordering::Equal;
                }
                return false;
            }
        }
        v.precedence(&self.con()) != Ordering::Equal
    }

    fn greater(&self, v: &Version<'_>) -> bool {
        if !self.dirty {
            return v.precedence(&self.con()) == Ordering::Greater;
        }
        if v.major != self.major {
            return v.major > self.major;
        }
        if self.minor_dirty {
            return false;
        }
        if self.patch_dirty {
            return v.minor > self.minor;
        }
        v.precedence(&self.con()) == Ordering::Greater
    }

    fn less_equal(&self, v: &Version<'_>) -> bool {
        if !self.dirty {
            return v.precedence(&self.con()) != Ordering::Greater;
        }
        if v.major > self.major {
            return false;
        }
        !(v.major == self.major && v.minor > self.minor && !self.minor_dirty)
    }

    fn tilde(&self, v: &Version<'_>) -> bool {
        if v.precedence(&self.con()) == Ordering::Less {
            return false;
        }
        if self.major == 0
            && self.minor == 0
            && self.patch == 0
            && !self.minor_dirty
            && !self.patch_dirty
        {
            return true;
        }
        if v.major != self.major {
            return false;
        }
        v.minor == self.minor || self.minor_dirty
    }

    fn caret(&self, v: &Version<'_>) -> bool {
        if v.precedence(&self.con()) == Ordering::Less {
            return false;
        }
        if self.major > 0 || self.minor_dirty {
            return v.major == self.major;
        }
        if v.major > 0 {
            return false;
        }
        if self.minor > 0 || self.patch_dirty {
            return v.minor == self.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == self.patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version<'_> {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parses_loose_versions() {
        assert_eq!(v("v1.2.3").to_string(), "1.2.3");
        assert_eq!(v("2025.07.03").to_string(), "2025.7.3");
        assert_eq!(v("1.2").to_string(), "1.2.0");
        assert_eq!(v("1").to_string(), "1.0.0");
        assert_eq!(v("1.2-rc.1").to_string(), "1.2.0-rc.1");
        assert_eq!(v("1.2.3-rc.1+build.5").to_string(), "1.2.3-rc.1+build.5");
        assert_eq!(v("1.2.3--").pre, "-");
        for bad in [
            "",
            "v",
            "V1.2.3",
            "1.2.3.4",
            "1.2.3-",
            "1.2.3-a..b",
            "1.2.3+",
            "1.x",
            "1.2.3-01",
            " 1.2.3",
            "1.2.3\n",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Version::parse("18446744073709551616.0.0"),
            Err(VersionError::OutOfRange)
        );
    }

    #[test]
    fn orders_by_precedence() {
        let order = [
            "1.0.0-0",
            "1.0.0-1",
            "1.0.0-2",
            "1.0.0-10",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for pair in order.windows(2) {
            assert_eq!(
                v(pair[0]).precedence(&v(pair[1])),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(v("1.0.0+a").precedence(&v("1.0.0+b")), Ordering::Equal);
        assert_eq!(v("v1.0.0").precedence(&v("1.0.0")), Ordering::Equal);
    }

    #[test]
    fn hyphen_ranges_are_rewritten() {
        assert_eq!(rewrite_hyphen_ranges("1.2 - 1.4.5"), ">= 1.2, <= 1.4.5 ");
        assert_eq!(
            rewrite_hyphen_ranges("1.0.0 - 2.0.0 <=2.0.0"),
            ">= 1.0.0, <= 2.0.0 <=2.0.0"
        );
        assert_eq!(rewrite_hyphen_ranges("1.2-1.4.5"), "1.2-1.4.5");
    }
}
