//! Fuzz target: `hearth::fuzzing::lvm_report`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::lvm_report(data));
