//! The status fields the served CRD declares, so that a status write never sends a field the API server's
//! schema does not have.
//!
//! Users who swap Flux's controller images keep the CRDs Flux installed: those serve `v1` only and do not
//! declare the fields tagpilot writes for older versions (an ImagePolicy's `latestImage`). Server-side apply
//! refuses a patch with an undeclared field (`field not declared in schema`, HTTP 500), so every status is
//! pruned to the served schema before it is sent:
//!
//! - the served CRD (`customresourcedefinitions/<plural>.<group>`, read with `get`) gives the exact schema of
//!   the version written; it is read again after [`REFRESH`] (a CRD upgrade is picked up) and at once after a
//!   write the server refused for an undeclared field;
//! - when the CRD cannot be read (Flux's RBAC does not grant it), the status keeps only the fields Flux's `v1`
//!   declares: [`tagpilot_core::api::BEYOND_FLUX_V1`] names the others.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{Api, Client, Resource};
use serde_json::Value;

/// How long a served schema is trusted before it is read again.
pub const REFRESH: Duration = Duration::from_secs(30);

/// What is known of a CRD's status schema.
#[derive(Clone, Debug)]
enum Declared {
    /// The `status` schema of the written version.
    Schema(Value),
    /// The CRD could not be read: keep Flux v1's fields.
    FluxV1,
}

type Cache = Mutex<HashMap<String, (Instant, Declared)>>;

/// The process's schemas, by CRD name (one API server per process).
fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The CRD name of a kind: `<plural>.<group>`.
pub fn crd_name<K: Resource<DynamicType = ()>>() -> String {
    format!("{}.{}", K::plural(&()), K::group(&()))
}

/// Forgets the schema of `K` (after the server refused a field): the next write reads the CRD again.
pub fn forget<K: Resource<DynamicType = ()>>() {
    cache()
        .lock()
        .expect("schema cache")
        .remove(&crd_name::<K>());
}

/// `status` pruned to what the served CRD of `K` declares.
pub async fn prune_status<K: Resource<DynamicType = ()>>(
    client: &Client,
    mut status: Value,
) -> Value {
    let name = crd_name::<K>();
    let cached = cache()
        .lock()
        .expect("schema cache")
        .get(&name)
        .filter(|(at, _)| at.elapsed() < REFRESH)
        .map(|(_, d)| d.clone());
    let declared = match cached {
        Some(d) => d,
        None => {
            let d = read_declared(client, &name, &K::version(&())).await;
            cache()
                .lock()
                .expect("schema cache")
                .insert(name, (Instant::now(), d.clone()));
            d
        }
    };
    match declared {
        Declared::Schema(schema) => prune(&schema, &mut status),
        Declared::FluxV1 => {
            if let Value::Object(map) = &mut status {
                for (kind, fields) in tagpilot_core::api::BEYOND_FLUX_V1 {
                    if *kind == K::kind(&()) {
                        for f in *fields {
                            map.remove(*f);
                        }
                    }
                }
            }
        }
    }
    status
}

async fn read_declared(client: &Client, crd: &str, version: &str) -> Declared {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    match api.get(crd).await {
        Ok(c) => match status_schema(&c, version) {
            Some(s) => Declared::Schema(s),
            None => {
                tracing::warn!(
                    crd,
                    version,
                    "the served CRD has no status schema for this version; writing Flux v1's status fields"
                );
                Declared::FluxV1
            }
        },
        Err(e) => {
            tracing::debug!(crd, error = %e, "cannot read the served CRD; writing Flux v1's status fields");
            Declared::FluxV1
        }
    }
}

/// The `status` schema of `version` in a CRD.
pub fn status_schema(crd: &CustomResourceDefinition, version: &str) -> Option<Value> {
    let v = crd.spec.versions.iter().find(|v| v.name == version)?;
    let schema = serde_json::to_value(v.schema.as_ref()?.open_api_v3_schema.as_ref()?).ok()?;
    schema.pointer("/properties/status").cloned()
}

/// Removes from `value` every object key `schema` does not declare (structural schemas: `properties`,
/// `additionalProperties`, `items`; `x-kubernetes-preserve-unknown-fields` keeps unknown keys).
pub fn prune(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keep_unknown = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            map.retain(|k, v| {
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    prune(s, v);
                    true
                } else if let Some(s) = additional.filter(|a| a.is_object()) {
                    prune(s, v);
                    true
                } else {
                    keep_unknown || additional.and_then(Value::as_bool) == Some(true)
                }
            });
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for v in items {
                    prune(s, v);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn undeclared_keys_go_declared_ones_stay() {
        let schema = json!({"type": "object", "properties": {
            "latestRef": {"type": "object", "properties": {"name": {}, "tag": {}}},
            "conditions": {"type": "array", "items": {"type": "object", "properties": {"type": {}}}},
            "observedPolicies": {"type": "object", "additionalProperties": {"type": "object", "properties": {"tag": {}}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        }});
        let mut v = json!({
            "latestRef": {"name": "a", "tag": "1", "extra": 1},
            "latestImage": "a:1",
            "conditions": [{"type": "Ready", "x": 1}],
            "observedPolicies": {"p": {"tag": "1", "y": 2}},
            "free": {"anything": {"goes": 1}},
        });
        prune(&schema, &mut v);
        assert_eq!(
            v,
            json!({
                "latestRef": {"name": "a", "tag": "1"},
                "conditions": [{"type": "Ready"}],
                "observedPolicies": {"p": {"tag": "1"}},
                "free": {"anything": {"goes": 1}},
            })
        );
    }
}
