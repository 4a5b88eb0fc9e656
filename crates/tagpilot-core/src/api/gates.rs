//! tagpilot's extensions of ImagePolicy: gates a tag must pass before it can be the latest (a cosign signature,
//! a minimum age, required platforms). Every field is optional and off by default, so a Flux manifest means what
//! it means in Flux; Flux's CRDs do not declare them. [`ImagePolicySpec::gates`] checks them into
//! [`crate::gates::Gates`].

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ImagePolicySpec, LocalObjectReference, PolicySpecError, duration};
use crate::gates::{AgeSource, Gates, Platform, TrustedRootSource, VerifySpec};

/// `spec.verify` (tagpilot extension), shaped as Flux's OCIRepository `spec.verify`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageVerification {
    /// The verification provider: `cosign` (the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["cosign"], "default" = "cosign"))]
    pub provider: Option<String>,
    /// A Secret whose `*.pub` keys (PEM, ECDSA P-256 as `cosign generate-key-pair` writes) are tried in turn;
    /// without it, keyless verification with `matchOIDCIdentity` and `trustedRootSecretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Keyless: the identities a Fulcio certificate may carry (regular expressions, any entry may match).
    #[serde(
        default,
        rename = "matchOIDCIdentity",
        skip_serializing_if = "Option::is_none"
    )]
    pub match_oidc_identity: Option<Vec<OidcIdentityMatch>>,
    /// Keyless: a Secret with `trusted_root.json` (Sigstore's trusted root: Fulcio CAs and Rekor keys);
    /// signatures are checked offline against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root_secret_ref: Option<LocalObjectReference>,
    /// Keyless: a ConfigMap with `trusted_root.json`, instead of `trustedRootSecretRef` (a trusted root holds
    /// no secret).
    #[serde(
        default,
        rename = "trustedRootConfigMapRef",
        skip_serializing_if = "Option::is_none"
    )]
    pub trusted_root_config_map_ref: Option<LocalObjectReference>,
}

/// One identity of `spec.verify.matchOIDCIdentity`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OidcIdentityMatch {
    /// The OIDC issuer (regular expression, anchored).
    pub issuer: String,
    /// The certificate's subject: an email or URI SAN (regular expression, anchored).
    pub subject: String,
}

/// `spec.ageSource` (tagpilot extension): what a tag's age counts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImageAgeSource {
    /// The image config's `created`, or the first sighting where it is missing, zero or in the future.
    #[default]
    Created,
    /// When the reflector first saw the tag (kept with the stored tags).
    FirstSeen,
}

/// `policy.newestBuild` (tagpilot extension): the tag whose image was built last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NewestBuildPolicy {}

/// Most platforms one policy may require.
const MAX_PLATFORMS: usize = 16;
/// Most identities one policy may list.
const MAX_IDENTITIES: usize = 16;

impl ImagePolicySpec {
    /// The checked gates of this spec (all off for a Flux manifest).
    pub fn gates(&self) -> Result<Gates, PolicySpecError> {
        let err = |field: &str, value: &str, reason: String| PolicySpecError {
            field: field.into(),
            value: value.into(),
            reason,
        };
        let minimum_age = match &self.minimum_age {
            Some(a) => Some(duration::parse(a).map_err(|e| err("minimumAge", a, e.to_string()))?)
                .filter(|d| *d > Duration::ZERO),
            None => None,
        };
        if self.age_source.is_some() && minimum_age.is_none() {
            return Err(err(
                "ageSource",
                &format!("{:?}", self.age_source.unwrap_or_default()),
                "may only be set with a minimumAge".into(),
            ));
        }
        let age_source = match self.age_source.unwrap_or_default() {
            ImageAgeSource::Created => AgeSource::Created,
            ImageAgeSource::FirstSeen => AgeSource::FirstSeen,
        };
        let written = self.platforms.as_deref().unwrap_or_default();
        if written.len() > MAX_PLATFORMS {
            return Err(err(
                "platforms",
                &written.len().to_string(),
                format!("at most {MAX_PLATFORMS} platforms"),
            ));
        }
        let mut platforms = Vec::new();
        for (i, p) in written.iter().enumerate() {
            platforms.push(
                Platform::parse(p).map_err(|reason| err(&format!("platforms[{i}]"), p, reason))?,
            );
        }
        let verify = match &self.verify {
            None => None,
            Some(v) => Some(verify_spec(v)?),
        };
        Ok(Gates {
            verify,
            minimum_age: minimum_age.map(|d| (d, age_source)),
            platforms,
            newest_build: self.policy.newest_build.is_some(),
        })
    }
}

fn verify_spec(v: &ImageVerification) -> Result<VerifySpec, PolicySpecError> {
    let err = |field: &str, value: &str, reason: &str| PolicySpecError {
        field: format!("verify.{field}"),
        value: value.into(),
        reason: reason.into(),
    };
    if let Some(p) = v.provider.as_deref().filter(|p| *p != "cosign") {
        return Err(err("provider", p, "the only provider is cosign"));
    }
    let identities = v.match_oidc_identity.as_deref().unwrap_or_default();
    if identities.len() > MAX_IDENTITIES {
        return Err(err(
            "matchOIDCIdentity",
            &identities.len().to_string(),
            "at most 16 identities",
        ));
    }
    match (&v.secret_ref, identities.is_empty()) {
        (Some(keys), true) => {
            if v.trusted_root_secret_ref.is_some() || v.trusted_root_config_map_ref.is_some() {
                return Err(err(
                    "trustedRootSecretRef",
                    &keys.name,
                    "is for keyless verification; secretRef verifies with public keys",
                ));
            }
            Ok(VerifySpec::Keys {
                secret: keys.name.clone(),
            })
        }
        (Some(keys), false) => Err(err(
            "matchOIDCIdentity",
            &keys.name,
            "is for keyless verification: set either secretRef (public keys) or matchOIDCIdentity",
        )),
        (None, true) => Err(err(
            "secretRef",
            "",
            "set secretRef (public keys) or matchOIDCIdentity with trustedRootSecretRef (keyless)",
        )),
        (None, false) => {
            let root = match (&v.trusted_root_secret_ref, &v.trusted_root_config_map_ref) {
                (Some(s), None) => TrustedRootSource::Secret(s.name.clone()),
                (None, Some(c)) => TrustedRootSource::ConfigMap(c.name.clone()),
                (Some(s), Some(_)) => {
                    return Err(err(
                        "trustedRootConfigMapRef",
                        &s.name,
                        "set either trustedRootSecretRef or trustedRootConfigMapRef",
                    ));
                }
                (None, None) => {
                    return Err(err(
                        "trustedRootSecretRef",
                        "",
                        "keyless verification is offline and needs a trusted root (trusted_root.json)",
                    ));
                }
            };
            let mut matches = Vec::new();
            for (i, m) in identities.iter().enumerate() {
                let compile = |field: &str, pattern: &str| {
                    crate::gates::anchored(pattern).map_err(|e| PolicySpecError {
                        field: format!("verify.matchOIDCIdentity[{i}].{field}"),
                        value: pattern.into(),
                        reason: e,
                    })
                };
                matches.push((
                    compile("issuer", &m.issuer)?,
                    compile("subject", &m.subject)?,
                ));
            }
            Ok(VerifySpec::Keyless {
                trusted_root: root,
                identities: matches,
            })
        }
    }
}
