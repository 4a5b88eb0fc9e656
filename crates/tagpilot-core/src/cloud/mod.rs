//! Registry credentials from a cloud workload identity (`spec.provider`): AWS ECR so far (SigV4, the
//! credential chain, `GetAuthorizationToken`).

pub mod aws;
pub mod sigv4;
