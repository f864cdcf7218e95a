//! Fuzz target: `hearth::fuzzing::api_body`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::api_body(data));
