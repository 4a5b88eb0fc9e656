//! ImagePolicy: which tag of an ImageRepository is the latest.

use std::time::Duration;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Condition, ImageAgeSource, ImageVerification, NamespacedObjectReference, NewestBuildPolicy,
    duration,
};
use crate::policy::{Order, Policy, Selector};
use crate::semver::Range;

/// The desired state of an ImagePolicy.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "image.toolkit.fluxcd.io",
    version = "v1",
    kind = "ImagePolicy",
    plural = "imagepolicies",
    shortname = "imgpol",
    shortname = "imagepol",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-images",
    namespaced,
    status = "ImagePolicyStatus",
    doc = "ImagePolicy is the Schema for the imagepolicies API",
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".status.latestRef.name"}"#,
    printcolumn = r#"{"name":"Tag","type":"string","jsonPath":".status.latestRef.tag"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicySpec {
    /// The ImageRepository whose tags are chosen from.
    pub image_repository_ref: NamespacedObjectReference,
    /// How the latest tag is chosen: exactly one of `semver`, `alphabetical`, `numerical` (and tagpilot's
    /// `newestBuild`).
    pub policy: ImagePolicyChoice,
    /// Tags to consider, and what part of them to order by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_tags: Option<TagFilterSpec>,
    /// Whether to record the digest of the latest tag: `Never`, `IfNotPresent`, `Always` (needs `interval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Never"))]
    pub digest_reflection_policy: Option<DigestReflectionPolicy>,
    /// How often to re-resolve the digest with `digestReflectionPolicy: Always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: Option<String>,
    /// Stops resolving while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// tagpilot extension: only tags whose image carries a valid cosign signature are candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<ImageVerification>,
    /// tagpilot extension: only tags at least this old are candidates (a Go duration, `72h`); a younger tag
    /// becomes a candidate on its own once it is old enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub minimum_age: Option<String>,
    /// tagpilot extension: what `minimumAge` counts from: `Created` (the image config's `created`, else the
    /// first sighting; the default) or `FirstSeen` (when the reflector first saw the tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_source: Option<ImageAgeSource>,
    /// tagpilot extension: platforms (`linux/amd64`, `linux/arm64/v8`) the tag's image must all provide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub platforms: Option<Vec<String>>,
}

/// The policy choice; the schema allows exactly one member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [
    {"required": ["semver"]}, {"required": ["alphabetical"]}, {"required": ["numerical"]},
    {"required": ["newestBuild"]}
]))]
pub struct ImagePolicyChoice {
    /// The greatest version within a Masterminds range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<SemVerPolicy>,
    /// Byte-wise order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alphabetical: Option<AlphabeticalPolicy>,
    /// Numeric order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerical: Option<NumericalPolicy>,
    /// tagpilot extension: the tag whose image was built last (config `created`; ties: the greatest tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_build: Option<NewestBuildPolicy>,
}

/// `policy.semver`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SemVerPolicy {
    /// A Masterminds range (`5.0.x`, `>=1.0.0 <2.0.0`, `^1.2`).
    pub range: String,
}

/// `policy.alphabetical`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AlphabeticalPolicy {
    /// `asc` (latest is the greatest, the default) or `desc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["asc", "desc"], "default" = "asc"))]
    pub order: Option<String>,
}

/// `policy.numerical`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NumericalPolicy {
    /// `asc` (latest is the greatest, the default) or `desc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["asc", "desc"], "default" = "asc"))]
    pub order: Option<String>,
}

/// `filterTags`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TagFilterSpec {
    /// An RE2 expression; only matching tags are considered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// A replacement (`$1`, `${name}`) giving the value the policy orders by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<String>,
}

/// `digestReflectionPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DigestReflectionPolicy {
    /// No digest.
    #[default]
    Never,
    /// Resolve once per tag.
    IfNotPresent,
    /// Resolve on every reconcile (every `interval`).
    Always,
}

