//! ImagePolicy selection: the latest tag by semver range, alphabetical or numerical order, after an optional
//! regex filter and extract, with Flux's results.
//!
//! Flux iterates the candidates in byte-wise descending order and replaces its pick only on a strictly better
//! one, so among equal candidates the byte-wise greatest tag wins (`v1.0.0` over `1.0.0`). Selection here gives
//! the same results in one pass without sorting. Where two tags extract to the same value, the byte-wise
//! smallest original is kept (Flux keeps the last one of its map iteration).

pub mod evaluate;
mod filter;
mod numeric;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

pub use filter::{FilterError, TagFilter};
pub use numeric::parse_go_float;

use crate::semver::{Range, RangeError, Version};

/// Sort order of the alphabetical and numerical policies: `asc` picks the greatest, `desc` the least.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// Ascending: the latest is the greatest.
    #[default]
    Asc,
    /// Descending: the latest is the least.
    Desc,
}

impl Order {
    /// Parses `asc` or `desc` (as Flux: lower case).
    pub fn parse(s: &str) -> Result<Order, PolicyError> {
        match s {
            "asc" => Ok(Order::Asc),
            "desc" => Ok(Order::Desc),
            other => Err(PolicyError::InvalidOrder {
                order: other.to_string(),
            }),
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::Asc => "asc",
            Order::Desc => "desc",
        })
    }
}

/// Which kind of policy picks the latest tag.
#[derive(Clone, Debug)]
pub enum Selector {
    /// The greatest version within a range.
    SemVer(Range),
    /// Byte-wise order.
    Alphabetical(Order),
    /// Go `ParseFloat` value; every tag must be a number.
    Numerical(Order),
    /// The image built last (tagpilot's `newestBuild`): ordered by [`crate::gates`], which asks the registry.
    NewestBuild,
}

/// A policy that cannot be built from its spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// `semver.range` does not parse.
    #[error(transparent)]
    InvalidRange(#[from] RangeError),
    /// `filterTags.pattern` does not compile.
    #[error(transparent)]
    InvalidRegex(#[from] FilterError),
    /// An order other than `asc` or `desc`.
    #[error("invalid order \"{order}\": expected asc or desc")]
    InvalidOrder {
        /// The order as written.
        order: String,
    },
}

/// No tag could be selected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// The repository has no tags.
    #[error("version list argument cannot be empty")]
    EmptyTagList,
    /// The filter pattern matched no tag.
    #[error("no tag matches the filter pattern \"{pattern}\"")]
    NoTagMatchesFilter {
        /// The filter pattern.
        pattern: String,
    },
    /// No candidate is a version within the range.
    #[error("unable to determine latest version from provided list")]
    NoVersionInRange,
    /// The newestBuild policy orders by the images' creation time, which only the registry knows.
    #[error(
        "policy.newestBuild orders tags by their images' creation time: the registry must be asked"
    )]
    NeedsImageFacts,
    /// The numerical policy met a tag that is not a number.
    #[error("failed to parse invalid numeric value '{value}'{}", extracted_note(.tag, .value))]
    NonNumericTag {
        /// The original tag.
        tag: String,
        /// The value that failed to parse (the extracted value when the filter extracts).
        value: String,
    },
}

fn extracted_note(tag: &str, value: &str) -> String {
    if tag == value {
        String::new()
    } else {
        format!(" (extracted from tag '{tag}')")
    }
}

/// A complete policy: the selector and an optional tag filter.
#[derive(Clone, Debug)]
pub struct Policy {
    selector: Selector,
    filter: Option<TagFilter>,
}

impl Policy {
    /// A policy without filter.
    pub fn new(selector: Selector) -> Policy {
        Policy {
            selector,
            filter: None,
        }
    }

    /// A semver policy; the range is parsed here.
    pub fn semver(range: &str) -> Result<Policy, PolicyError> {
        Ok(Policy::new(Selector::SemVer(Range::parse(range)?)))
    }

    /// Adds `filterTags` (pattern and optional extract template).
    pub fn with_filter(
        mut self,
        pattern: &str,
        extract: Option<&str>,
    ) -> Result<Policy, PolicyError> {
        self.filter = Some(TagFilter::new(pattern, extract)?);
        Ok(self)
    }

    /// The selector.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// The filter, if any.
    pub fn filter(&self) -> Option<&TagFilter> {
        self.filter.as_ref()
    }

