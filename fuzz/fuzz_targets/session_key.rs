#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| session_fuzz::session_key(data));
