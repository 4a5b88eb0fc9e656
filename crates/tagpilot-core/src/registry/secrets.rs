//! Registry access from Secret data (the controller reads the Secrets; this turns their keys into credentials
//! and transport settings). Errors name the Secret, the field that refers to it and the key, never a value.

use std::collections::BTreeMap;

use super::{Credentials, DockerConfig, Proxy, Transport};

/// The decoded `data` of a Secret.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// A Secret that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("secret '{secret}' ({field}): {reason}")]
pub struct SecretError {
    /// `namespace/name`.
    pub secret: String,
    /// The referring field (`spec.secretRef`).
    pub field: String,
    /// What is wrong (names keys, never values).
    pub reason: String,
}

/// A Secret read for a field: its `namespace/name`, the field and the data.
#[derive(Clone, Copy, Debug)]
pub struct SecretSource<'a> {
    /// `namespace/name`.
    pub secret: &'a str,
    /// `spec.secretRef`, `spec.certSecretRef`, `spec.proxySecretRef`, `imagePullSecrets of ServiceAccount x`.
    pub field: &'a str,
    /// The data.
    pub data: &'a SecretData,
}

impl SecretSource<'_> {
    fn error(&self, reason: impl Into<String>) -> SecretError {
        SecretError {
            secret: self.secret.to_string(),
            field: self.field.to_string(),
            reason: reason.into(),
        }
    }

    fn text(&self, key: &str) -> Result<Option<String>, SecretError> {
        match self.data.get(key) {
            None => Ok(None),
            Some(v) => String::from_utf8(v.clone())
                .map(Some)
                .map_err(|_| self.error(format!("key '{key}' is not UTF-8"))),
        }
    }
}

/// Credentials for `registry` from dockerconfigjson Secrets, first match wins (`spec.secretRef` first, then
/// the ServiceAccount's pull secrets); anonymous when none has an entry for the registry.
pub fn credentials(
    sources: &[SecretSource<'_>],
    registry: &str,
) -> Result<Credentials, SecretError> {
    for s in sources {
        let bytes = s
            .data
            .get(".dockerconfigjson")
            .or_else(|| s.data.get(".dockercfg"))
            .ok_or_else(|| {
                s.error("no '.dockerconfigjson' key (type kubernetes.io/dockerconfigjson)")
            })?;
        let config = DockerConfig::from_json(bytes).map_err(|e| s.error(e.to_string()))?;
        if let Some(c) = config
            .credentials_for(registry)
            .map_err(|e| s.error(e.to_string()))?
        {
            return Ok(c);
        }
    }
    Ok(Credentials::Anonymous)
}

/// The transport of an ImageRepository from its `certSecretRef` and `proxySecretRef` Secrets (each as
/// `namespace/name` and data) and `insecure`; errors name the field.
pub fn repository_transport(
    cert: Option<&(String, SecretData)>,
    proxy: Option<&(String, SecretData)>,
    insecure: bool,
) -> Result<Transport, SecretError> {
    fn source<'a>(s: Option<&'a (String, SecretData)>, field: &'a str) -> Option<SecretSource<'a>> {
        s.map(|(secret, data)| SecretSource {
            secret: secret.as_str(),
            field,
            data,
        })
    }
    transport(
        source(cert, "spec.certSecretRef"),
        source(proxy, "spec.proxySecretRef"),
        insecure,
    )
}

/// Transport settings from `certSecretRef` (`ca.crt`, `tls.crt` + `tls.key`; `caFile`, `certFile`, `keyFile`
/// as older Flux secrets have them), `proxySecretRef` (`address`, `username`, `password`) and `insecure`.
pub fn transport(
    cert: Option<SecretSource<'_>>,
    proxy: Option<SecretSource<'_>>,
    insecure: bool,
) -> Result<Transport, SecretError> {
    let mut t = Transport {
        insecure,
        ..Default::default()
    };
    if let Some(s) = cert {
        let get = |a: &str, b: &str| s.data.get(a).or_else(|| s.data.get(b)).cloned();
        t.ca_pem = get("ca.crt", "caFile");
        match (get("tls.crt", "certFile"), get("tls.key", "keyFile")) {
            (Some(c), Some(k)) => t.client_identity_pem = Some((c, k)),
            (None, None) => {}
            (Some(_), None) => return Err(s.error("'tls.crt' is set without 'tls.key'")),
            (None, Some(_)) => return Err(s.error("'tls.key' is set without 'tls.crt'")),
        }
        if t.ca_pem.is_none() && t.client_identity_pem.is_none() {
            return Err(s.error("none of 'ca.crt', 'tls.crt' and 'tls.key' is set"));
        }
    }
    if let Some(s) = proxy {
        let address = s
            .text("address")?
            .filter(|a| !a.is_empty())
            .ok_or_else(|| s.error("no 'address' key"))?;
        t.proxy = Some(Proxy {
            address,
            username: s.text("username")?,
            password: s.text("password")?,
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> SecretData {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn credentials_from_the_first_matching_secret() {
        let a = data(&[(
            ".dockerconfigjson",
            r#"{"auths":{"other.io":{"username":"u","password":"p"}}}"#,
        )]);
        let b = data(&[(
            ".dockerconfigjson",
            r#"{"auths":{"127.0.0.1:5000":{"username":"me","password":"secret"}}}"#,
        )]);
        let sources = [
            SecretSource {
                secret: "ns/a",
                field: "spec.secretRef",
                data: &a,
            },
            SecretSource {
                secret: "ns/b",
                field: "imagePullSecrets",
                data: &b,
            },
        ];
        let c = credentials(&sources, "127.0.0.1:5000").unwrap();
        assert_eq!(
            c,
            Credentials::Basic {
                username: "me".into(),
                password: "secret".into()
            }
        );
        assert_eq!(
            credentials(&sources, "nowhere.io").unwrap(),
            Credentials::Anonymous
        );
    }

    #[test]
    fn errors_name_secret_and_key_but_not_values() {
        let bad = data(&[(".dockerconfigjson", "{not json secret-value")]);
        let e = credentials(
            &[SecretSource {
                secret: "ns/bad",
                field: "spec.secretRef",
                data: &bad,
            }],
            "r",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("secret 'ns/bad' (spec.secretRef): invalid docker config JSON"),
            "{e}"
        );
        assert!(!e.contains("secret-value"));
        let none = data(&[("token", "x")]);
        let e = credentials(
            &[SecretSource {
                secret: "ns/n",
                field: "spec.secretRef",
                data: &none,
            }],
            "r",
        )
        .unwrap_err();
        assert!(e.reason.contains(".dockerconfigjson"));
        let half = data(&[("tls.crt", "x")]);
        let e = transport(
            Some(SecretSource {
                secret: "ns/c",
                field: "spec.certSecretRef",
                data: &half,
            }),
            None,
            false,
        )
        .unwrap_err();
        assert!(e.reason.contains("tls.key"));
        let proxy = data(&[("username", "u")]);
        let e = transport(
            None,
            Some(SecretSource {
                secret: "ns/p",
                field: "spec.proxySecretRef",
                data: &proxy,
            }),
            false,
        )
        .unwrap_err();
        assert!(e.reason.contains("address"));
    }
}
