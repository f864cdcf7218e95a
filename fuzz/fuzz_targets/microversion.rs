//! Fuzz target: `hearth::fuzzing::microversion`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::microversion(data));
