//! One module per command group.

pub mod cluster;
pub mod install;
pub mod policy;
pub mod run;
pub mod scan;
pub mod update;
