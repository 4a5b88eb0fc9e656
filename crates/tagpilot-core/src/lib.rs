//! The engines of tagpilot, free of cluster I/O so that the controllers and `tagpilot run` share them.
//!
//! - [`semver`]: versions and ranges with Masterminds/semver v3 semantics (Flux's `semver.range`).
//! - [`api`]: Flux's API types (all served versions), conditions, durations and the generated CRDs.
//! - [`tagstore`]: the tags of each ImageRepository, persisted compactly and atomically.
//! - [`failure`]: how a reconcile ends ([`failure::Ready`] or [`failure::Failure`]) and how its status says so.
//! - [`lookup`]: the objects a decision reads, from the API server or from `tagpilot run`'s manifests.
//! - [`git`]: clone, commit and push with a GitRepository secret's authentication.
//! - [`forge`]: pull and merge requests on GitHub, GitLab and Gitea/Forgejo; GitHub App tokens.
//! - [`automation`]: one run of an image update automation: clone, setters, message, commit, push.
//! - [`message`]: commit messages from a template and the setters' result, in Flux's v1beta1 and v1 models.
//! - [`policy`]: ImagePolicy selection (semver, alphabetical, numerical; filter and extract).
//! - [`gates`]: tagpilot's ImagePolicy gates (signature, minimum age, platforms) and the newestBuild order.
//! - [`cosign`]: cosign signature verification, offline (keys, keyless; `.sig` layers and Sigstore bundles).
//! - [`hex`]: lower-case hexadecimal.
//! - [`receiver`]: webhook receivers: the secret path and the verification of each registry's calls.
//! - [`re2`]: Go RE2 regular-expression semantics for `filterTags` and `exclusionList`.
//! - [`registry`]: tag listing and digests over the OCI distribution API, with auth, TLS, paging and retries.
//! - [`sanitize`]: credentials redacted from URLs, and outside text capped, before anything prints it.
//! - [`setters`]: byte-preserving updates of the values marked `# {"$imagepolicy": ...}`.
//! - [`template`]: Go `text/template` with sprig's functions, for commit messages.

pub mod api;
pub mod automation;
pub mod cloud;
pub mod cosign;
pub mod failure;
pub mod forge;
#[doc(hidden)]
pub mod fuzzing;
pub mod gates;
pub mod git;
pub mod hex;
pub mod lookup;
pub mod message;
pub mod policy;
pub mod re2;
pub mod receiver;
pub mod registry;
pub mod sanitize;
pub mod semver;
pub mod setters;
pub mod tagstore;
pub mod template;
