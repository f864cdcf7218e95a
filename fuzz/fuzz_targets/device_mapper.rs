//! Fuzz target: `hearth::fuzzing::device_mapper`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::device_mapper(data));
