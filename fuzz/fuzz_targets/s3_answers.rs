//! Fuzz target: `hearth::fuzzing::s3_answers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::s3_answers(data));
