//! Fuzz target: `hearth::fuzzing::thin_delta`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::thin_delta(data));
