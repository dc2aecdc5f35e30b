//! The body of the Pull endpoint's 500 (docs/protocol.md §6): why a profile could not be
//! served, for the puller that asked with a valid token, so Livefyre (the emulator,
//! `check`) can say why instead of only "answered 500". A request without a valid token
//! never gets here: it is refused with an empty 403 before any profile is loaded.
//!
//! ```text
//! {"error":"invalid_profile","message":"invalid profile: `display_name` is required and must not be empty","violations":[{"field":"display_name","message":"is required and must not be empty"}]}
//! ```
//!
//! It names rules and fields, never a field's value, a source's error or a panic's
//! message (which may hold anything, secrets included).

use serde::{Deserialize, Serialize};

/// The JSON object of a 500.
#[derive(Debug, Serialize, Deserialize)]
struct UnservableBody {
    /// The rejection's stable name: `invalid_profile`, `id_mismatch`, `source_panicked`.
    error: String,
    /// One line for people.
    message: String,
    /// Each rule the profile breaks; empty when the fault is not the profile's.
    #[serde(default)]
    violations: Vec<ViolationEntry>,
}

/// One broken rule: the field (`tags[2]`) and what is wrong with it.
#[derive(Debug, Serialize, Deserialize)]
struct ViolationEntry {
    field: String,
    message: String,
}

/// The longest message a reader passes on, in characters: enough for every violation of
/// a profile, short enough for a log line or a table cell.
#[cfg(feature = "emulator")]
const MAX_MESSAGE_CHARS: usize = 500;

/// The 500's JSON: `error` (a rejection's name), `message`, and `violations` as
/// `(field, what is wrong)` pairs.
#[cfg(feature = "pull")]
pub(crate) fn unservable_body(
    error: &str,
    message: &str,
    violations: impl IntoIterator<Item = (String, String)>,
) -> Vec<u8> {
    let body = UnservableBody {
        error: error.to_owned(),
        message: message.to_owned(),
        violations: violations
            .into_iter()
            .map(|(field, message)| ViolationEntry { field, message })
            .collect(),
    };
    // Strings and a list of them: serialising cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// What a 500's body says, as one line: its `message` (its `error` if the message is
/// empty), control characters made spaces and cut at 500 characters. `None` when the
/// body is not such an object, as from an endpoint that does not send one: the endpoint
/// is another party, so nothing else of it is repeated.
#[cfg(feature = "emulator")]
pub(crate) fn read_unservable(body: &[u8]) -> Option<String> {
    let body: UnservableBody = serde_json::from_slice(body).ok()?;
    let text = if body.message.trim().is_empty() {
        body.error
    } else {
        body.message
    };
    if text.trim().is_empty() {
        return None;
    }
    let mut line: String = text
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_MESSAGE_CHARS).is_some() {
        line.push('…');
    }
    Some(line)
}

/// Whether a 500's body says the profile itself is at fault: an object of this shape
/// listing at least one violation (`invalid_profile`, `id_mismatch`), as opposed to a
/// fault of the server's (`source_panicked`, or no such body). The same profile pulled
/// again gets the same answer until someone fixes it.
#[cfg(feature = "emulator")]
pub(crate) fn blames_the_profile(body: &[u8]) -> bool {
    serde_json::from_slice::<UnservableBody>(body).is_ok_and(|body| !body.violations.is_empty())
}

#[cfg(all(test, feature = "pull", feature = "emulator"))]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_as_its_message() {
        let body = unservable_body(
            "invalid_profile",
            "invalid profile: `tags[0]` must match [A-Za-z0-9_]{1,63}",
            [(
                "tags[0]".to_owned(),
                "must match [A-Za-z0-9_]{1,63}".to_owned(),
            )],
        );
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"error":"invalid_profile","message":"invalid profile: `tags[0]` must match [A-Za-z0-9_]{1,63}","violations":[{"field":"tags[0]","message":"must match [A-Za-z0-9_]{1,63}"}]}"#
        );
        assert_eq!(
            read_unservable(&body).as_deref(),
            Some("invalid profile: `tags[0]` must match [A-Za-z0-9_]{1,63}")
        );
    }

    #[test]
    fn only_a_body_with_violations_blames_the_profile() {
        let invalid = unservable_body(
            "invalid_profile",
            "invalid profile: `display_name` is required and must not be empty",
            [(
                "display_name".to_owned(),
                "is required and must not be empty".to_owned(),
            )],
        );
        assert!(blames_the_profile(&invalid));
        let mismatch = unservable_body(
            "id_mismatch",
            "the source returned another user's profile",
            [(
                "id".to_owned(),
                "differs from the requested user id".to_owned(),
            )],
        );
        assert!(blames_the_profile(&mismatch));
        let panicked = unservable_body("source_panicked", "the profile source panicked", []);
        assert!(!blames_the_profile(&panicked));
        for other in [&b""[..], b"oops", b"{}", br#"{"violations":[]}"#] {
            assert!(!blames_the_profile(other), "{other:?}");
        }
    }

    #[test]
    fn reads_another_party_s_body_warily() {
        for other in [&b""[..], b"oops", b"{}", br#"{"message":"x"}"#, b"[1]"] {
            assert_eq!(read_unservable(other), None, "{other:?}");
        }
        let only_error = br#"{"error":"source_panicked","message":""}"#;
        assert_eq!(
            read_unservable(only_error).as_deref(),
            Some("source_panicked")
        );
        let hostile = format!(
            r#"{{"error":"e","message":"line\nbreak\u001b[31m{}"}}"#,
            "x".repeat(1000)
        );
        let line = read_unservable(hostile.as_bytes()).unwrap();
        assert!(line.starts_with("line break [31m"), "{line}");
        assert_eq!(line.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(line.ends_with('…'));
    }
}
