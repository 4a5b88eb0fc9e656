//! End-to-end tests against the real servers of `hack/testinfra/up.sh` (`make testinfra-up`).
//! One test binary, so the servers and the build are shared by every test.

mod automation;
mod chart;
mod cli_cluster;
mod cli_run;
mod cloud;
mod dashboards;
mod drivers;
mod flux_crds;
mod flux_drop_in;
mod gates;
mod git_source;
mod helm;
mod image;
mod infra_smoke;
mod install;
mod kube_support;
mod pull_requests;
mod receiver;
mod reflector;
mod registry;
