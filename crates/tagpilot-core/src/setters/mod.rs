//! Setters: rewrite the YAML values marked `# {"$imagepolicy": "<ns>:<policy>[:tag|:name|:digest]"}` with
//! the images their policies resolved, editing only the bytes of the changed values.
//!
//! Flux re-serialises every touched file through kyaml (dropping `---`, moving comments, rewriting block
//! scalars, leaving date-like tags unquoted). Here each marked scalar is replaced in place, in its own quoting
//! style, double-quoted when a plain value would not read back as a string (`1.10`, `on`, `2024-06-27`).
//! Every edited text is parsed again and compared with the original documents with only the marked values
//! changed before anything is written; files are written atomically (temporary file and rename, mode kept).
//!
//! Every file is hostile input: one over [`MAX_FILE_BYTES`] is not parsed, the structure scan refuses deep
//! nesting and alias bombs before the YAML parser (which expands aliases) reads the text, and a refused file
//! is reported by name while the others are updated.

mod render;
mod scan;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use yaml_serde::Value;

pub use render::{plain_reads_back, resolves_to_non_string};
use scan::Step;
pub use scan::{MAX_DEPTH, ScanError, alias_budget};

/// The largest marked file the setters read (4 MiB); a larger one is skipped with an error naming it.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// The bytes every file with markers contains; other files are never parsed.
pub const MARKER_NEEDLE: &[u8] = b"\"$imagepolicy\"";

/// What an ImagePolicy resolved to (its `status.latestRef`), as the setters use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyImage {
    /// The policy's namespace.
    pub namespace: String,
    /// The policy's name.
    pub name: String,
    /// The image name as the ImageRepository spells it (`latestRef.name`).
    pub image: String,
    /// The selected tag.
    pub tag: String,
    /// The digest, when the policy reflects digests.
    pub digest: Option<String>,
}

/// The one way an image reference is written: `image:tag`, `image:tag@digest`, and without a tag `image` or
/// `image@digest` (an empty digest counts as none). [`PolicyImage::split_reference`] reads it back.
pub fn format_reference(image: &str, tag: &str, digest: Option<&str>) -> String {
    let mut r = image.to_string();
    if !tag.is_empty() {
        r.push(':');
        r.push_str(tag);
    }
    if let Some(d) = digest.filter(|d| !d.is_empty()) {
        r.push('@');
        r.push_str(d);
    }
    r
}

impl PolicyImage {
    /// `image:tag`, or `image:tag@digest` with a digest (`image@digest` or `image` without a tag).
    pub fn reference(&self) -> String {
        format_reference(&self.image, &self.tag, self.digest.as_deref())
    }

    /// Parses `IMAGE[:TAG][@DIGEST]`: the digest after the last `@`, the tag after the last `:` that follows
    /// the last `/` (so a registry port is not a tag).
    pub fn split_reference(reference: &str) -> (String, String, Option<String>) {
        let (rest, digest) = match reference.rsplit_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (reference, None),
        };
        let name_start = rest.rfind('/').map_or(0, |i| i + 1);
        match rest[name_start..].rfind(':') {
            Some(i) => (
                rest[..name_start + i].to_string(),
                rest[name_start + i + 1..].to_string(),
                digest,
            ),
            None => (rest.to_string(), String::new(), digest),
        }
    }
}

/// The policy a setter belongs to: what a change is attributed to (for the commit message's images).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyKey {
    /// The policy's namespace.
    pub namespace: String,
    /// The policy's name.
    pub name: String,
}

impl PolicyKey {
    /// The policy of a setter written by someone else (`ns:name`, `ns:name:tag`, ...; Flux's
    /// `update.Change.Setter`): the first two `:`-separated parts. Setters made here carry their key.
    pub fn from_setter(setter: &str) -> PolicyKey {
        let mut parts = setter.splitn(3, ':');
        PolicyKey {
            namespace: parts.next().unwrap_or_default().to_string(),
            name: parts.next().unwrap_or_default().to_string(),
        }
    }

