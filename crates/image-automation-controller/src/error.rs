//! The error type of the controller loop: what ends a reconcile early (the controller retries with backoff).

/// Errors that end a reconcile early; the controller retries with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or could not be reached.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}
