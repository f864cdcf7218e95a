//! Fuzz target: `hearth::fuzzing::api_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::api_request(data));
