//! Token validation on arbitrary text: never panics, and never accepts anything but a
//! token actually signed with the network key.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use pingpull::Network;
use pingpull::token::SystemTokenValidator;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let network = Network::new("example.fyre.co", "testkeytest").expect("valid network");
    let validator = SystemTokenValidator::new(network);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if validator.validate_at(text, now).is_ok() {
        // The fuzzer cannot forge HMAC-SHA256: an accepted input must be one of the
        // seeds (valid tokens), byte for byte; a mutation of one must never pass.
        assert!(
            text.starts_with("eyJ") && text.split('.').count() == 3,
            "accepted a non-token: {text:?}"
        );
    }
});
