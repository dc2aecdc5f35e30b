//! The emulator's tolerant profile reader on arbitrary bytes: never panics, and what it
//! accepts has the requested id and a non-empty display name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pingpull::profile::read_tolerant;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = read_tolerant(data, Some("u1")) {
        assert_eq!(profile.id, "u1");
        assert!(!profile.display_name.is_empty());
        // What we accepted writes back out as JSON that reads back the same.
        let again = read_tolerant(profile.to_json().as_bytes(), Some("u1"));
        assert_eq!(
            again.as_ref().ok(),
            Some(&profile),
            "{:?}",
            profile.to_json()
        );
    }
    let _ = read_tolerant(data, None);
});
