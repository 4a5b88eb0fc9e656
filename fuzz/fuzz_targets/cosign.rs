//! Fuzz target: see `tagpilot_core::fuzzing::cosign` for what must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tagpilot_core::fuzzing::cosign(data));
