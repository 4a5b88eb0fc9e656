//! ImageUpdateAutomation: rewrite the marked image references in a git repository and push the commit.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::reason;
use super::{Condition, GitRepositoryRef, ImageRef, Labels, LocalObjectReference, duration};
use crate::automation::{PushSettings, push_options};
use crate::git::CheckoutRef;

/// The desired state of an ImageUpdateAutomation.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "image.toolkit.fluxcd.io",
    version = "v1",
    kind = "ImageUpdateAutomation",
    plural = "imageupdateautomations",
    shortname = "iua",
    shortname = "imgupd",
    shortname = "imgauto",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-images",
    namespaced,
    status = "ImageUpdateAutomationStatus",
    doc = "ImageUpdateAutomation is the Schema for the imageupdateautomations API",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Last run","type":"string","jsonPath":".status.lastAutomationRunTime","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateAutomationSpec {
    /// The GitRepository to clone and push to.
    pub source_ref: CrossNamespaceSourceReference,
    /// Checkout, commit and push settings.
    #[serde(default, rename = "git", skip_serializing_if = "Option::is_none")]
    pub git_spec: Option<GitSpec>,
    /// How often to run (a Go duration).
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,
    /// Which ImagePolicies to apply (default: all in the automation's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_selector: Option<LabelSelector>,
    /// What to update and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateStrategy>,
    /// Stops automation runs while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// tagpilot extension: after its policies change, wait until they have been still this long (a Go
    /// duration, `2m`) before committing, so that a burst of new tags gives one commit naming all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub quiet_period: Option<String>,
    /// tagpilot extension: propose each update as a pull/merge request instead of pushing to the base.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<super::PullRequestSpec>,
}

/// tagpilot extension: policies that changed and are waiting for `spec.quietPeriod` to pass.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SettlingPolicies {
    /// A SHA-256 of the policies' latest images.
    pub policies: String,
    /// When they were first seen as they are (RFC 3339).
    pub since: String,
}

/// A reference to the source (a GitRepository), possibly in another namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent; only `GitRepository`.
    #[schemars(extend("enum" = ["GitRepository"], "default" = "GitRepository"))]
    pub kind: String,
    /// Name of the referent.
    pub name: String,
    /// Namespace of the referent; the automation's when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `spec.git`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSpec {
    /// What to check out (default: the GitRepository's `spec.ref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<GitCheckoutSpec>,
    /// How to commit.
    pub commit: CommitSpec,
    /// Where to push (default: the checked-out branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushSpec>,
}

/// `spec.git.checkout`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitCheckoutSpec {
    /// The reference to check out.
    #[serde(rename = "ref")]
    pub reference: GitRepositoryRef,
}

/// `spec.git.commit`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitSpec {
    /// The commit author.
    pub author: CommitUser,
    /// A key to sign commits with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SigningKey>,
    /// A Go text/template for the commit message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template: Option<String>,
    /// Values for the template (`.Values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_values: Option<BTreeMap<String, String>>,
}

/// A commit author.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommitUser {
    /// Name (default `FluxBot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email.
    pub email: String,
}

/// `spec.git.commit.signingKey`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    /// A Secret with `git.asc` (+ `passphrase`) for OpenPGP or `identity` (+ `password`) for SSH.
    pub secret_ref: LocalObjectReference,
    /// `gpg` (default) or `ssh`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["gpg", "ssh"]))]
    pub type_: Option<String>,
}

/// `spec.git.push`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSpec {
    /// The branch to push to (created from the checkout when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// A refspec pushed as well (`refs/heads/main:refs/for/main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refspec: Option<String>,
    /// Push options (`git push -o`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

