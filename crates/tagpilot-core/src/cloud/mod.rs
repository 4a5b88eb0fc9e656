//! Registry credentials from a cloud workload identity (`spec.provider`): AWS ECR so far.

pub mod sigv4;
