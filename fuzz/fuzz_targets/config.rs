//! Fuzz target: `hearth::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::config(data));
