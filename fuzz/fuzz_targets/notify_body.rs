//! Fuzz target: splitting a notify body into FanoutMessages never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mimi_wire::fanout::split_notify(data, mimi_wire::Limits::DEFAULT);
});