    /// The latest tag among `tags` (in any order); the result is always one of the original tags.
    pub fn select<'t, S: AsRef<str>>(&self, tags: &'t [S]) -> Result<&'t str, SelectError> {
        if tags.is_empty() {
            return Err(SelectError::EmptyTagList);
        }
        if let Selector::NewestBuild = self.selector {
            return Err(SelectError::NeedsImageFacts);
        }
        if let (Selector::Alphabetical(order), None) = (&self.selector, &self.filter) {
            // Values are the tags themselves and all distinct by text: the extreme tag.
            let tags = tags.iter().map(AsRef::as_ref);
            let pick = match order {
                Order::Asc => tags.max(),
                Order::Desc => tags.min(),
            };
            return pick.ok_or(SelectError::EmptyTagList);
        }
        let mut picker = Picker::new(&self.selector);
        self.for_each_candidate(tags, |value, original| picker.push(value, original));
        if picker.saw_nan {
            return self.select_numerical_with_nan(tags);
        }
        picker.finish(self.filter.as_ref())
    }

    /// Calls `f(value the policy sees, original tag)` for every tag the filter keeps. Without an extract
    /// template the value is the tag itself; with one it lives in a buffer reused from tag to tag.
    fn for_each_candidate<'t, S: AsRef<str>>(
        &self,
        tags: &'t [S],
        mut f: impl FnMut(Value<'_, 't>, &'t str),
    ) {
        match &self.filter {
            None => tags
                .iter()
                .for_each(|t| f(Value::Tag(t.as_ref()), t.as_ref())),
            Some(filter) if !filter.extracts() => tags
                .iter()
                .map(AsRef::as_ref)
                .filter(|t| filter.is_match(t))
                .for_each(|t| f(Value::Tag(t), t)),
            Some(filter) => {
                let mut scratch = filter.scratch();
                for tag in tags.iter().map(AsRef::as_ref) {
                    if let Some(value) = filter.extract_into(tag, &mut scratch) {
                        f(Value::Extracted(value), tag);
                    }
                }
            }
        }
    }

    /// Flux's numerical fold, run literally (over the distinct values in byte-wise descending order) because a
    /// NaN makes Go's comparisons order-dependent.
    fn select_numerical_with_nan<'t, S: AsRef<str>>(
        &self,
        tags: &'t [S],
    ) -> Result<&'t str, SelectError> {
        let Selector::Numerical(order) = self.selector else {
            unreachable!("only the numerical policy parses numbers")
        };
        let mut pairs: Vec<(String, &'t str)> = Vec::new();
        self.for_each_candidate(tags, |value, original| {
            pairs.push((value.as_str().to_string(), original))
        });
        // Distinct values, each with its byte-wise smallest original, in descending byte order.
        pairs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        pairs.dedup_by(|later, first| later.0 == first.0);
        let mut pick: Option<(f64, &'t str)> = None;
        for (value, original) in pairs {
            let x = parse_go_float(&value).unwrap_or(f64::NAN);
            let worse = pick.is_some_and(|(p, _)| match order {
                Order::Asc => x < p,
                Order::Desc => x > p,
            });
            if !worse {
                pick = Some((x, original));
            }
        }
        Ok(pick.map(|(_, original)| original).unwrap_or_default())
    }
}

/// A value the policy sees: a tag itself, or a value extracted into a reused buffer.
#[derive(Clone, Copy)]
enum Value<'s, 't> {
    Tag(&'t str),
    Extracted(&'s str),
}

impl<'t> Value<'_, 't> {
    fn as_str(&self) -> &str {
        match self {
            Value::Tag(t) => t,
            Value::Extracted(v) => v,
        }
    }

    /// Keeps the value: borrowed when it is a tag, copied when it lives in the reused buffer.
    fn keep(self, into: &mut Cow<'t, str>) {
        match self {
            Value::Tag(t) => *into = Cow::Borrowed(t),
            Value::Extracted(v) => match into {
                Cow::Owned(s) => {
                    s.clear();
                    s.push_str(v);
                }
                Cow::Borrowed(_) => *into = Cow::Owned(v.to_string()),
            },
        }
    }
}

/// The best candidate so far, with its parsed number or version parts so that they are not parsed again.
struct Best<'t> {
    value: Cow<'t, str>,
    original: &'t str,
    number: f64,
    /// (major, minor, patch) of a semver candidate; its prerelease is `value[pre_start..pre_end]`.
    version: (u64, u64, u64),
    pre_start: usize,
    pre_end: usize,
}