    /// Whether `p` is this policy's image.
    pub fn is(&self, p: &PolicyImage) -> bool {
        p.namespace == self.namespace && p.name == self.name
    }
}

/// The value of each setter: `ns:name` (the full reference), `ns:name:tag`, `ns:name:name`, `ns:name:digest`,
/// with the policy it belongs to.
#[derive(Clone, Debug, Default)]
pub struct Setters {
    values: HashMap<String, (String, PolicyKey)>,
}

impl Setters {
    /// The setters of these policies.
    pub fn from_policies<'a>(policies: impl IntoIterator<Item = &'a PolicyImage>) -> Setters {
        let mut s = Setters::default();
        for p in policies {
            s.add(p);
        }
        s
    }

    /// Adds the four setters of one policy (`:digest` only when it has a digest).
    pub fn add(&mut self, p: &PolicyImage) {
        let key = PolicyKey {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
        };
        let base = format!("{}:{}", p.namespace, p.name);
        let mut put = |setter: String, value: String| {
            self.values.insert(setter, (value, key.clone()));
        };
        if !p.tag.is_empty() {
            put(format!("{base}:tag"), p.tag.clone());
        }
        put(format!("{base}:name"), p.image.clone());
        if let Some(d) = p.digest.as_ref().filter(|d| !d.is_empty()) {
            put(format!("{base}:digest"), d.clone());
        }
        put(base, p.reference());
    }

    /// The value of a setter; None for unknown setters (whose markers are left alone).
    pub fn get(&self, setter: &str) -> Option<&str> {
        self.values.get(setter).map(|(v, _)| v.as_str())
    }

    /// The value of a setter and the policy it belongs to.
    pub fn get_with_policy(&self, setter: &str) -> Option<(&str, &PolicyKey)> {
        self.values.get(setter).map(|(v, k)| (v.as_str(), k))
    }

    /// Whether there are no setters.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// The Kubernetes identity of the document a change is in; all empty for other YAML (Helm values, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectId {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
}

impl ObjectId {
    fn of(doc: &Value) -> ObjectId {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let meta = doc.get("metadata");
        ObjectId {
            api_version: text(doc.get("apiVersion")),
            kind: text(doc.get("kind")),
            name: text(meta.and_then(|m| m.get("name"))),
            namespace: text(meta.and_then(|m| m.get("namespace"))),
        }
    }
}

/// One value replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The value before.
    pub old_value: String,
    /// The value after.
    pub new_value: String,
    /// The setter that marked it (`ns:name`, `ns:name:tag`, ...).
    pub setter: String,
    /// The policy the setter belongs to.
    #[serde(skip)]
    pub policy: PolicyKey,
}

/// The changes in one document, in document order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectChanges {
    /// The document's identity.
    pub object: ObjectId,
    /// Its changes.
    pub changes: Vec<Change>,
}

/// A changed file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileChanges {
    /// Path relative to the update path, with `/` separators.
    pub path: String,
    /// The changed documents, in file order.
    pub objects: Vec<ObjectChanges>,
    /// The file before.
    #[serde(skip)]
    pub before: String,
    /// The file after.
    #[serde(skip)]
    pub after: String,
}

/// A file that was left untouched because it could not be processed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileError {
    /// Path relative to the update path.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// The outcome of an update over a tree.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpdateResult {
    /// Files with changes (written unless it was a dry run), sorted by path.
    pub files: Vec<FileChanges>,
    /// Files left untouched because of an error, sorted by path.
    pub errors: Vec<FileError>,
}

impl UpdateResult {
    /// Every change, in file and document order.
    pub fn changes(&self) -> impl Iterator<Item = (&FileChanges, &ObjectChanges, &Change)> {
        self.files.iter().flat_map(|f| {
            f.objects
                .iter()
                .flat_map(move |o| o.changes.iter().map(move |c| (f, o, c)))
        })
    }
}

