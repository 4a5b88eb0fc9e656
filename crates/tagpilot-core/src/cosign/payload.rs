//! The simple-signing payload: `critical.type` is cosign's and `critical.image.docker-manifest-digest` is the
//! image being admitted. Keys are matched without regard to case, as Go's JSON decoder does (cosign's spec
//! writes `Docker-manifest-digest`).

use serde_json::Value;

const SIGNATURE_TYPE: &str = "cosign container image signature";

fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Checks that `payload` signs `digest`.
pub fn check(payload: &[u8], digest: &str) -> Result<(), String> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|_| "a signed payload that is not JSON".to_string())?;
    let critical = field(&v, "critical").ok_or("a signed payload without 'critical'")?;
    let kind = field(critical, "type").and_then(Value::as_str);
    if kind != Some(SIGNATURE_TYPE) {
        return Err(format!(
            "a signed payload of type {:?}, not {SIGNATURE_TYPE:?}",
            crate::sanitize::cap(kind.unwrap_or_default(), 80)
        ));
    }
    let signed = field(critical, "image")
        .and_then(|i| field(i, "docker-manifest-digest"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if signed != digest {
        return Err(format!(
            "a signature for another image (signed {}, image is {digest})",
            crate::sanitize::cap(signed, 80)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_and_type_must_match() {
        let d = "sha256:aa";
        let p = br#"{"critical":{"identity":{"docker-reference":"x"},"image":{"Docker-manifest-digest":"sha256:aa"},"type":"cosign container image signature"},"optional":null}"#;
        assert_eq!(check(p, d), Ok(()));
        assert!(check(p, "sha256:bb").unwrap_err().contains("another image"));
        let wrong =
            br#"{"critical":{"image":{"docker-manifest-digest":"sha256:aa"},"type":"other"}}"#;
        assert!(check(wrong, d).unwrap_err().contains("type"));
        assert!(check(b"[", d).is_err());
    }
}
