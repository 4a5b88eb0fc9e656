//! What `tagpilot run` remembers between runs (in `--state-dir`): per ImageRepository its last scan, per
//! ImagePolicy its latest image, per automation what it last observed and pushed. The tags themselves are in
//! the tag store next to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tagpilot_core::api::ImageRef;

/// An ImageRepository's last successful scan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryState {
    /// The image scanned (a changed image means the stored tags are not its tags).
    pub image: String,
    /// The tag list's revision in the tag store.
    pub revision: String,
    /// How many tags.
    pub tag_count: usize,
    /// When (RFC 3339).
    pub scan_time: String,
}

/// An automation's last successful run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomationState {
    /// `observedSourceRevision`.
    pub observed_source_revision: Option<String>,
    /// `observedPolicies`.
    pub observed_policies: BTreeMap<String, ImageRef>,
    /// `lastPushCommit`.
    pub last_push_commit: Option<String>,
    /// `lastPushTime`.
    pub last_push_time: Option<String>,
}

/// The state file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// By `namespace/name`.
    #[serde(default)]
    pub repositories: BTreeMap<String, RepositoryState>,
    /// Latest image by `namespace/name`.
    #[serde(default)]
    pub policies: BTreeMap<String, ImageRef>,
    /// By `namespace/name`.
    #[serde(default)]
    pub automations: BTreeMap<String, AutomationState>,
}

/// The state file in a state directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

impl State {
    /// Reads the state of `dir` (empty when there is none yet).
    pub fn load(dir: &Path) -> anyhow::Result<State> {
        let p = path(dir);
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged; remove it to start afresh", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    /// Writes the state atomically (a temporary file renamed over the old one).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let p = path(dir);
        let tmp = dir.join(".state.json.tmp");
        let text = serde_json::to_vec_pretty(self).expect("the state serialises");
        std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("write {}", p.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_absent_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), State::default());
        let mut s = State::default();
        s.policies.insert(
            "flux-system/podinfo".into(),
            ImageRef {
                name: "ghcr.io/stefanprodan/podinfo".into(),
                tag: "5.0.3".into(),
                digest: None,
            },
        );
        s.save(dir.path()).unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), s);
        std::fs::write(path(dir.path()), "{").unwrap();
        let e = State::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is damaged"), "{e}");
    }
}