/// Why one text was not updated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The text is larger than [`MAX_FILE_BYTES`].
    #[error(
        "the file has {0} bytes, over the limit of {MAX_FILE_BYTES} for a marked file; not read"
    )]
    TooLarge(usize),
    /// The text is not valid YAML.
    #[error("invalid YAML: {0}")]
    InvalidYaml(String),
    /// The structure scan failed where the YAML parser did not.
    #[error("invalid YAML: {0}")]
    Scan(#[from] ScanError),
    /// The two parsers disagree about the documents of the file: it is left alone.
    #[error(
        "cannot edit safely: the file's {0} documents are read as {1} by the structure scanner"
    )]
    DocumentCount(usize, usize),
    /// The edited text did not read back as the original with only the marked values changed.
    #[error(
        "cannot edit safely: the edited file would not read back with only the marked values changed ({0})"
    )]
    Verification(String),
}

/// A marked scalar as found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Byte offset of the scalar (its opening quote when quoted).
    pub start: usize,
    /// Byte offset just past the scalar.
    pub end: usize,
    /// The setter named by the marker.
    pub setter: String,
    /// The scalar's value.
    pub value: String,
}

/// The marked scalars of a YAML text, in order (for tools and for checking edits).
pub fn markers(text: &str) -> Result<Vec<Marker>, ScanError> {
    Ok(scan::find_marked(text)?
        .marked
        .into_iter()
        .map(|m| Marker {
            start: m.start,
            end: m.end,
            setter: m.setter,
            value: m.value,
        })
        .collect())
}

/// The edited text and its changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextUpdate {
    /// The new text.
    pub text: String,
    /// The changed documents, in order.
    pub objects: Vec<ObjectChanges>,
}

/// Applies the setters to one YAML text (a stream of documents). `Ok(None)` when nothing changes.
pub fn update_text(text: &str, setters: &Setters) -> Result<Option<TextUpdate>, TextError> {
    if memchr::memmem::find(text.as_bytes(), MARKER_NEEDLE).is_none() {
        return Ok(None);
    }
    if text.len() > MAX_FILE_BYTES {
        return Err(TextError::TooLarge(text.len()));
    }
    // The scan comes first: it bounds nesting and alias expansion before the YAML parser expands aliases.
    let scanned = scan::find_marked(text)?;
    let marked = &scanned.marked;
    let documents = parse_documents(text).map_err(TextError::InvalidYaml)?;
    if scanned.documents != documents.len() && !marked.is_empty() {
        return Err(TextError::DocumentCount(documents.len(), scanned.documents));
    }
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut objects: Vec<(usize, ObjectChanges)> = Vec::new();
    let mut expected = documents.clone();
    for m in marked {
        let Some((new, policy)) = setters.get_with_policy(&m.setter) else {
            continue;
        };
        if new == m.value {
            continue;
        }
        edits.push((m.start, m.end, render::render(new, m.style, m.in_flow)));
        let change = Change {
            old_value: m.value.clone(),
            new_value: new.to_string(),
            setter: m.setter.clone(),
            policy: policy.clone(),
        };
        match objects.last_mut() {
            Some((doc, o)) if *doc == m.document => o.changes.push(change),
            _ => objects.push((
                m.document,
                ObjectChanges {
                    object: documents
                        .get(m.document)
                        .map(ObjectId::of)
                        .unwrap_or_default(),
                    changes: vec![change],
                },
            )),
        }
        // The scalar and every alias that reads it (directly or through an anchored collection) read `new`.
        let budget = alias_budget(scanned.nodes);
        for at in scanned.anchors.readings(m.document, &m.path, budget) {
            let slot = expected
                .get_mut(m.document)
                .and_then(|d| value_at(d, &at))
                .ok_or_else(|| {
                    TextError::Verification(format!(
                        "no value at the marked path in document {}",
                        m.document
                    ))
                })?;
            *slot = Value::String(new.to_string());
        }
    }
    if edits.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (start, end, replacement) in &edits {
        out.push_str(&text[at..*start]);
        out.push_str(replacement);
        at = *end;
    }
    out.push_str(&text[at..]);
    let reread = parse_documents(&out).map_err(TextError::Verification)?;
    if reread != expected {
        return Err(TextError::Verification("documents differ".into()));
    }
    // The next run must find the same markers in the edited text.
    match scan::find_marked(&out) {
        Ok(again) if again.marked.len() == marked.len() => {}
        Ok(_) => return Err(TextError::Verification("the markers changed".into())),
        Err(e) => return Err(TextError::Verification(e.to_string())),
    }
    Ok(Some(TextUpdate {
        text: out,
        objects: objects.into_iter().map(|(_, o)| o).collect(),
    }))
}

