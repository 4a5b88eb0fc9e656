//! ImageRepository: a registry repository scanned for tags on an interval.

use std::time::Duration;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::conditions::reason;
use super::{Condition, Labels, LocalObjectReference, duration};
use crate::registry::{DEFAULT_EXCLUSIONS, Exclusions, ImageName};

/// The desired state of an ImageRepository.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "image.toolkit.fluxcd.io",
    version = "v1",
    kind = "ImageRepository",
    plural = "imagerepositories",
    shortname = "imgrepo",
    shortname = "imagerepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-images",
    namespaced,
    status = "ImageRepositoryStatus",
    doc = "ImageRepository is the Schema for the imagerepositories API",
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".spec.image"}"#,
    printcolumn = r#"{"name":"Tags","type":"string","jsonPath":".status.lastScanResult.tagCount"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Last scan","type":"string","jsonPath":".status.lastScanResult.scanTime","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ImageRepositorySpec {
    /// The image repository to scan, without scheme or tag (`ghcr.io/org/app`, `registry:5000/app`).
    pub image: String,
    /// How often to scan (a Go duration: `1m`, `6h`).
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub interval: String,
    /// Deadline of one scan; defaults to the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    pub timeout: Option<String>,
    /// A `kubernetes.io/dockerconfigjson` Secret with the registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// A ServiceAccount whose `imagePullSecrets` are used for credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// A Secret with `ca.crt`, and `tls.crt` + `tls.key` for a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// A Secret with the proxy `address` and optional `username` and `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Stops scanning while true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Namespaces whose ImagePolicies may refer to this repository (none: the same namespace only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_from: Option<AccessFrom>,
    /// Regular expressions (RE2) of tags to leave out; at most 25.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 25), extend("default" = ["^.*\\.sig$"]))]
    pub exclusion_list: Option<Vec<String>>,
    /// The cloud provider for automatic credentials (`generic` for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["generic", "aws", "azure", "gcp"], "default" = "generic"))]
    pub provider: Option<String>,
    /// Plain HTTP instead of HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
}

/// Which namespaces may refer to an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessFrom {
    /// Namespaces matching any selector are allowed.
    pub namespace_selectors: Vec<NamespaceSelector>,
}

/// Namespaces by label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels the namespace must carry; empty matches every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<Labels>,
}

/// The observed state of an ImageRepository.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageRepositoryStatus {
    /// The generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling`, `Stalled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The image as scanned (`alpine` is `index.docker.io/library/alpine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_image_name: Option<String>,
    /// The last successful scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan_result: Option<ScanResultStatus>,
    /// The exclusion list of the last scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_exclusion_list: Option<Vec<String>>,
    /// The `reconcile.fluxcd.io/requestedAt` value last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanResultStatus {
    /// A checksum of the tag list; changes when the tags change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Tags found (after exclusion).
    pub tag_count: i64,
    /// When the scan finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan_time: Option<String>,
    /// The first 10 tags in byte-wise descending order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_tags: Option<Vec<String>>,
}

/// Whether a scan is due, and why (Flux's `shouldScan`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanDue {
    /// Scan now; the reason is Flux's "scanning: ..." text.
    Now(&'static str),
    /// The next scan is due after this long.
    After(Duration),
}

impl ScanDue {
    /// Whether a scan due for `why` may take another object's recent listing of the same image: not when
    /// it was asked for (`reconcile requested`) nor when retrying after a failure.
    pub fn may_share(why: &str) -> bool {
        !matches!(why, "reconcile requested" | "retrying after a failure")
    }
}

/// An ImageRepository spec checked and parsed: what a scan needs.
#[derive(Clone, Debug)]
pub struct CheckedRepository {
    /// The repository.
    pub image: ImageName,
    /// `spec.interval`.
    pub interval: Duration,
    /// `spec.timeout`, else the interval.
    pub timeout: Duration,
    /// The exclusion list in force, as written.
    pub exclusion_list: Vec<String>,
    /// The compiled exclusions.
    pub exclusions: Exclusions,
}

