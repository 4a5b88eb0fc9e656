//! Commit messages: the data a `git.commit.messageTemplate` sees, in both of Flux's models, and rendering.
//!
//! - v1beta1 (the seed guide's templates): `.AutomationObject`, `.Updated.Files`, `.Updated.Objects`,
//!   `.Updated.Images` (image refs printing `repo:tag`, with `.Repository`, `.Registry`, `.Name`,
//!   `.Identifier`, `.Policy`).
//! - v1: `.AutomationObject`, `.Changed.FileChanges`, `.Changed.Changes`, `.Changed.Objects`, `.Values`.
//!
//! Both are present at once, so a template written for either renders. The Go types are mirrored
//! (`types.NamespacedName`, `update.ObjectIdentifier` embedding kyaml's `ResourceIdentifier`, `update.Change`),
//! so values print as they do in Flux. Where Flux iterates Go maps in random order (`Images`, `Changes`,
//! `Objects`), the order here is fixed: files by path, objects by identifier, changes in document order.

use std::collections::BTreeMap;

use crate::registry::ImageName;
use crate::setters::{ObjectId, PolicyImage, UpdateResult};
use crate::template::{Map, Struct, Template, TemplateError, Value};

/// The message Flux writes when no template is set.
pub const DEFAULT_MESSAGE: &str = "Update from image update automation";

/// The name templates are parsed under, as in Flux's errors.
pub const TEMPLATE_NAME: &str = "commit message";

/// What a commit message is made from.
#[derive(Clone, Copy, Debug)]
pub struct MessageInput<'a> {
    /// The ImageUpdateAutomation's namespace.
    pub namespace: &'a str,
    /// The ImageUpdateAutomation's name.
    pub name: &'a str,
    /// The setters' result.
    pub result: &'a UpdateResult,
    /// The policies the update used (for `.Updated.Images`).
    pub policies: &'a [PolicyImage],
    /// `messageTemplateValues`.
    pub values: &'a BTreeMap<String, String>,
}

/// Renders the commit message: `template` with [`template_data`], or [`DEFAULT_MESSAGE`] without one.
pub fn render(template: Option<&str>, input: &MessageInput<'_>) -> Result<String, TemplateError> {
    match template {
        None => Ok(DEFAULT_MESSAGE.to_string()),
        Some("") => Ok(DEFAULT_MESSAGE.to_string()),
        Some(t) => Template::parse(TEMPLATE_NAME, t)?.execute(&template_data(input)),
    }
}

/// Renders `template` with the commit message's data; errors name the template as `name` (a pull request's
/// title or body).
pub fn render_named(
    name: &str,
    template: &str,
    input: &MessageInput<'_>,
) -> Result<String, TemplateError> {
    Template::parse(name, template)?.execute(&template_data(input))
}

/// Renders a pull request's head branch template: `.AutomationObject` (namespace and name) and `.Policy`
/// (the ImagePolicy of a per-policy branch; empty otherwise).
pub fn render_branch(
    template: &str,
    automation: (&str, &str),
    policy: Option<(&str, &str)>,
) -> Result<String, TemplateError> {
    let mut data = Struct::new("branch.TemplateData").field(
        "AutomationObject",
        namespaced_name(automation.0, automation.1),
    );
    let (pns, pname) = policy.unwrap_or(("", ""));
    data = data.field("Policy", namespaced_name(pns, pname));
    Template::parse("pull request branch", template)?.execute(&Value::structure(data))
}

fn namespaced_name(namespace: &str, name: &str) -> Value {
    Value::structure(
        Struct::new("types.NamespacedName")
            .field("Namespace", Value::str(namespace))
            .field("Name", Value::str(name))
            .stringer(format!("{namespace}/{name}")),
    )
}

/// `update.ObjectIdentifier{yaml.ResourceIdentifier{TypeMeta{APIVersion, Kind}, NameMeta{Name, Namespace}}}`.
pub fn object_identifier(id: &ObjectId) -> Value {
    let type_meta = Struct::new("yaml.TypeMeta")
        .field("APIVersion", Value::str(&id.api_version))
        .field("Kind", Value::str(&id.kind));
    let name_meta = Struct::new("yaml.NameMeta")
        .field("Name", Value::str(&id.name))
        .field("Namespace", Value::str(&id.namespace));
    let resource = Struct::new("yaml.ResourceIdentifier")
        .embed("TypeMeta", Value::structure(type_meta))
        .embed("NameMeta", Value::structure(name_meta));
    Value::structure(
        Struct::new("update.ObjectIdentifier")
            .embed("ResourceIdentifier", Value::structure(resource)),
    )
}