impl Best<'_> {
    fn version(&self) -> Version<'_> {
        let (major, minor, patch) = self.version;
        Version {
            major,
            minor,
            patch,
            pre: &self.value[self.pre_start..self.pre_end],
            build: "",
            original: &self.value,
        }
    }
}

/// (major, minor, patch) and the prerelease's byte range within the version's text.
fn version_parts(v: &Version<'_>) -> ((u64, u64, u64), usize, usize) {
    let start = if v.pre.is_empty() {
        0
    } else {
        v.pre.as_ptr() as usize - v.original.as_ptr() as usize
    };
    ((v.major, v.minor, v.patch), start, start + v.pre.len())
}

/// Flux's pick over candidates pushed one at a time, in one pass and without allocating per candidate.
///
/// Each candidate is ranked against the best so far: semver by precedence, alphabetical by bytes, numerical
/// by value; remaining ties go to the byte-wise greatest value (semver, as Flux's descending iteration keeps
/// the first) or the byte-wise smallest (numerical, as Flux's fold keeps the last). Equal values are the same
/// candidate seen through two tags: the byte-wise smallest original is kept.
struct Picker<'p, 't> {
    selector: &'p Selector,
    best: Option<Best<'t>>,
    seen: bool,
    saw_nan: bool,
    /// The byte-wise greatest non-numeric value: the one Flux's descending iteration fails on.
    non_numeric: Option<(String, &'t str)>,
}

impl<'p, 't> Picker<'p, 't> {
    fn new(selector: &'p Selector) -> Picker<'p, 't> {
        Picker {
            selector,
            best: None,
            seen: false,
            saw_nan: false,
            non_numeric: None,
        }
    }

    fn push(&mut self, value: Value<'_, 't>, original: &'t str) {
        self.seen = true;
        let v = value.as_str();
        let mut number = 0.0;
        let mut parts = ((0, 0, 0), 0, 0);
        let rank = match self.selector {
            Selector::SemVer(range) => {
                let Ok(version) = Version::parse_tag(v) else {
                    return;
                };
                if !range.matches(&version) {
                    return;
                }
                parts = version_parts(&version);
                self.best.as_ref().map(|b| {
                    version
                        .precedence(&b.version())
                        .then_with(|| v.cmp(&b.value))
                })
            }
            Selector::Alphabetical(Order::Asc) => self.best.as_ref().map(|b| v.cmp(&b.value)),
            Selector::Alphabetical(Order::Desc) => {
                self.best.as_ref().map(|b| b.value.as_ref().cmp(v))
            }
            Selector::NewestBuild => return,
            Selector::Numerical(order) => {
                let Some(x) = parse_go_float(v) else {
                    if self
                        .non_numeric
                        .as_ref()
                        .is_none_or(|(n, _)| v > n.as_str())
                    {
                        self.non_numeric = Some((v.to_string(), original));
                    }
                    return;
                };
                self.saw_nan |= x.is_nan();
                number = x;
                self.best.as_ref().map(|b| {
                    let by_value = match order {
                        Order::Asc => x.partial_cmp(&b.number),
                        Order::Desc => b.number.partial_cmp(&x),
                    };
                    by_value
                        .unwrap_or(Ordering::Equal)
                        .then_with(|| b.value.as_ref().cmp(v))
                })
            }
        };
        match (rank, &mut self.best) {
            (None, _) => {
                let mut kept = Cow::Borrowed("");
                value.keep(&mut kept);
                let (version, pre_start, pre_end) = parts;
                self.best = Some(Best {
                    value: kept,
                    original,
                    number,
                    version,
                    pre_start,
                    pre_end,
                });
            }
            (Some(Ordering::Greater), Some(best)) => {
                value.keep(&mut best.value);
                best.original = original;
                best.number = number;
                (best.version, best.pre_start, best.pre_end) = parts;
            }
            (Some(Ordering::Equal), Some(best)) => best.original = best.original.min(original),
            _ => {}
        }
    }

    fn finish(self, filter: Option<&TagFilter>) -> Result<&'t str, SelectError> {
        if !self.seen {
            return Err(match filter {
                Some(f) => SelectError::NoTagMatchesFilter {
                    pattern: f.pattern().to_string(),
                },
                None => SelectError::EmptyTagList,
            });
        }
        if let Some((value, tag)) = self.non_numeric {
            return Err(SelectError::NonNumericTag {
                tag: tag.to_string(),
                value,
            });
        }
        self.best
            .map(|b| b.original)
            .ok_or(SelectError::NoVersionInRange)
    }
}

#[cfg(test)]
mod tests;