/// The observed state of an ImagePolicy (fields of v1, and v1beta2's `latestImage`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePolicyStatus {
    /// The generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The latest image (v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_ref: Option<ImageRef>,
    /// The latest image before the last change (v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_previous_ref: Option<ImageRef>,
    /// The latest image as `name:tag` (v1beta1, v1beta2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_image: Option<String>,
    /// The previous latest image as `name:tag` (v1beta2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_previous_image: Option<String>,
    /// The `reconcile.fluxcd.io/requestedAt` value last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl ImagePolicyStatus {
    /// The latest image: v1's `latestRef`, else v1beta2's `latestImage` read back.
    pub fn latest(&self) -> Option<ImageRef> {
        if let Some(r) = &self.latest_ref {
            return Some(r.clone());
        }
        let image = self.latest_image.as_deref()?;
        let (name, tag, digest) = crate::setters::PolicyImage::split_reference(image);
        Some(ImageRef { name, tag, digest })
    }
}

/// An image: name (the repository's `spec.image`), tag, optional digest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageRef {
    /// The image name.
    pub name: String,
    /// The tag.
    pub tag: String,
    /// The digest (`sha256:...`) when digest reflection is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ImageRef {
    /// This image as the setters use it, for the policy `namespace/name`.
    pub fn policy_image(&self, namespace: &str, name: &str) -> crate::setters::PolicyImage {
        crate::setters::PolicyImage {
            namespace: namespace.to_string(),
            name: name.to_string(),
            image: self.name.clone(),
            tag: self.tag.clone(),
            digest: self.digest.clone(),
        }
    }

    /// `name:tag[@digest]`, written as every image reference is ([`crate::setters::format_reference`]).
    pub fn reference(&self) -> String {
        crate::setters::format_reference(&self.name, &self.tag, self.digest.as_deref())
    }
}

/// A policy spec that cannot be used; the message names the field and the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field} {value:?}: {reason}")]
pub struct PolicySpecError {
    /// The field path under `spec` (`policy.semver.range`).
    pub field: String,
    /// The value as written.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

impl ImagePolicySpec {
    /// Builds the policy engine for this spec: exactly one policy, a valid range, order, filter pattern and
    /// digest settings, and valid gates.
    pub fn to_policy(&self) -> Result<Policy, PolicySpecError> {
        self.checked().map(|(policy, _)| policy)
    }

    /// The policy engine and the gates of this spec, each checked once.
    pub fn checked(&self) -> Result<(Policy, crate::gates::Gates), PolicySpecError> {
        let policy = self.engine()?;
        Ok((policy, self.gates()?))
    }

    fn engine(&self) -> Result<Policy, PolicySpecError> {
        let err = |field: &str, value: &str, reason: String| PolicySpecError {
            field: field.into(),
            value: value.into(),
            reason,
        };
        let p = &self.policy;
        let chosen = [
            p.semver.is_some(),
            p.alphabetical.is_some(),
            p.numerical.is_some(),
            p.newest_build.is_some(),
        ];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return Err(err(
                "policy",
                &serde_json::to_string(p).unwrap_or_default(),
                "exactly one of semver, alphabetical, numerical and newestBuild must be set".into(),
            ));
        }
        let order = |field: &str, o: &Option<String>| -> Result<Order, PolicySpecError> {
            let o = o.as_deref().unwrap_or("asc");
            Order::parse(o).map_err(|e| err(field, o, e.to_string()))
        };
        let selector = if let Some(s) = &p.semver {
            Selector::SemVer(
                Range::parse(&s.range)
                    .map_err(|e| err("policy.semver.range", &s.range, e.to_string()))?,
            )
        } else if let Some(a) = &p.alphabetical {
            Selector::Alphabetical(order("policy.alphabetical.order", &a.order)?)
        } else if let Some(n) = &p.numerical {
            Selector::Numerical(order("policy.numerical.order", &n.order)?)
        } else if p.newest_build.is_some() {
            Selector::NewestBuild
        } else {
            unreachable!("exactly one policy checked above")
        };
        let mut policy = Policy::new(selector);
        if let Some(f) = &self.filter_tags
            && let Some(pattern) = f.pattern.as_deref().filter(|p| !p.is_empty())
        {
            policy = policy
                .with_filter(pattern, f.extract.as_deref().filter(|e| !e.is_empty()))
                .map_err(|e| err("filterTags.pattern", pattern, e.to_string()))?;
        }
        self.digest_interval()?;
        Ok(policy)
    }

