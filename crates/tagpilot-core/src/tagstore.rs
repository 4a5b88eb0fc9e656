//! The tags of each ImageRepository, persisted under the controller's storage path.
//!
//! One file per object (`<root>/<namespace>/<name>.tags`): a header line with the format version, the
//! revision (a SHA-256 of the tag list) and the count, then one tag per line in byte-wise descending order,
//! each with the Unix time the tag was first seen (`<tag>\t<seconds>`; kept across rewrites, for the
//! `minimumAge` gate); the header ends with a SHA-256 of the body. Files of format v1 (tags only, no body
//! checksum) are read, their tags without a first sighting.
//! Files are written atomically (a temporary file in the same directory, synced, renamed over the old one), so
//! a crash leaves the old list or the new one, never a mix. Reads check the header against the contents; a
//! damaged file reads as absent and the repository is rescanned.
//!
//! Tags are not held in memory between uses: a read loads one file into a single allocation
//! ([`StoredTags`]), which the caller drops after choosing a tag.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &str = "tagpilot-tags v2";
const MAGIC_V1: &str = "tagpilot-tags v1";

/// A tag store rooted at a directory.
#[derive(Clone, Debug)]
pub struct TagStore {
    root: PathBuf,
}

/// A tag-store failure; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("tag store {path}: {source}")]
pub struct TagStoreError {
    /// The file or directory.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// The tags of one repository, in one allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTags {
    text: Box<str>,
    count: usize,
    revision: String,
}

impl StoredTags {
    /// The tags, byte-wise descending.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.lines().map(|(t, _)| t)
    }

    fn lines(&self) -> impl Iterator<Item = (&str, Option<i64>)> {
        self.text
            .split('\n')
            .filter(|t| !t.is_empty())
            .map(|l| match l.split_once('\t') {
                Some((t, seen)) => (t, seen.parse().ok()),
                None => (l, None),
            })
    }

    /// Tags that were never stored (a list given on the command line): no first sightings.
    pub fn from_tags<S: AsRef<str>>(tags: &[S]) -> StoredTags {
        let mut text = String::new();
        for t in tags {
            text.push_str(t.as_ref());
            text.push('\n');
        }
        StoredTags {
            text: text.into_boxed_str(),
            count: tags.len(),
            revision: revision_of(tags),
        }
    }

    /// When the reflector first saw `tag` (`None` for a tag stored before first sightings were kept).
    pub fn first_seen(&self, tag: &str) -> Option<jiff::Timestamp> {
        let (_, seen) = self.lines().find(|(t, _)| *t == tag)?;
        jiff::Timestamp::from_second(seen?).ok()
    }

    /// The tags as a vector of slices (for the policy engine).
    pub fn to_vec(&self) -> Vec<&str> {
        self.iter().collect()
    }

    /// How many tags.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The revision (checksum of the list).
    pub fn revision(&self) -> &str {
        &self.revision
    }
}

/// The revision of a tag list: `sha256:` and the hex SHA-256 of the tags, each followed by a newline.
pub fn revision_of<S: AsRef<str>>(tags: &[S]) -> String {
    let mut h = Sha256::new();
    for t in tags {
        h.update(t.as_ref().as_bytes());
        h.update(b"\n");
    }
    format!("sha256:{}", crate::hex::encode(&h.finalize()))
}

impl TagStore {
    /// A store at `root`, created when missing.
    pub fn open(root: impl Into<PathBuf>) -> Result<TagStore, TagStoreError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| TagStoreError {
            path: root.clone(),
            source,
        })?;
        Ok(TagStore { root })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, namespace: &str, name: &str) -> PathBuf {
        // Namespaces and object names are DNS labels/subdomains: no '/' and never '..'.
        self.root.join(namespace).join(format!("{name}.tags"))
    }

    /// Replaces the tags of an object atomically, keeping the first sighting of tags already stored; returns
    /// the revision.
    pub fn write<S: AsRef<str>>(
        &self,
        namespace: &str,
        name: &str,
        tags: &[S],
    ) -> Result<String, TagStoreError> {
        self.write_at(namespace, name, tags, jiff::Timestamp::now())
    }

    /// [`TagStore::write`], with new tags first seen at `now`.
    pub fn write_at<S: AsRef<str>>(
        &self,
        namespace: &str,
        name: &str,
        tags: &[S],
        now: jiff::Timestamp,
    ) -> Result<String, TagStoreError> {
        let previous = self.read(namespace, name)?;
        let seen: std::collections::HashMap<&str, i64> = previous
            .as_ref()
            .map(|p| p.lines().filter_map(|(t, s)| Some((t, s?))).collect())
            .unwrap_or_default();
        let now = now.as_second();
        let path = self.path(namespace, name);
        let dir = path.parent().expect("a store path has a parent");
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TagStoreError { path, source }
        };
        std::fs::create_dir_all(dir).map_err(err(dir))?;
        let revision = revision_of(tags);
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err(dir))?;
        {
            let mut body = String::with_capacity(tags.iter().map(|t| t.as_ref().len() + 12).sum());
            for t in tags {
                let t = t.as_ref();
                let first = seen.get(t).copied().unwrap_or(now);
                body.push_str(t);
                body.push('\t');
                body.push_str(&first.to_string());
                body.push('\n');
            }
            let checksum = crate::hex::encode(&Sha256::digest(body.as_bytes()));
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            writeln!(w, "{MAGIC} {revision} {} {checksum}", tags.len()).map_err(err(&path))?;
            w.write_all(body.as_bytes()).map_err(err(&path))?;
            w.flush().map_err(err(&path))?;
        }
        tmp.as_file().sync_all().map_err(err(&path))?;
        tmp.persist(&path).map_err(|e| TagStoreError {
            path: path.clone(),
            source: e.error,
        })?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(revision)
    }

    /// The tags of an object; `None` when nothing is stored or the file is damaged.
    pub fn read(&self, namespace: &str, name: &str) -> Result<Option<StoredTags>, TagStoreError> {
        let path = self.path(namespace, name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Ok(None),
            Err(source) => return Err(TagStoreError { path, source }),
        };
        let Some((header, body)) = text.split_once('\n') else {
            return Ok(None);
        };
        let Some((revision, count, checksum)) = parse_header(header) else {
            return Ok(None);
        };
        if checksum.is_some_and(|c| c != crate::hex::encode(&Sha256::digest(body.as_bytes()))) {
            return Ok(None);
        }
        let tags: Vec<&str> = body
            .split('\n')
            .filter(|t| !t.is_empty())
            .map(|l| l.split_once('\t').map_or(l, |(t, _)| t))
            .collect();
        if tags.len() != count || revision_of(&tags) != revision {
            return Ok(None);
        }
        let body = body.to_string().into_boxed_str();
        Ok(Some(StoredTags {
            text: body,
            count,
            revision,
        }))
    }

    /// The revision of the stored tags (header only, not verified), `None` when nothing is stored.
    pub fn revision(&self, namespace: &str, name: &str) -> Result<Option<String>, TagStoreError> {
        use std::io::BufRead;
        let path = self.path(namespace, name);
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(TagStoreError { path, source }),
        };
        let mut line = String::new();
        if std::io::BufReader::new(f).read_line(&mut line).is_err() {
            return Ok(None);
        }
        Ok(parse_header(line.trim_end()).map(|(r, _, _)| r))
    }

    /// Forgets an object's tags.
    pub fn remove(&self, namespace: &str, name: &str) -> Result<(), TagStoreError> {
        let path = self.path(namespace, name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(TagStoreError { path, source }),
        }
    }
}

