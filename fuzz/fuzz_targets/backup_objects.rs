//! Fuzz target: `hearth::fuzzing::backup_objects`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::backup_objects(data));
