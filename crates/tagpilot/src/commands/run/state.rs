//! What `tagpilot run` remembers between runs (in `--state-dir`): the status of every ImageRepository,
//! ImagePolicy and ImageUpdateAutomation, in the controllers' own status types, written by the same core
//! functions. The tags themselves are in the tag store next to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tagpilot_core::api::{ImagePolicyStatus, ImageRepositoryStatus, ImageUpdateAutomationStatus};

/// The state file's content: statuses by `namespace/name`. (A state written by an older tagpilot, with its
/// own shapes, reads as empty results: the next run scans and selects again, and pushes nothing twice.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// ImageRepositories.
    #[serde(default)]
    pub repositories: BTreeMap<String, ImageRepositoryStatus>,
    /// ImagePolicies.
    #[serde(default)]
    pub policies: BTreeMap<String, ImagePolicyStatus>,
    /// ImageUpdateAutomations.
    #[serde(default)]
    pub automations: BTreeMap<String, ImageUpdateAutomationStatus>,
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
    use tagpilot_core::api::ImageRef;

    #[test]
    fn round_trip_and_absent_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), State::default());
        let mut s = State::default();
        s.policies.insert(
            "flux-system/podinfo".into(),
            ImagePolicyStatus {
                latest_ref: Some(ImageRef {
                    name: "ghcr.io/stefanprodan/podinfo".into(),
                    tag: "5.0.3".into(),
                    digest: None,
                }),
                ..ImagePolicyStatus::default()
            },
        );
        s.save(dir.path()).unwrap();
        assert_eq!(State::load(dir.path()).unwrap(), s);
        std::fs::write(path(dir.path()), "{").unwrap();
        let e = State::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is damaged"), "{e}");
    }

    #[test]
    fn a_state_of_an_older_tagpilot_reads_as_empty_results() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"repositories":{"a/r":{"image":"x","revision":"1","tag_count":2,"scan_time":"t"}},
            "policies":{"a/p":{"name":"x","tag":"1"}},
            "automations":{"a/u":{"lastPushCommit":"abc"}}}"#;
        std::fs::write(path(dir.path()), old).unwrap();
        let s = State::load(dir.path()).unwrap();
        assert_eq!(s.policies["a/p"].latest_ref, None);
        assert_eq!(
            s.automations["a/u"].last_push_commit.as_deref(),
            Some("abc")
        );
    }
}
