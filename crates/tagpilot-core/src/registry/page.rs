//! One `tags/list` page, parsed as a stream straight into the repository's set of tags: no list of the page
//! is built, names that are not OCI tags are counted and dropped, and the set stops growing at its limit.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::is_valid_tag;

/// What a page brought.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Entries on the page (valid or not), for `n`-sized paging.
    pub count: usize,
    /// Tags not seen on earlier pages.
    pub new: usize,
    /// Names that are not OCI tags.
    pub invalid: usize,
    /// The page's last entry, for `last=`.
    pub last: Option<String>,
}

/// Why a page could not be read.
#[derive(Debug)]
pub enum Error {
    /// The set would pass its limit.
    TooMany,
    /// Not `{"tags": [string, ...]}`.
    Json(serde_json::Error),
}

/// Adds the tags of `body` to `tags`, which may hold at most `limit`.
pub fn read(body: &[u8], tags: &mut HashSet<String>, limit: usize) -> Result<Page, Error> {
    let mut page = Page::default();
    let mut over = false;
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = PageSeed {
        tags,
        limit,
        page: &mut page,
        over: &mut over,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(page),
        Err(_) if over => Err(Error::TooMany),
        Err(e) => Err(Error::Json(e)),
    }
}

struct PageSeed<'a> {
    tags: &'a mut HashSet<String>,
    limit: usize,
    page: &'a mut Page,
    over: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tags/list object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "tags" {
                map.next_value_seed(TagsSeed {
                    tags: &mut *self.tags,
                    limit: self.limit,
                    page: &mut *self.page,
                    over: &mut *self.over,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct TagsSeed<'a> {
    tags: &'a mut HashSet<String>,
    limit: usize,
    page: &'a mut Page,
    over: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for TagsSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for TagsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tags or null")
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(tag) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
            self.page.count += 1;
            // `last=` continues after the registry's own last entry, whatever it is.
            self.page.last = Some(tag.to_string());
            if !is_valid_tag(&tag) {
                self.page.invalid += 1;
                continue;
            }
            if !self.tags.contains(tag.as_ref()) {
                if self.tags.len() >= self.limit {
                    *self.over = true;
                    return Err(serde::de::Error::custom("too many tags"));
                }
                self.tags.insert(tag.into_owned());
                self.page.new += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_add_valid_new_tags_and_count_the_rest() {
        let mut tags = HashSet::new();
        let p = read(
            br#"{"name": "app", "tags": ["1.0", "2.0.0\n9.9.9", "1.0", "-x", "v2"]}"#,
            &mut tags,
            10,
        )
        .unwrap();
        assert_eq!(
            p,
            Page {
                count: 5,
                new: 2,
                invalid: 2,
                last: Some("v2".into())
            }
        );
        let p = read(br#"{"tags": ["v2", "v3"]}"#, &mut tags, 10).unwrap();
        assert_eq!((p.new, p.count), (1, 2));
        assert_eq!(read(br#"{"tags": null}"#, &mut tags, 10).unwrap().count, 0);
        assert!(matches!(
            read(br#"{"tags": ["a", "b"]}"#, &mut tags, 4),
            Err(Error::TooMany)
        ));
        assert!(matches!(
            read(br#"{"tags": [1]}"#, &mut tags, 10),
            Err(Error::Json(_))
        ));
        assert!(matches!(
            read(br#"{"tags": []} x"#, &mut tags, 10),
            Err(Error::Json(_))
        ));
        assert!(is_valid_tag(&"a".repeat(128)) && !is_valid_tag(&"a".repeat(129)));
        assert!(
            is_valid_tag("_x.y-z")
                && !is_valid_tag(".x")
                && !is_valid_tag("")
                && !is_valid_tag("a/b")
        );
    }
}
