//! What tagpilot's controllers share, so that each controller crate holds only its reconcilers:
//!
//! - [`flags`]: Flux's flags and feature gates;
//! - [`notify`]: events posted to Flux's notification-controller (`--events-addr`);
//! - [`ops`]: `/metrics`, `/healthz` and `/readyz`, leader election on a Lease, log setup (JSON by default);
//! - [`http`]: the HTTP servers' bounds (header and connection timeouts, a connection cap);
//! - [`lease`]: leader election on a Lease, as client-go's;
//! - [`metrics`]: Flux's reconcile metrics in a registry each controller extends;
//! - [`events`]: one Kubernetes event per call (core v1, as Flux's recorder), also posted to notification-controller;
//! - [`finish`]: the one way a reconcile ends: status written when changed, events, logs, backoff;
//! - [`lookup`]: the API server as the core decisions' [`tagpilot_core::lookup::Lookup`];
//! - [`reconcile`]: status writes by server-side apply, per-reconcile log
//!   lines with `controller`, `namespace`, `name` and `reconcileID`, the retry backoff;
//! - [`schema`]: status writes pruned to the fields the served CRD declares (Flux's own CRDs);
//! - [`secrets`]: the data of a Secret an object's spec names;
//! - [`watch`]: watches that feed caches without `managedFields`.

pub mod events;
pub mod finish;
pub mod flags;
pub mod http;
pub mod lease;
pub mod lookup;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod reconcile;
pub mod schema;
pub mod secrets;
pub mod watch;

pub use events::Events;
pub use finish::Finisher;
pub use lookup::KubeLookup;
pub use metrics::Metrics;
pub use reconcile::{Backoff, ReconcileLog, key, retry_after_error, write_status};
pub use tagpilot_core::failure::{Failure, Ready};