    /// The digest reflection policy in force.
    pub fn digest_policy(&self) -> DigestReflectionPolicy {
        self.digest_reflection_policy.unwrap_or_default()
    }

    /// The re-resolve interval: required with `digestReflectionPolicy: Always`, refused with the others.
    pub fn digest_interval(&self) -> Result<Option<Duration>, PolicySpecError> {
        let interval = match &self.interval {
            Some(i) => Some(duration::parse(i).map_err(|e| PolicySpecError {
                field: "interval".into(),
                value: i.clone(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        match (self.digest_policy(), interval) {
            (DigestReflectionPolicy::Always, None) => Err(PolicySpecError {
                field: "interval".into(),
                value: String::new(),
                reason: "must be set when digestReflectionPolicy is Always".into(),
            }),
            (DigestReflectionPolicy::Always, i) => Ok(i),
            (p, Some(_)) => Err(PolicySpecError {
                field: "interval".into(),
                value: self.interval.clone().unwrap_or_default(),
                reason: format!("may only be set when digestReflectionPolicy is Always, not {p:?}"),
            }),
            (_, None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_format_for_every_image_reference() {
        for (tag, digest) in [
            ("1.0", None),
            ("", None),
            ("1.0", Some("sha256:ab")),
            ("", Some("sha256:ab")),
        ] {
            let r = ImageRef {
                name: "reg:5000/app".into(),
                tag: tag.into(),
                digest: digest.map(String::from),
            };
            let p = r.policy_image("ns", "app");
            assert_eq!(r.reference(), p.reference());
            let (name, t, d) = crate::setters::PolicyImage::split_reference(&r.reference());
            assert_eq!(
                (name.as_str(), t.as_str(), d.as_deref()),
                ("reg:5000/app", tag, digest)
            );
        }
    }

    fn spec(policy: ImagePolicyChoice) -> ImagePolicySpec {
        ImagePolicySpec {
            image_repository_ref: NamespacedObjectReference {
                name: "podinfo".into(),
                namespace: None,
            },
            policy,
            ..Default::default()
        }
    }

    #[test]
    fn builds_each_policy() {
        let s = spec(ImagePolicyChoice {
            semver: Some(SemVerPolicy {
                range: "5.0.x".into(),
            }),
            ..Default::default()
        });
        let p = s.to_policy().unwrap();
        assert_eq!(p.select(&["5.0.1", "5.0.3", "5.1.0"]).unwrap(), "5.0.3");
        let s = spec(ImagePolicyChoice {
            numerical: Some(NumericalPolicy {
                order: Some("desc".into()),
            }),
            ..Default::default()
        });
        assert_eq!(
            s.to_policy().unwrap().select(&["3", "1", "2"]).unwrap(),
            "1"
        );
    }

    #[test]
    fn errors_name_field_and_value() {
        let s = spec(ImagePolicyChoice {
            semver: Some(SemVerPolicy {
                range: "1.x.x.x!".into(),
            }),
            ..Default::default()
        });
        let e = s.to_policy().unwrap_err().to_string();
        assert!(
            e.starts_with("spec.policy.semver.range \"1.x.x.x!\": "),
            "{e}"
        );

        let mut s = spec(ImagePolicyChoice {
            alphabetical: Some(AlphabeticalPolicy { order: None }),
            ..Default::default()
        });
        s.filter_tags = Some(TagFilterSpec {
            pattern: Some("(unclosed".into()),
            extract: None,
        });
        let e = s.to_policy().unwrap_err().to_string();
        assert!(
            e.starts_with("spec.filterTags.pattern \"(unclosed\": "),
            "{e}"
        );

        let e = spec(ImagePolicyChoice::default()).to_policy().unwrap_err();
        assert_eq!(e.field, "policy");

        let mut s = spec(ImagePolicyChoice {
            alphabetical: Some(AlphabeticalPolicy { order: None }),
            ..Default::default()
        });
        s.digest_reflection_policy = Some(DigestReflectionPolicy::Always);
        assert_eq!(s.to_policy().unwrap_err().field, "interval");
        s.interval = Some("5m".into());
        assert!(s.to_policy().is_ok());
    }
}
