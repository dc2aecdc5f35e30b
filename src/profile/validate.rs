use std::fmt;

use http::Uri;

use super::Profile;
use crate::user_id::{self, UserIdError};

/// Longest tag accepted.
const MAX_TAG_LEN: usize = 63;
/// Most websites accepted.
const MAX_WEBSITES: usize = 2;

impl Profile {
    /// Checks the profile against docs/protocol.md §7 and returns every violation, not
    /// just the first.
    ///
    /// # Errors
    ///
    /// [`Violations`], one per problem, each naming its field (`tags[2]`, `image_url`, ...).
    pub fn validate(&self) -> Result<(), Violations> {
        let mut found = Vec::new();
        if let Err(error) = user_id::validate(&self.id) {
            found.push(Violation::new("id", ViolationKind::BadId(error)));
        }
        if self.display_name.is_empty() {
            found.push(Violation::new("display_name", ViolationKind::Missing));
        }
        for (field, url) in [
            ("image_url", &self.image_url),
            ("profile_url", &self.profile_url),
            ("settings_url", &self.settings_url),
        ] {
            if let Some(url) = url
                && !is_absolute_http_url(url)
            {
                found.push(Violation::new(field, ViolationKind::NotAbsoluteHttpUrl));
            }
        }
        if let Some(tags) = &self.tags {
            check_tags(tags, &mut found);
        }
        if let Some(websites) = &self.websites {
            check_websites(websites, &mut found);
        }
        if found.is_empty() {
            Ok(())
        } else {
            Err(Violations(found))
        }
    }
}

/// Adds a violation for each tag that does not match `[A-Za-z0-9_]{1,63}`.
pub(super) fn check_tags(tags: &[String], found: &mut Vec<Violation>) {
    for (index, tag) in tags.iter().enumerate() {
        if !is_valid_tag(tag) {
            found.push(Violation::new(
                format!("tags[{index}]"),
                ViolationKind::BadTag,
            ));
        }
    }
}

/// Adds a violation if there are more than two websites.
pub(super) fn check_websites(websites: &[String], found: &mut Vec<Violation>) {
    if websites.len() > MAX_WEBSITES {
        found.push(Violation::new(
            "websites",
            ViolationKind::TooManyWebsites {
                count: websites.len(),
            },
        ));
    }
}

/// Whether `tag` matches `[A-Za-z0-9_]{1,63}`.
pub(super) fn is_valid_tag(tag: &str) -> bool {
    (1..=MAX_TAG_LEN).contains(&tag.len())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `url` is an absolute `http` or `https` URL with a host.
pub(super) fn is_absolute_http_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<Uri>() else {
        return false;
    };
    let http = uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
    http && uri.host().is_some_and(|host| !host.is_empty())
}

/// Every way a profile breaks docs/protocol.md §7, in field order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations(pub(super) Vec<Violation>);

impl Violations {
    /// The violations, at least one.
    pub fn iter(&self) -> impl Iterator<Item = &Violation> {
        self.0.iter()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a `Violations` holds at least one.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any violation concerns `field` (e.g. `"tags[1]"`).
    pub fn contains_field(&self, field: &str) -> bool {
        self.0.iter().any(|v| v.field == field)
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid profile: ")?;
        for (i, violation) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl IntoIterator for Violations {
    type Item = Violation;
    type IntoIter = std::vec::IntoIter<Violation>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// One problem with one field of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// The field, with an index for list items: `display_name`, `tags[2]`.
    pub field: String,
    /// What is wrong with it.
    pub kind: ViolationKind,
}

impl Violation {
    pub(super) fn new(field: impl Into<String>, kind: ViolationKind) -> Self {
        Self {
            field: field.into(),
            kind,
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.field, self.kind)
    }
}

/// What is wrong with a profile field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViolationKind {
    /// A required field is absent or empty.
    Missing,
    /// The id is not a valid user id.
    BadId(UserIdError),
    /// The id differs from the one requested.
    IdMismatch,
    /// A tag does not match `[A-Za-z0-9_]{1,63}`.
    BadTag,
    /// More than two websites.
    TooManyWebsites {
        /// How many were given.
        count: usize,
    },
    /// Not an absolute `http`/`https` URL.
    NotAbsoluteHttpUrl,
    /// An `email_notifications` value other than `immediately`, `often`, `never`.
    UnknownNotificationValue,
    /// The JSON value has the wrong type for the field.
    WrongType {
        /// The type expected, e.g. "string" or "boolean".
        expected: &'static str,
    },
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("is required and must not be empty"),
            Self::BadId(error) => write!(f, "is not a valid user id: {error}"),
            Self::IdMismatch => f.write_str("differs from the requested user id"),
            Self::BadTag => f.write_str("must match [A-Za-z0-9_]{1,63}"),
            Self::TooManyWebsites { count } => {
                write!(f, "holds {count} entries, at most 2 allowed")
            }
            Self::NotAbsoluteHttpUrl => f.write_str("must be an absolute http(s) URL"),
            Self::UnknownNotificationValue => {
                f.write_str("must be `immediately`, `often` or `never`")
            }
            Self::WrongType { expected } => write!(f, "must be a {expected}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_complete_valid_profile_passes() {
        Profile::builder("u1", "Bob")
            .image_url("https://cdn.example/u1.png")
            .profile_url("http://site.example/u1")
            .tags(["a", "B_2"])
            .websites(["x", "y"])
            .build()
            .validate()
            .unwrap();
    }

    #[test]
    fn reports_every_violation_at_once() {
        let profile = Profile::builder("bad id", "")
            .image_url("/relative.png")
            .profile_url("ftp://site.example/u")
            .settings_url("https://")
            .tags(["ok", "not ok", "", &"x".repeat(64)])
            .websites(["a", "b", "c"])
            .build();
        let violations = profile.validate().unwrap_err();
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "id",
                "display_name",
                "image_url",
                "profile_url",
                "settings_url",
                "tags[1]",
                "tags[2]",
                "tags[3]",
                "websites"
            ]
        );
        let text = violations.to_string();
        assert!(
            text.contains("`websites` holds 3 entries, at most 2 allowed"),
            "{text}"
        );
        assert!(text.contains("`display_name` is required"), "{text}");
    }

    #[test]
    fn empty_id_is_reported() {
        let violations = Profile::builder("", "Bob").build().validate().unwrap_err();
        assert_eq!(
            violations.iter().next().unwrap().kind,
            ViolationKind::BadId(UserIdError::Empty)
        );
    }

    #[test]
    fn absolute_http_urls() {
        for good in [
            "http://a.example",
            "https://a.example/p?q=1#f",
            "HTTPS://A.EXAMPLE:8443/x",
        ] {
            assert!(is_absolute_http_url(good), "{good}");
        }
        for bad in [
            "a.example/x",
            "//a.example/x",
            "mailto:a@b",
            "javascript:alert(1)",
            "https://",
            "https:///x",
            "http://a b",
            "",
        ] {
            assert!(!is_absolute_http_url(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn tag_pattern_is_exactly_word_chars_1_to_63(tag in "\\PC{0,70}") {
            let expected = (1..=63).contains(&tag.len())
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            prop_assert_eq!(is_valid_tag(&tag), expected);
        }

        #[test]
        fn generated_tags_are_valid(tag in "[A-Za-z0-9_]{1,63}") {
            prop_assert!(is_valid_tag(&tag));
        }
    }
}