/// The parts of an image reference as go-containerregistry names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRefParts {
    /// The reference as written (`String()`).
    pub string: String,
    /// `Registry()`: `index.docker.io` for Docker Hub.
    pub registry: String,
    /// `Repository()`: `library/nginx` for `nginx`.
    pub repository: String,
    /// `Name()`: registry, repository and tag (or digest).
    pub name: String,
    /// `Identifier()`: the tag, or the digest when there is no tag.
    pub identifier: String,
}

/// Splits a policy's latest image as go-containerregistry's `name.ParseReference` does.
pub fn image_ref_parts(p: &PolicyImage) -> ImageRefParts {
    let (registry, repository) = match ImageName::parse(&p.image) {
        Ok(n) => (n.registry, n.repository),
        Err(_) => (String::new(), p.image.clone()),
    };
    let digest = p.digest.clone().unwrap_or_default();
    let (identifier, sep) = if p.tag.is_empty() && !digest.is_empty() {
        (digest, '@')
    } else {
        (p.tag.clone(), ':')
    };
    ImageRefParts {
        string: p.reference(),
        name: format!("{registry}/{repository}{sep}{identifier}"),
        registry,
        repository,
        identifier,
    }
}

fn image_ref(p: &PolicyImage) -> Value {
    let parts = image_ref_parts(p);
    Value::structure(
        Struct::new("update.imageRef")
            .method("Identifier", Value::str(&parts.identifier))
            .method("Name", Value::str(&parts.name))
            .method("Policy", namespaced_name(&p.namespace, &p.name))
            .method("Registry", Value::str(&parts.registry))
            .method("Repository", Value::str(&parts.repository))
            .method("String", Value::str(&parts.string))
            .stringer(parts.string),
    )
}

fn change(c: &crate::setters::Change) -> Value {
    Value::structure(
        Struct::new("update.Change")
            .field("OldValue", Value::str(&c.old_value))
            .field("NewValue", Value::str(&c.new_value))
            .field("Setter", Value::str(&c.setter)),
    )
}