/// Why an ImageRepository spec cannot be scanned; retrying cannot help until the spec changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRepository {
    /// The condition reason (`ImageURLInvalid`, `Failure`).
    pub reason: &'static str,
    /// The message, naming the field and the value.
    pub message: String,
}

impl ImageRepositorySpec {
    /// Checks the spec: the image (no scheme, no tag), the interval and timeout, the exclusion patterns.
    pub fn check(&self) -> Result<CheckedRepository, InvalidRepository> {
        let image = ImageName::parse(&self.image).map_err(|e| InvalidRepository {
            reason: reason::IMAGE_URL_INVALID,
            message: format!("spec.image {:?}: {e}", self.image),
        })?;
        let invalid = |field: &str, value: &str, e: &dyn std::fmt::Display| InvalidRepository {
            reason: reason::FAILURE,
            message: format!("spec.{field} {value:?}: {e}"),
        };
        let interval =
            duration::parse(&self.interval).map_err(|e| invalid("interval", &self.interval, &e))?;
        let timeout = match &self.timeout {
            Some(t) => duration::parse(t).map_err(|e| invalid("timeout", t, &e))?,
            None => interval,
        };
        if interval < Duration::from_secs(1) {
            return Err(invalid("interval", &self.interval, &"must be at least 1s"));
        }
        if timeout < Duration::from_secs(1) {
            let t = self.timeout.as_deref().unwrap_or(&self.interval);
            return Err(invalid("timeout", t, &"must be at least 1s"));
        }
        match self.provider.as_deref() {
            None | Some("generic") => {}
            Some(p @ ("aws" | "gcp" | "azure")) => {
                let owner = crate::cloud::provider_of(&image.registry);
                if owner != Some(p) {
                    return Err(invalid(
                        "provider",
                        p,
                        &format!(
                            "the image's registry {:?} is not {} registry{}",
                            image.registry,
                            crate::cloud::with_article(p),
                            owner.map(|o| format!(" (it is {o}'s)")).unwrap_or_default()
                        ),
                    ));
                }
            }
            Some(p) => {
                return Err(invalid(
                    "provider",
                    p,
                    &"expected generic, aws, gcp or azure",
                ));
            }
        }
        let exclusion_list = self.exclusions();
        if exclusion_list.len() > 25 {
            return Err(invalid(
                "exclusionList",
                &format!("{} patterns", exclusion_list.len()),
                &"at most 25 patterns are allowed",
            ));
        }
        for (i, p) in exclusion_list.iter().enumerate() {
            if let Err(e) = crate::re2::compile(p) {
                return Err(invalid(&format!("exclusionList[{i}]"), p, &e));
            }
        }
        let exclusions = Exclusions::new(&exclusion_list).map_err(|e| InvalidRepository {
            reason: reason::FAILURE,
            message: format!("spec.exclusionList: {e}"),
        })?;
        Ok(CheckedRepository {
            image,
            interval,
            timeout,
            exclusion_list,
            exclusions,
        })
    }

