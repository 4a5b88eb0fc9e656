//! Fuzz target: see `tagpilot_core::fuzzing::receiver_call` for what must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tagpilot_core::fuzzing::receiver_call(data));
