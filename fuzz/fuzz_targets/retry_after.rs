//! The Pinger's `Retry-After` parser on arbitrary text: never panics.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use pingpull::testing::parse_retry_after;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for now in [UNIX_EPOCH, UNIX_EPOCH + Duration::from_secs(1_700_000_000)] {
        if let Some(delay) = parse_retry_after(text, now) {
            // Delta-seconds are digits only; anything else parsed is an HTTP date, which
            // cannot be later than the year 9999.
            let digits = text.trim();
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                assert!(delay <= Duration::from_secs(253_402_300_800), "{text:?}");
            }
        }
    }
});
