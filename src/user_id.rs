//! User ids (docs/protocol.md §3, §4): the whole string matches `[A-Za-z0-9_.-]+`.
//!
//! Where an id will sit in a URL path segment (the ping, a pull URL), `.` and `..` are
//! refused too, since they would change the path instead of naming a user.
//!
//! ```
//! use pingpull::user_id;
//!
//! assert!(user_id::validate("user-42.x_y").is_ok());
//! assert!(user_id::validate("bob\n").is_err()); // no trailing newline, unlike some libraries
//! assert!(user_id::validate("..").is_ok());
//! assert!(user_id::validate_for_path("..").is_err());
//! ```

use std::fmt;

/// Checks that `id` is a user id: one or more of `A-Z a-z 0-9 _ . -`, nothing else.
///
/// # Errors
///
/// [`UserIdError`] says what is wrong: empty, or the first character refused and where.
pub fn validate(id: &str) -> Result<(), UserIdError> {
    if id.is_empty() {
        return Err(UserIdError::Empty);
    }
    match id.char_indices().find(|&(_, c)| !is_user_id_char(c)) {
        Some((index, character)) => Err(UserIdError::Character { index, character }),
        None => Ok(()),
    }
}

/// Checks a user id that will stand in a URL path segment: [`validate`], and not `.` or `..`.
///
/// # Errors
///
/// As [`validate`], plus [`UserIdError::DotSegment`].
pub fn validate_for_path(id: &str) -> Result<(), UserIdError> {
    validate(id)?;
    if id == "." || id == ".." {
        return Err(UserIdError::DotSegment);
    }
    Ok(())
}

/// Whether `c` may appear in a user id.
pub(crate) fn is_user_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Why a string is not a valid user id.
///
/// Its `Display` never repeats the id itself, which may be attacker-chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserIdError {
    /// The id is empty.
    Empty,
    /// The id holds a character outside `[A-Za-z0-9_.-]`.
    Character {
        /// Byte offset of the first refused character.
        index: usize,
        /// The refused character.
        character: char,
    },
    /// The id is `.` or `..`, which cannot stand in a URL path segment.
    DotSegment,
}

impl fmt::Display for UserIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("user id must not be empty"),
            Self::Character { index, character } => write!(
                f,
                "user id may hold only A-Z, a-z, 0-9, `_`, `.` and `-`: found {character:?} at byte {index}"
            ),
            Self::DotSegment => f.write_str("user id `.` or `..` cannot stand in a URL path"),
        }
    }
}

impl std::error::Error for UserIdError {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_whole_alphabet() {
        validate("AZaz09_.-").unwrap();
        validate_for_path("user-42.x_y").unwrap();
        validate_for_path("...").unwrap();
        validate_for_path(".hidden").unwrap();
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(validate(""), Err(UserIdError::Empty));
        assert_eq!(validate_for_path(""), Err(UserIdError::Empty));
    }

    #[test]
    fn rejects_trailing_newline() {
        assert_eq!(
            validate("bob\n"),
            Err(UserIdError::Character {
                index: 3,
                character: '\n'
            })
        );
    }

    #[test]
    fn rejects_slash_space_percent_and_non_ascii() {
        for id in ["a/b", "a b", "a%2Fb", "zoë", "a?b", "a#b", "a+b"] {
            assert!(
                matches!(validate(id), Err(UserIdError::Character { .. })),
                "{id}"
            );
        }
    }

    #[test]
    fn rejects_dot_segments_only_for_paths() {
        validate(".").unwrap();
        validate("..").unwrap();
        assert_eq!(validate_for_path("."), Err(UserIdError::DotSegment));
        assert_eq!(validate_for_path(".."), Err(UserIdError::DotSegment));
    }

    proptest! {
        #[test]
        fn accepts_exactly_the_pattern(id in "\\PC*") {
            let expected = !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
            prop_assert_eq!(validate(&id).is_ok(), expected);
        }

        #[test]
        fn accepts_generated_ids(id in "[A-Za-z0-9_.-]{1,40}") {
            prop_assert!(validate(&id).is_ok());
            prop_assert_eq!(validate_for_path(&id).is_ok(), id != "." && id != "..");
        }

        #[test]
        fn rejects_any_id_with_one_foreign_char(
            prefix in "[A-Za-z0-9_.-]{0,10}",
            bad in any::<char>().prop_filter("foreign", |c| !is_user_id_char(*c)),
            suffix in "[A-Za-z0-9_.-]{0,10}",
        ) {
            let id = format!("{prefix}{bad}{suffix}");
            prop_assert_eq!(
                validate(&id),
                Err(UserIdError::Character { index: prefix.len(), character: bad })
            );
        }
    }
}
