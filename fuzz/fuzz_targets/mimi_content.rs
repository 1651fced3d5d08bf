//! Fuzz target: MIMI content decoding never panics, and what decodes re-encodes exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = mimi_content::MimiContent::decode(data) {
        assert_eq!(c.encode().ok().as_deref(), Some(data));
    }
});
