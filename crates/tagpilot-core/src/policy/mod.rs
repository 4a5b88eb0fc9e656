//! ImagePolicy selection: the latest tag by semver range, alphabetical or numerical order, after an optional
//! regex filter and extract, with Flux's results.
//!
//! Flux iterates the candidates in byte-wise descending order and replaces its pick only on a strictly better
//! one, so among equal candidates the byte-wise greatest tag wins (`v1.0.0` over `1.0.0`). Selection here gives
//! the same results in one pass without sorting. Where two tags extract to the same value, the byte-wise
//! smallest original is kept (Flux keeps the last one of its map iteration).

mod filter;
mod numeric;

use std::collections::HashMap;
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
        match &self.filter {
            None => self.select_among(tags.iter().map(|t| (t.as_ref(), t.as_ref()))),
            Some(filter) if !filter.extracts() => {
                let mut kept = tags
                    .iter()
                    .map(AsRef::as_ref)
                    .filter(|t| filter.is_match(t))
                    .peekable();
                if kept.peek().is_none() {
                    return Err(SelectError::NoTagMatchesFilter {
                        pattern: filter.pattern().to_string(),
                    });
                }
                self.select_among(kept.map(|t| (t, t)))
            }
            Some(filter) => {
                // extracted value -> byte-wise smallest original tag
                let mut extracted: HashMap<String, &'t str> = HashMap::new();
                for tag in tags.iter().map(AsRef::as_ref) {
                    if let Some(value) = filter.apply(tag) {
                        extracted
                            .entry(value)
                            .and_modify(|orig| *orig = (*orig).min(tag))
                            .or_insert(tag);
                    }
                }
                if extracted.is_empty() {
                    return Err(SelectError::NoTagMatchesFilter {
                        pattern: filter.pattern().to_string(),
                    });
                }
                self.select_among(extracted.iter().map(|(v, &orig)| (v.as_str(), orig)))
            }
        }
    }

    /// Selects among (value the policy sees, original tag) pairs; values are distinct.
    fn select_among<'v, 't>(
        &self,
        candidates: impl Iterator<Item = (&'v str, &'t str)> + Clone,
    ) -> Result<&'t str, SelectError> {
        match &self.selector {
            Selector::SemVer(range) => latest_semver(range, candidates),
            Selector::Alphabetical(order) => Ok(latest_alphabetical(*order, candidates)),
            Selector::Numerical(order) => latest_numerical(*order, candidates),
        }
    }
}

/// The greatest version in `range`; among equal precedence the byte-wise greatest value (Flux's first in its
/// descending iteration).
fn latest_semver<'v, 't>(
    range: &Range,
    candidates: impl Iterator<Item = (&'v str, &'t str)>,
) -> Result<&'t str, SelectError> {
    let mut best: Option<(Version<'v>, &'t str)> = None;
    for (value, original) in candidates {
        let Ok(v) = Version::parse_tag(value) else {
            continue;
        };
        if !range.matches(&v) {
            continue;
        }
        let better = match &best {
            None => true,
            Some((b, _)) => match v.precedence(b) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => value > b.original,
                std::cmp::Ordering::Less => false,
            },
        };
        if better {
            best = Some((v, original));
        }
    }
    best.map(|(_, original)| original)
        .ok_or(SelectError::NoVersionInRange)
}

fn latest_alphabetical<'v, 't>(
    order: Order,
    candidates: impl Iterator<Item = (&'v str, &'t str)>,
) -> &'t str {
    let pick = match order {
        Order::Asc => candidates.max_by(|a, b| a.0.cmp(b.0)),
        Order::Desc => candidates.min_by(|a, b| a.0.cmp(b.0)),
    };
    pick.map(|(_, original)| original).unwrap_or_default()
}

/// Flux's numerical fold over the values in byte-wise descending order: the first sets the pick, each next
/// replaces it unless strictly worse. Without NaN this is the extreme value with ties to the byte-wise smallest
/// value, computed in one pass; with a NaN present the fold runs as Flux's does, over the sorted values.
fn latest_numerical<'v, 't>(
    order: Order,
    candidates: impl Iterator<Item = (&'v str, &'t str)> + Clone,
) -> Result<&'t str, SelectError> {
    let mut best: Option<(f64, &'v str, &'t str)> = None;
    let mut saw_nan = false;
    for (value, original) in candidates.clone() {
        let Some(x) = parse_go_float(value) else {
            // Flux stops at the first non-number of its descending iteration: the byte-wise greatest one.
            let (value, original) = candidates
                .filter(|(v, _)| parse_go_float(v).is_none())
                .max_by(|a, b| a.0.cmp(b.0))
                .unwrap_or((value, original));
            return Err(SelectError::NonNumericTag {
                tag: original.to_string(),
                value: value.to_string(),
            });
        };
        saw_nan |= x.is_nan();
        let better = match best {
            None => true,
            Some((b, bv, _)) => match order {
                Order::Asc => x > b || (x == b && value < bv),
                Order::Desc => x < b || (x == b && value < bv),
            },
        };
        if better {
            best = Some((x, value, original));
        }
    }
    if saw_nan {
        let mut sorted: Vec<(f64, &'v str, &'t str)> = candidates
            .map(|(v, o)| (parse_go_float(v).unwrap_or(f64::NAN), v, o))
            .collect();
        sorted.sort_unstable_by(|a, b| b.1.cmp(a.1));
        let mut pick: Option<(f64, &'t str)> = None;
        for (x, _, original) in sorted {
            let worse = match pick {
                None => false,
                Some((p, _)) => match order {
                    Order::Asc => x < p,
                    Order::Desc => x > p,
                },
            };
            if !worse {
                pick = Some((x, original));
            }
        }
        return Ok(pick.map(|(_, o)| o).unwrap_or_default());
    }
    Ok(best.map(|(_, _, original)| original).unwrap_or_default())
}

#[cfg(test)]
mod tests;
