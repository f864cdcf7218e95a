//! Fuzz target: `hearth::fuzzing::configfs_names`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::configfs_names(data));