/// Builds the template data for `input`.
pub fn template_data(input: &MessageInput<'_>) -> Value {
    let policy_of = |c: &crate::setters::Change| input.policies.iter().find(|p| c.policy.is(p));

    // Per file, per object (merged when a file repeats an identity), the changes in document order.
    let mut files: BTreeMap<&str, BTreeMap<&ObjectId, Vec<&crate::setters::Change>>> =
        BTreeMap::new();
    for f in &input.result.files {
        let objects = files.entry(f.path.as_str()).or_default();
        for o in &f.objects {
            objects
                .entry(&o.object)
                .or_default()
                .extend(o.changes.iter());
        }
    }
    // BTreeMap<&ObjectId> orders by (apiVersion, kind, name, namespace): Go's fmtsort order of the struct.

    let mut updated_files = Map::typed("map[string]update.FileResult");
    let mut file_changes = Map::typed("map[string]update.ObjectChanges");
    let mut all_objects_v1beta1: BTreeMap<&ObjectId, Vec<Value>> = BTreeMap::new();
    let mut all_objects_v1: BTreeMap<&ObjectId, Vec<Value>> = BTreeMap::new();
    let mut images: Vec<Value> = Vec::new();
    let mut seen_policies: Vec<&PolicyImage> = Vec::new();
    let mut changes: Vec<Value> = Vec::new();
    let mut seen_changes: Vec<&crate::setters::Change> = Vec::new();

    for (path, objects) in &files {
        let mut file_objects = Map::typed("map[update.ObjectIdentifier][]update.ImageRef");
        let mut object_changes = Map::typed("update.ObjectChanges");
        for (id, list) in objects {
            let mut refs: Vec<Value> = Vec::new();
            let mut refs_seen: Vec<&PolicyImage> = Vec::new();
            for c in list {
                if let Some(p) = policy_of(c) {
                    if !refs_seen.contains(&p) {
                        refs_seen.push(p);
                        refs.push(image_ref(p));
                    }
                    if !seen_policies.contains(&p) {
                        seen_policies.push(p);
                        images.push(image_ref(p));
                    }
                }
                if !seen_changes.contains(c) {
                    seen_changes.push(c);
                    changes.push(change(c));
                }
            }
            let change_values: Vec<Value> = list.iter().map(|c| change(c)).collect();
            all_objects_v1beta1
                .entry(id)
                .or_default()
                .extend(refs.iter().cloned());
            all_objects_v1
                .entry(id)
                .or_default()
                .extend(change_values.iter().cloned());
            file_objects.insert(
                object_identifier(id),
                Value::typed_list("update.ImageRef", refs),
            );
            object_changes.insert(
                object_identifier(id),
                Value::typed_list("update.Change", change_values),
            );
        }
        updated_files.insert(
            Value::str(path),
            Value::structure(
                Struct::new("update.FileResult").field("Objects", Value::map(file_objects)),
            ),
        );
        file_changes.insert(Value::str(path), Value::map(object_changes));
    }

    let mut objects_v1beta1 = Map::typed("map[update.ObjectIdentifier][]update.ImageRef");
    for (id, refs) in all_objects_v1beta1 {
        objects_v1beta1.insert(
            object_identifier(id),
            Value::typed_list("update.ImageRef", refs),
        );
    }
    let mut objects_v1 = Map::typed("update.ObjectChanges");
    for (id, list) in all_objects_v1 {
        objects_v1.insert(
            object_identifier(id),
            Value::typed_list("update.Change", list),
        );
    }

    let updated_files = Value::map(updated_files);
    let updated = Value::structure(
        Struct::new("update.Result")
            .field("Files", updated_files)
            .method("Images", Value::typed_list("update.ImageRef", images))
            .method("Objects", Value::map(objects_v1beta1)),
    );
    let changed = Value::structure(
        Struct::new("update.ResultV2")
            .field("ImageResult", updated.clone())
            .field("FileChanges", Value::map(file_changes))
            .method("Changes", Value::typed_list("update.Change", changes))
            .method("Objects", Value::map(objects_v1)),
    );
    let mut values = Map::typed("map[string]string");
    for (k, v) in input.values {
        values.insert(Value::str(k), Value::str(v));
    }
    Value::structure(
        Struct::new("update.TemplateData")
            .field(
                "AutomationObject",
                namespaced_name(input.namespace, input.name),
            )
            .field("Updated", updated)
            .field("Changed", changed)
            .field("Values", Value::map(values)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(image: &str, tag: &str) -> PolicyImage {
        PolicyImage {
            namespace: "flux-system".into(),
            name: "app".into(),
            image: image.into(),
            tag: tag.into(),
            digest: None,
        }
    }

    #[test]
    fn image_refs_split_as_go_containerregistry() {
        let p = image_ref_parts(&policy("nginx", "1.25.3"));
        assert_eq!(
            p,
            ImageRefParts {
                string: "nginx:1.25.3".into(),
                registry: "index.docker.io".into(),
                repository: "library/nginx".into(),
                name: "index.docker.io/library/nginx:1.25.3".into(),
                identifier: "1.25.3".into(),
            }
        );
        let p = image_ref_parts(&policy("ghcr.io/stefanprodan/podinfo", "6.5.0"));
        assert_eq!(
            (p.registry.as_str(), p.repository.as_str()),
            ("ghcr.io", "stefanprodan/podinfo")
        );
        let p = image_ref_parts(&policy("localhost:5000/app", "v1"));
        assert_eq!(p.name, "localhost:5000/app:v1");
    }

    #[test]
    fn default_message_without_template() {
        let result = UpdateResult::default();
        let values = BTreeMap::new();
        let input = MessageInput {
            namespace: "ns",
            name: "a",
            result: &result,
            policies: &[],
            values: &values,
        };
        assert_eq!(render(None, &input).unwrap(), DEFAULT_MESSAGE);
        assert_eq!(
            render(
                Some("{{ .AutomationObject }} {{ .AutomationObject.Name }}"),
                &input
            )
            .unwrap(),
            "ns/a a"
        );
    }
}
