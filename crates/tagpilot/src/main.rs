//! The `tagpilot` command line.
fn main() {}