/// All documents of a YAML stream.
fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    // A byte order mark is not content, but yaml_serde reads one at the start of a &str as such.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut docs = Vec::new();
    for de in yaml_serde::Deserializer::from_str(text) {
        docs.push(Value::deserialize(de).map_err(|e| e.to_string())?);
    }
    Ok(docs)
}

/// The value at `path` (whose first step is the document root).
fn value_at<'v>(doc: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    let mut v = doc;
    for step in path.iter().skip(1) {
        while let Value::Tagged(t) = v {
            v = &mut t.value;
        }
        v = match (step, v) {
            (Step::Entry(i), Value::Mapping(m)) => m.values_mut().nth(*i)?,
            (Step::Item(i), Value::Sequence(s)) => s.get_mut(*i)?,
            _ => return None,
        };
    }
    while let Value::Tagged(t) = v {
        v = &mut t.value;
    }
    Some(v)
}

/// Why an update over a tree could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// `update.path` resolves outside the repository.
    #[error("update path \"{path}\" is outside the repository")]
    PathEscapes {
        /// The path as given.
        path: String,
    },
    /// `update.path` does not exist or is not a directory.
    #[error("update path \"{path}\": {source}")]
    PathUnusable {
        /// The path as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Reading a directory or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Resolves `update_path` within `root` as Flux's securejoin does: `..` never climbs above the root, an
/// absolute path is taken as relative to it, and the result (after symlinks) must stay inside it.
pub fn resolve_update_path(root: &Path, update_path: &str) -> Result<PathBuf, UpdateError> {
    let unusable = |source| UpdateError::PathUnusable {
        path: update_path.to_string(),
        source,
    };
    let root = root.canonicalize().map_err(unusable)?;
    let mut joined = root.clone();
    for c in Path::new(update_path).components() {
        match c {
            Component::Normal(part) => joined.push(part),
            Component::ParentDir if joined != root => {
                joined.pop();
            }
            _ => {}
        }
    }
    let resolved = joined.canonicalize().map_err(unusable)?;
    if !resolved.starts_with(&root) {
        return Err(UpdateError::PathEscapes {
            path: update_path.to_string(),
        });
    }
    if !resolved.is_dir() {
        return Err(unusable(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    Ok(resolved)
}

/// Whether a file name is one Flux's setters read: `*.yaml`, `*.yml` or `Kustomization`.
pub fn is_candidate_file(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml") || name == "Kustomization"
}

/// Applies the setters to every candidate file under `update_path` within `root`. With `write`, changed
/// files are written atomically; without, nothing is written (a dry run). Symlinks are not followed and
/// `.git` is skipped, so nothing outside the update path is read or written.
pub fn update_tree(
    root: &Path,
    update_path: &str,
    setters: &Setters,
    write: bool,
) -> Result<UpdateResult, UpdateError> {
    let base = resolve_update_path(root, update_path)?;
    let mut result = UpdateResult::default();
    let mut dirs = vec![base.clone()];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        let io = |source| UpdateError::Io {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let kind = entry.file_type().map_err(io)?;
            let name = entry.file_name();
            if kind.is_dir() && name != ".git" {
                dirs.push(entry.path());
            } else if kind.is_file() && name.to_str().is_some_and(is_candidate_file) {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    // Files are independent: spread them over the cores, each worker taking every n-th file, then merge the
    // outcomes back into path order.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let outcomes: Vec<Result<Vec<(usize, FileOutcome)>, UpdateError>> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let (files, base) = (&files, &base);
                    scope.spawn(move || {
                        files
                            .iter()
                            .enumerate()
                            .skip(w)
                            .step_by(workers)
                            .filter_map(|(i, path)| {
                                update_file(base, path, setters, write)
                                    .transpose()
                                    .map(|r| r.map(|o| (i, o)))
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a setters worker panicked"))
                .collect()
        });
    let mut all = Vec::new();
    for o in outcomes {
        all.extend(o?);
    }
    all.sort_by_key(|(i, _)| *i);
    for (_, outcome) in all {
        match outcome {
            FileOutcome::Changed(f) => result.files.push(f),
            FileOutcome::Failed(e) => result.errors.push(e),
        }
    }
    Ok(result)
}

enum FileOutcome {
    Changed(FileChanges),
    Failed(FileError),
}

/// Reads, screens, updates and (with `write`) writes one file; `None` when it has nothing to change.
fn update_file(
    base: &Path,
    path: &Path,
    setters: &Setters,
    write: bool,
) -> Result<Option<FileOutcome>, UpdateError> {
    let rel = path
        .strip_prefix(base)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let io = |source| UpdateError::Io {
        path: path.to_path_buf(),
        source,
    };
    // A file over the limit is not read at all (its size is all the error needs).
    let size = std::fs::symlink_metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES as u64 {
        if !file_has_marker(path).map_err(io)? {
            return Ok(None);
        }
        return Ok(Some(FileOutcome::Failed(FileError {
            path: rel,
            message: TextError::TooLarge(usize::try_from(size).unwrap_or(usize::MAX)).to_string(),
        })));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    if memchr::memmem::find(&bytes, MARKER_NEEDLE).is_none() {
        return Ok(None);
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(Some(FileOutcome::Failed(FileError {
            path: rel,
            message: "not UTF-8 text".into(),
        })));
    };
    match update_text(&text, setters) {
        Ok(None) => Ok(None),
        Ok(Some(update)) => {
            if write {
                write_atomically(path, update.text.as_bytes()).map_err(|source| {
                    UpdateError::Io {
                        path: path.to_path_buf(),
                        source,
                    }
                })?;
            }
            Ok(Some(FileOutcome::Changed(FileChanges {
                path: rel,
                objects: update.objects,
                before: text,
                after: update.text,
            })))
        }
        Err(e) => Ok(Some(FileOutcome::Failed(FileError {
            path: rel,
            message: e.to_string(),
        }))),
    }
}

/// Whether a file contains [`MARKER_NEEDLE`], read in bounded chunks (for files too large to load).
fn file_has_marker(path: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 64 << 10];
    let keep = MARKER_NEEDLE.len() - 1;
    let mut filled = 0;
    loop {
        let n = f.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(false);
        }
        filled += n;
        if memchr::memmem::find(&buf[..filled], MARKER_NEEDLE).is_some() {
            return Ok(true);
        }
        // Keep the tail that could start a needle split across two reads.
        let tail = filled.saturating_sub(keep);
        buf.copy_within(tail..filled, 0);
        filled -= tail;
    }
}

/// Writes `contents` to a temporary file beside `path` with `path`'s mode, then renames it over `path`.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let permissions = std::fs::metadata(path)?.permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(".tagpilot-")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().set_permissions(permissions)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A unified diff of a changed file, as `git diff` shows it.
pub fn unified_diff(file: &FileChanges) -> String {
    similar::TextDiff::from_lines(&file.before, &file.after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{}", file.path), &format!("b/{}", file.path))
        .to_string()
}

#[cfg(test)]
mod tests;