/// (revision, count, body checksum): v2 has the checksum, v1 not.
fn parse_header(line: &str) -> Option<(String, usize, Option<String>)> {
    if let Some(rest) = line.strip_prefix(MAGIC_V1) {
        let (revision, count) = rest.strip_prefix(' ')?.split_once(' ')?;
        return Some((revision.to_string(), count.parse().ok()?, None));
    }
    let mut fields = line.strip_prefix(MAGIC)?.strip_prefix(' ')?.split(' ');
    let (revision, count, checksum) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    Some((
        revision.to_string(),
        count.parse().ok()?,
        Some(checksum.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(dir.path().join("data")).unwrap();
        assert_eq!(store.read("ns", "app").unwrap(), None);
        let rev = store.write("ns", "app", &["5.0.3", "5.0.1"]).unwrap();
        let got = store.read("ns", "app").unwrap().unwrap();
        assert_eq!(got.to_vec(), ["5.0.3", "5.0.1"]);
        assert_eq!(got.revision(), rev);
        assert_eq!(
            store.revision("ns", "app").unwrap().as_deref(),
            Some(rev.as_str())
        );
        let rev2 = store.write("ns", "app", &["6.0.0"]).unwrap();
        assert_ne!(rev, rev2);
        assert_eq!(
            store.read("ns", "app").unwrap().unwrap().to_vec(),
            ["6.0.0"]
        );
        store.remove("ns", "app").unwrap();
        assert_eq!(store.read("ns", "app").unwrap(), None);
        store.remove("ns", "app").unwrap();
    }

    #[test]
    fn first_sightings_survive_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(dir.path()).unwrap();
        let t0 = jiff::Timestamp::from_second(1_000_000).unwrap();
        let t1 = jiff::Timestamp::from_second(2_000_000).unwrap();
        store.write_at("ns", "app", &["1.0"], t0).unwrap();
        store.write_at("ns", "app", &["1.1", "1.0"], t1).unwrap();
        let got = store.read("ns", "app").unwrap().unwrap();
        assert_eq!(got.to_vec(), ["1.1", "1.0"]);
        assert_eq!(got.first_seen("1.0"), Some(t0));
        assert_eq!(got.first_seen("1.1"), Some(t1));
        assert_eq!(got.first_seen("2.0"), None);
        // Reopened (a restart): the same.
        let again = TagStore::open(dir.path()).unwrap();
        assert_eq!(
            again.read("ns", "app").unwrap().unwrap().first_seen("1.0"),
            Some(t0)
        );
        // The revision depends on the tags only.
        assert_eq!(got.revision(), revision_of(&["1.1", "1.0"]));
    }

    #[test]
    fn version_one_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("ns")).unwrap();
        let rev = revision_of(&["b", "a"]);
        std::fs::write(
            dir.path().join("ns/app.tags"),
            format!("tagpilot-tags v1 {rev} 2\nb\na\n"),
        )
        .unwrap();
        let got = store.read("ns", "app").unwrap().unwrap();
        assert_eq!(got.to_vec(), ["b", "a"]);
        assert_eq!(got.first_seen("a"), None);
    }

    #[test]
    fn empty_lists_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(dir.path()).unwrap();
        let empty: [&str; 0] = [];
        store.write("ns", "none", &empty).unwrap();
        let got = store.read("ns", "none").unwrap().unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn a_damaged_file_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(dir.path()).unwrap();
        store.write("ns", "app", &["b", "a"]).unwrap();
        let path = dir.path().join("ns/app.tags");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() - 2]).unwrap();
        assert_eq!(store.read("ns", "app").unwrap(), None);
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(store.read("ns", "app").unwrap(), None);
    }

    #[test]
    fn leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(dir.path()).unwrap();
        for i in 0..5 {
            store.write("ns", "app", &[format!("{i}")]).unwrap();
        }
        let names: Vec<_> = std::fs::read_dir(dir.path().join("ns"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["app.tags"]);
    }
}