/// A label selector (the shape of `metav1.LabelSelector`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must match exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<Labels>,
    /// Set-based requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// One set-based requirement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    #[schemars(extend("enum" = ["In", "NotIn", "Exists", "DoesNotExist"]))]
    pub operator: String,
    /// Values for `In` and `NotIn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// `spec.update`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateStrategy {
    /// Only `Setters`.
    #[schemars(extend("enum" = ["Setters"], "default" = "Setters"))]
    pub strategy: String,
    /// The directory to update, relative to the repository root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The observed state of an ImageUpdateAutomation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdateAutomationStatus {
    /// The generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// When the automation last ran (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_automation_run_time: Option<String>,
    /// The last commit pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_commit: Option<String>,
    /// When it was pushed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_push_time: Option<String>,
    /// The policies (name to latest image) of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_policies: Option<BTreeMap<String, ImageRef>>,
    /// The source revision of the last run (`<branch>@sha1:<sha>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_source_revision: Option<String>,
    /// The `reconcile.fluxcd.io/requestedAt` value last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// tagpilot extension: changed policies waiting for `spec.quietPeriod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settling: Option<SettlingPolicies>,
    /// tagpilot extension: the requests `spec.pullRequest` opened, by head branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_requests: Option<Vec<super::PullRequestRef>>,
}

/// An automation spec that cannot be used; the message names the field and the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidAutomation {
    /// The condition reason (`InvalidSourceConfiguration`, `InvalidPolicySelector`, ...).
    pub reason: &'static str,
    /// The message, naming the field and the value.
    pub message: String,
}

/// The checked settings of an automation.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedAutomation {
    /// `spec.interval`.
    pub interval: std::time::Duration,
    /// `spec.policySelector` as a label-selector query (empty: every policy).
    pub policy_selector: String,
    /// `spec.update.path` (`.` when unset).
    pub update_path: String,
    /// `spec.quietPeriod` (tagpilot extension).
    pub quiet_period: Option<std::time::Duration>,
}

impl ImageUpdateAutomationSpec {
    /// Checks the spec: the source kind, interval, update strategy, policy selector and commit settings.
    pub fn check(&self) -> Result<CheckedAutomation, InvalidAutomation> {
        let invalid = |reason, message| InvalidAutomation { reason, message };
        if self.source_ref.kind != "GitRepository" {
            return Err(invalid(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!(
                    "spec.sourceRef.kind {:?}: only GitRepository is supported",
                    self.source_ref.kind
                ),
            ));
        }
        let interval = duration::parse(&self.interval).map_err(|e| {
            invalid(
                reason::INVALID_SOURCE_CONFIGURATION,
                format!("spec.interval {:?}: {e}", self.interval),
            )
        })?;
        if let Some(u) = &self.update
            && u.strategy != "Setters"
        {
            return Err(invalid(
                reason::INVALID_UPDATE_STRATEGY,
                format!(
                    "spec.update.strategy {:?}: only Setters is supported",
                    u.strategy
                ),
            ));
        }
        let Some(git) = &self.git_spec else {
            return Err(invalid(
                reason::INVALID_SOURCE_CONFIGURATION,
                "spec.git is required: it says how to commit".into(),
            ));
        };
        if git.commit.author.email.trim().is_empty() {
            return Err(invalid(
                reason::INVALID_SOURCE_CONFIGURATION,
                "spec.git.commit.author.email is empty".into(),
            ));
        }
        let policy_selector = match &self.policy_selector {
            Some(sel) => sel.to_query().map_err(|e| {
                invalid(
                    reason::INVALID_POLICY_SELECTOR,
                    format!("spec.policySelector: {e}"),
                )
            })?,
            None => String::new(),
        };
        let update_path = self
            .update
            .as_ref()
            .and_then(|u| u.path.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into());
        let quiet_period = match &self.quiet_period {
            Some(q) => Some(duration::parse(q).map_err(|e| {
                invalid(
                    reason::INVALID_SOURCE_CONFIGURATION,
                    format!("spec.quietPeriod {q:?}: {e}"),
                )
            })?)
            .filter(|d| !d.is_zero()),
            None => None,
        };
        Ok(CheckedAutomation {
            interval,
            policy_selector,
            update_path,
            quiet_period,
        })
    }

    /// What to check out: `git.checkout.ref`, else the GitRepository's `spec.ref`, else the default branch.
    pub fn checkout_ref(&self, source_ref: Option<&GitRepositoryRef>) -> CheckoutRef {
        let own = self
            .git_spec
            .as_ref()
            .and_then(|g| g.checkout.as_ref())
            .map(|c| &c.reference);
        own.or(source_ref)
            .map(GitRepositoryRef::to_checkout)
            .unwrap_or(CheckoutRef::Branch(None))
    }

