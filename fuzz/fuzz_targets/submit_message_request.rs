//! Fuzz target: `SubmitMessageRequest` decoding never panics, and what decodes re-encodes to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mimi_wire::codec::Body;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = mimi_wire::submit::SubmitMessageRequest::decode(data) {
        assert_eq!(v.encode(), data);
    }
});