    /// Whether an object in `namespace` (with these labels) may refer to this repository, which lives in
    /// `own_namespace`: always from the same namespace, else when a `spec.accessFrom` selector matches.
    pub fn allows_access_from(
        &self,
        own_namespace: &str,
        namespace: &str,
        labels: &Labels,
    ) -> bool {
        if namespace == own_namespace {
            return true;
        }
        let Some(access) = &self.access_from else {
            return false;
        };
        access.namespace_selectors.iter().any(|sel| {
            sel.match_labels
                .iter()
                .flatten()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
    }

    /// The exclusion list in force (Flux's default when unset).
    pub fn exclusions(&self) -> Vec<String> {
        match &self.exclusion_list {
            Some(list) => list.clone(),
            None => DEFAULT_EXCLUSIONS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl ImageRepository {
    /// The `reconcile.fluxcd.io/requestedAt` annotation, if set.
    pub fn requested_at(&self) -> Option<&str> {
        super::requested_at(&self.metadata)
    }

    /// Flux's `shouldScan`: no scan yet, a reconcile requested, a new canonical name, a changed exclusion
    /// list, no tags stored (or not the tags of the last scan), or the interval (less a second) elapsed.
    /// `stored_revision` is the revision of the tags in the tag store, if any.
    pub fn scan_due(
        &self,
        canonical: &str,
        interval: Duration,
        stored_revision: Option<&str>,
        now: jiff::Timestamp,
    ) -> ScanDue {
        let status = self.status.clone().unwrap_or_default();
        let Some(last) = &status.last_scan_result else {
            return ScanDue::Now("first scan");
        };
        if let Some(req) = self.requested_at()
            && status.last_handled_reconcile_at.as_deref() != Some(req)
        {
            return ScanDue::Now("reconcile requested");
        }
        if status.canonical_image_name.as_deref() != Some(canonical) {
            return ScanDue::Now("new image name");
        }
        if status.observed_exclusion_list.as_ref() != Some(&self.spec.exclusions()) {
            return ScanDue::Now("updated exclusion list");
        }
        if stored_revision.is_none() || last.tag_count == 0 {
            return ScanDue::Now("no tags in database");
        }
        if stored_revision != last.revision.as_deref() {
            return ScanDue::Now("no tags in database");
        }
        let Some(scanned) = last
            .scan_time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        else {
            return ScanDue::Now("first scan");
        };
        // A scan time in the future (clock skew) counts as just scanned.
        let elapsed = Duration::try_from(now.duration_since(scanned)).unwrap_or(Duration::ZERO);
        if elapsed >= interval.saturating_sub(Duration::from_secs(1)) {
            return ScanDue::Now("triggered by interval");
        }
        ScanDue::After(interval - elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(status: Option<ImageRepositoryStatus>) -> ImageRepository {
        let mut r = ImageRepository::new(
            "podinfo",
            ImageRepositorySpec {
                image: "ghcr.io/stefanprodan/podinfo".into(),
                interval: "1m".into(),
                ..Default::default()
            },
        );
        r.status = status;
        r
    }

    fn scanned(at: &str) -> ImageRepositoryStatus {
        ImageRepositoryStatus {
            canonical_image_name: Some("ghcr.io/stefanprodan/podinfo".into()),
            observed_exclusion_list: Some(vec!["^.*\\.sig$".into()]),
            last_scan_result: Some(ScanResultStatus {
                revision: Some("r1".into()),
                tag_count: 3,
                scan_time: Some(at.into()),
                latest_tags: None,
            }),
            ..Default::default()
        }
    }

    const CANON: &str = "ghcr.io/stefanprodan/podinfo";
    const MIN: Duration = Duration::from_secs(60);

    fn at(t: &str) -> jiff::Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn check_names_field_and_value() {
        let mut r = repo(None);
        let ok = r.spec.check().unwrap();
        assert_eq!(ok.interval, MIN);
        assert_eq!(ok.timeout, MIN);
        r.spec.image = "https://ghcr.io/org/app".into();
        let e = r.spec.check().unwrap_err();
        assert_eq!(e.reason, reason::IMAGE_URL_INVALID);
        assert!(
            e.message
                .starts_with("spec.image \"https://ghcr.io/org/app\": "),
            "{}",
            e.message
        );
        r.spec.image = "ghcr.io/org/app:1.0".into();
        assert_eq!(
            r.spec.check().unwrap_err().reason,
            reason::IMAGE_URL_INVALID
        );
        r.spec.image = "ghcr.io/org/app".into();
        r.spec.exclusion_list = Some(vec!["ok".into(), "(bad".into()]);
        let e = r.spec.check().unwrap_err();
        assert!(
            e.message.starts_with("spec.exclusionList[1] \"(bad\": "),
            "{}",
            e.message
        );
        r.spec.exclusion_list = None;
        r.spec.interval = "1d".into();
        assert!(
            r.spec
                .check()
                .unwrap_err()
                .message
                .starts_with("spec.interval \"1d\"")
        );
        r.spec.interval = "1m".into();
        r.spec.provider = Some("aws".into());
        let e = r.spec.check().unwrap_err();
        assert!(
            e.message
                .starts_with("spec.provider \"aws\": the image's registry \""),
            "{}",
            e.message
        );
        r.spec.image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app".into();
        assert!(r.spec.check().is_ok());
        r.spec.provider = Some("gcp".into());
        let e = r.spec.check().unwrap_err().message;
        assert!(e.contains("is not a gcp registry (it is aws's)"), "{e}");
        r.spec.image = "europe-docker.pkg.dev/p/r/app".into();
        assert!(r.spec.check().is_ok());
        r.spec.provider = Some("azure".into());
        r.spec.image = "reg.azurecr.io/app".into();
        assert!(r.spec.check().is_ok());
        r.spec.provider = Some("oracle".into());
        let e = r.spec.check().unwrap_err().message;
        assert!(e.contains("expected generic, aws, gcp or azure"), "{e}");
        r.spec.provider = Some("generic".into());
        assert!(r.spec.check().is_ok());
    }

    #[test]
    fn access_from_namespaces() {
        let mut spec = repo(None).spec;
        let labels: Labels = [("team".to_string(), "a".to_string())]
            .into_iter()
            .collect();
        assert!(spec.allows_access_from("ns", "ns", &Labels::new()));
        assert!(!spec.allows_access_from("ns", "other", &labels));
        spec.access_from = Some(AccessFrom {
            namespace_selectors: vec![NamespaceSelector {
                match_labels: Some(labels.clone()),
            }],
        });
        assert!(spec.allows_access_from("ns", "other", &labels));
        assert!(!spec.allows_access_from("ns", "other", &Labels::new()));
        spec.access_from = Some(AccessFrom {
            namespace_selectors: vec![NamespaceSelector { match_labels: None }],
        });
        assert!(
            spec.allows_access_from("ns", "other", &Labels::new()),
            "empty selector matches all"
        );
    }

    #[test]
    fn scan_rules() {
        let now = at("2026-01-01T00:00:30Z");
        assert_eq!(
            repo(None).scan_due(CANON, MIN, None, now),
            ScanDue::Now("first scan")
        );
        let r = repo(Some(scanned("2026-01-01T00:00:00Z")));
        assert_eq!(
            r.scan_due(CANON, MIN, Some("r1"), now),
            ScanDue::After(Duration::from_secs(30))
        );
        assert_eq!(
            r.scan_due("other/name", MIN, Some("r1"), now),
            ScanDue::Now("new image name")
        );
        assert_eq!(
            r.scan_due(CANON, MIN, None, now),
            ScanDue::Now("no tags in database")
        );
        assert_eq!(
            r.scan_due(CANON, MIN, Some("r0"), now),
            ScanDue::Now("no tags in database")
        );
        assert_eq!(
            r.scan_due(CANON, MIN, Some("r1"), at("2026-01-01T00:00:59.5Z")),
            ScanDue::Now("triggered by interval")
        );
        let mut r2 = r.clone();
        r2.spec.exclusion_list = Some(vec![]);
        assert_eq!(
            r2.scan_due(CANON, MIN, Some("r1"), now),
            ScanDue::Now("updated exclusion list")
        );
        let mut r3 = r.clone();
        r3.metadata.annotations = Some(
            [(
                crate::api::REQUESTED_AT_ANNOTATION.to_string(),
                "now".to_string(),
            )]
            .into_iter()
            .collect(),
        );
        assert_eq!(
            r3.scan_due(CANON, MIN, Some("r1"), now),
            ScanDue::Now("reconcile requested")
        );
        r3.status.as_mut().unwrap().last_handled_reconcile_at = Some("now".into());
        assert!(matches!(
            r3.scan_due(CANON, MIN, Some("r1"), now),
            ScanDue::After(_)
        ));
    }
}