    /// `git.commit` (empty when `git` is absent).
    pub fn commit(&self) -> CommitSpec {
        self.git_spec
            .as_ref()
            .map(|g| g.commit.clone())
            .unwrap_or_default()
    }

    /// The commit settings of `git.commit` (the author's name defaults to the e-mail), signed by `signer`.
    pub fn commit_settings(
        &self,
        signer: Option<crate::git::Signer>,
    ) -> crate::automation::CommitSettings {
        let commit = self.commit();
        crate::automation::CommitSettings {
            author_name: commit
                .author
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| commit.author.email.clone()),
            author_email: commit.author.email,
            signer,
            template: commit.message_template,
            values: commit.message_template_values.unwrap_or_default(),
        }
    }

    /// The namespace of the GitRepository `sourceRef` names (the automation's own, `own`, when unset).
    pub fn source_namespace(&self, own: &str) -> String {
        self.source_ref
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| own.to_string())
    }

    /// `git.push`, with the options as `git push -o` values.
    pub fn push_settings(&self) -> PushSettings {
        let push = self.git_spec.as_ref().and_then(|g| g.push.as_ref());
        PushSettings {
            branch: push
                .and_then(|p| p.branch.clone())
                .filter(|b| !b.is_empty()),
            refspec: push
                .and_then(|p| p.refspec.clone())
                .filter(|r| !r.is_empty()),
            options: push
                .and_then(|p| p.options.as_ref())
                .map(push_options)
                .unwrap_or_default(),
            no_force_push_branch: false,
            rebuild: false,
        }
    }
}

impl GitRepositoryRef {
    /// The checkout this ref names, with source-controller's precedence: commit, name, semver, tag, branch.
    pub fn to_checkout(&self) -> CheckoutRef {
        let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        if let Some(sha) = set(&self.commit) {
            CheckoutRef::Commit {
                sha,
                branch: set(&self.branch),
            }
        } else if let Some(n) = set(&self.name) {
            CheckoutRef::Name(n)
        } else if let Some(r) = set(&self.semver) {
            CheckoutRef::SemVer(r)
        } else if let Some(t) = set(&self.tag) {
            CheckoutRef::Tag(t)
        } else {
            CheckoutRef::Branch(set(&self.branch))
        }
    }
}

/// A label selector that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

impl LabelSelector {
    /// The selector as a list query (`a=b,c in (d,e),!f`), checked as the API server does: keys and values
    /// are label syntax, `In`/`NotIn` need values, `Exists`/`DoesNotExist` take none.
    pub fn to_query(&self) -> Result<String, SelectorError> {
        let mut parts = Vec::new();
        for (k, v) in self.match_labels.iter().flatten() {
            check_key(k)?;
            check_value(k, v)?;
            parts.push(format!("{k}={v}"));
        }
        for (i, e) in self.match_expressions.iter().flatten().enumerate() {
            check_key(&e.key)?;
            let values = e.values.clone().unwrap_or_default();
            for v in &values {
                check_value(&e.key, v)?;
            }
            let at = format!("matchExpressions[{i}]");
            match e.operator.as_str() {
                "In" | "NotIn" if values.is_empty() => {
                    return Err(SelectorError(format!(
                        "{at}: operator {} needs at least one value",
                        e.operator
                    )));
                }
                "In" => parts.push(format!("{} in ({})", e.key, values.join(","))),
                "NotIn" => parts.push(format!("{} notin ({})", e.key, values.join(","))),
                "Exists" | "DoesNotExist" if !values.is_empty() => {
                    return Err(SelectorError(format!(
                        "{at}: operator {} takes no values",
                        e.operator
                    )));
                }
                "Exists" => parts.push(e.key.clone()),
                "DoesNotExist" => parts.push(format!("!{}", e.key)),
                other => {
                    return Err(SelectorError(format!(
                        "{at}: operator {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                    )));
                }
            }
        }
        Ok(parts.join(","))
    }

    /// Whether `labels` match (the selector must have passed [`LabelSelector::to_query`]).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().flatten().all(|e| {
                let values = e.values.as_deref().unwrap_or_default();
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn check_key(key: &str) -> Result<(), SelectorError> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.')
                .all(|l| is_name(l, 63) && !l.contains('_') && l.bytes().all(|b| b != b'.'))
    });
    if prefix_ok && is_name(name, 63) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "label key {key:?} is not a valid label name ([prefix/]name, alphanumerics, '-', '_', '.')"
        )))
    }
}

fn check_value(key: &str, value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_name(value, 63) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "label value {value:?} of {key:?} is not a valid label value (63 characters: alphanumerics, '-', '_', '.')"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guide's automation's spec.
    fn guide() -> ImageUpdateAutomationSpec {
        let doc: serde_json::Value = yaml_serde::from_str(include_str!(
            "../../../../tests/e2e/manifests/flux-guide-automation-v1beta1.yaml"
        ))
        .unwrap();
        serde_json::from_value(doc["spec"].clone()).unwrap()
    }

    #[test]
    fn the_guide_spec_checks() {
        let s = guide();
        let c = s.check().unwrap();
        assert_eq!(c.interval, std::time::Duration::from_secs(60));
        assert_eq!(c.update_path, "./clusters/my-cluster");
        assert_eq!(c.policy_selector, "");
        assert_eq!(
            s.checkout_ref(None),
            CheckoutRef::Branch(Some("main".into()))
        );
        assert_eq!(s.push_settings().branch.as_deref(), Some("main"));
    }

    #[test]
    fn checkout_falls_back_to_the_source_ref_then_the_default_branch() {
        let mut s = guide();
        s.git_spec.as_mut().unwrap().checkout = None;
        assert_eq!(s.checkout_ref(None), CheckoutRef::Branch(None));
        let source = GitRepositoryRef {
            branch: Some("release".into()),
            tag: Some("v1.0.0".into()),
            ..Default::default()
        };
        assert_eq!(
            s.checkout_ref(Some(&source)),
            CheckoutRef::Tag("v1.0.0".into())
        );
        let commit = GitRepositoryRef {
            branch: Some("main".into()),
            commit: Some("abc".into()),
            ..Default::default()
        };
        assert_eq!(
            commit.to_checkout(),
            CheckoutRef::Commit {
                sha: "abc".into(),
                branch: Some("main".into())
            }
        );
    }

    #[test]
    fn bad_specs_name_the_field() {
        let mut s = guide();
        s.update.as_mut().unwrap().strategy = "Kustomize".into();
        let e = s.check().unwrap_err();
        assert_eq!(e.reason, reason::INVALID_UPDATE_STRATEGY);
        assert!(
            e.message.contains("spec.update.strategy \"Kustomize\""),
            "{e}"
        );

        let mut s = guide();
        s.policy_selector = Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: None,
            }]),
            ..Default::default()
        });
        let e = s.check().unwrap_err();
        assert_eq!(e.reason, reason::INVALID_POLICY_SELECTOR);
        assert!(
            e.message
                .contains("matchExpressions[0]: operator In needs at least one value"),
            "{e}"
        );

        let mut s = guide();
        s.policy_selector = Some(LabelSelector {
            match_labels: Some([("env".to_string(), "prod env".to_string())].into()),
            ..Default::default()
        });
        let e = s.check().unwrap_err();
        assert!(e.message.contains("label value \"prod env\""), "{e}");
    }

    #[test]
    fn selectors_render_and_match() {
        let sel = LabelSelector {
            match_labels: Some([("env".to_string(), "prod".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["web".into(), "api".into()]),
                },
                LabelSelectorRequirement {
                    key: "example.com/skip".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            sel.to_query().unwrap(),
            "env=prod,tier in (web,api),!example.com/skip"
        );
        let labels = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(sel.matches(&labels(&[("env", "prod"), ("tier", "api")])));
        assert!(!sel.matches(&labels(&[("env", "prod"), ("tier", "db")])));
        assert!(!sel.matches(&labels(&[
            ("env", "prod"),
            ("tier", "web"),
            ("example.com/skip", "")
        ])));
    }
}
