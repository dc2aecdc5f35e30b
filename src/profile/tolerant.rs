//! Reading a profile the way Livefyre's importer did (docs/protocol.md §7): booleans may be the
//! strings `"true"`/`"false"`, `""` and `null` count as absent, unknown keys are ignored;
//! but a missing `id` or `display_name`, an `id` other than the one requested, a bad tag,
//! more than two websites or an unknown notification value make the read fail.

use std::fmt;

use serde_json::{Map, Value};

use super::validate::{check_tags, check_websites};
use super::{
    DisplayRules, EmailNotifications, Name, NotificationFrequency, Profile, Violation,
    ViolationKind, Violations,
};
use crate::user_id;

/// Reads a profile from JSON bytes, tolerantly.
///
/// `requested_id` is the user id that was pulled; when given, the profile's `id` must
/// equal it. URLs are kept as sent (§7 does not fail a pull for them); run
/// [`Profile::validate`] for the writer's stricter rules.
///
/// ```
/// use pingpull::profile::read_tolerant;
///
/// let body = br#"{"id":"u1","display_name":"Bob","moderator":"true","bio":"","shoe_size":44}"#;
/// let profile = read_tolerant(body, Some("u1"))?;
/// assert_eq!(profile.moderator, Some(true));
/// assert_eq!(profile.bio, None);
/// # Ok::<(), pingpull::profile::ReadError>(())
/// ```
///
/// # Errors
///
/// [`ReadError::Json`] if the bytes are not JSON, [`ReadError::NotAnObject`] if they are
/// not an object, [`ReadError::Invalid`] with every violation otherwise.
pub fn read_tolerant(json: &[u8], requested_id: Option<&str>) -> Result<Profile, ReadError> {
    let value: Value = serde_json::from_slice(json).map_err(|e| ReadError::Json(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(ReadError::NotAnObject);
    };
    let mut reader = Reader {
        object: &object,
        violations: Vec::new(),
    };

    let id = reader.string("id");
    let display_name = reader.string("display_name");
    match &id {
        None => reader.violation("id", ViolationKind::Missing),
        Some(id) => {
            if let Err(error) = user_id::validate(id) {
                reader.violation("id", ViolationKind::BadId(error));
            } else if requested_id.is_some_and(|requested| requested != id) {
                reader.violation("id", ViolationKind::IdMismatch);
            }
        }
    }
    if display_name.is_none() {
        reader.violation("display_name", ViolationKind::Missing);
    }

    let profile = Profile {
        name: reader.name(),
        email: reader.string("email"),
        image_url: reader.string("image_url"),
        profile_url: reader.string("profile_url"),
        settings_url: reader.string("settings_url"),
        tags: reader.tags(),
        autofollow_conversations: reader.boolean(&object, "autofollow_conversations", ""),
        email_notifications: reader.email_notifications(),
        location: reader.string("location"),
        bio: reader.string("bio"),
        websites: reader.websites(),
        display_rules: reader.display_rules(),
        moderator: reader.boolean(&object, "moderator", ""),
        gravatar_disabled: reader.boolean(&object, "gravatar_disabled", ""),
        id: id.unwrap_or_default(),
        display_name: display_name.unwrap_or_default(),
    };
    if reader.violations.is_empty() {
        Ok(profile)
    } else {
        Err(ReadError::Invalid(Violations(reader.violations)))
    }
}

/// Why a received profile could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// The body is not JSON; the parser's message.
    Json(String),
    /// The JSON is not an object.
    NotAnObject,
    /// The object breaks docs/protocol.md §7; every violation found.
    Invalid(Violations),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(message) => write!(f, "profile is not valid JSON: {message}"),
            Self::NotAnObject => f.write_str("profile is not a JSON object"),
            Self::Invalid(violations) => violations.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {}

struct Reader<'a> {
    object: &'a Map<String, Value>,
    violations: Vec<Violation>,
}

/// A value that counts as present: not `null`, not `""`.
fn present(value: Option<&Value>) -> Option<&Value> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(value) => Some(value),
    }
}

impl<'a> Reader<'a> {
    fn violation(&mut self, field: impl Into<String>, kind: ViolationKind) {
        self.violations.push(Violation::new(field, kind));
    }

    fn wrong_type(&mut self, field: impl Into<String>, expected: &'static str) {
        self.violation(field, ViolationKind::WrongType { expected });
    }

    fn string_in(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
        prefix: &str,
    ) -> Option<String> {
        match present(object.get(key))? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(format!("{prefix}{key}"), "string");
                None
            }
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        self.string_in(self.object, key, "")
    }

    /// A boolean, or the strings `"true"`/`"false"` the docs' own example uses.
    fn boolean(&mut self, object: &Map<String, Value>, key: &str, prefix: &str) -> Option<bool> {
        match present(object.get(key))? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => {
                self.wrong_type(format!("{prefix}{key}"), "boolean");
                None
            }
        }
    }

    fn sub_object(&mut self, key: &str) -> Option<&'a Map<String, Value>> {
        match present(self.object.get(key))? {
            Value::Object(object) => Some(object),
            _ => {
                self.wrong_type(key, "object");
                None
            }
        }
    }

    fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        let Value::Array(items) = present(self.object.get(key))? else {
            self.wrong_type(key, "list of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                _ => self.wrong_type(format!("{key}[{index}]"), "string"),
            }
        }
        Some(out)
    }

    fn tags(&mut self) -> Option<Vec<String>> {
        let tags = self.string_list("tags")?;
        check_tags(&tags, &mut self.violations);
        Some(tags)
    }

    fn websites(&mut self) -> Option<Vec<String>> {
        let websites = self.string_list("websites")?;
        check_websites(&websites, &mut self.violations);
        Some(websites)
    }

    fn name(&mut self) -> Option<Name> {
        let object = self.sub_object("name")?;
        Some(Name {
            formatted: self.string_in(object, "formatted", "name."),
            first: self.string_in(object, "first", "name."),
            middle: self.string_in(object, "middle", "name."),
            last: self.string_in(object, "last", "name."),
        })
    }

    fn frequency(
        &mut self,
        object: &Map<String, Value>,
        key: &str,
    ) -> Option<NotificationFrequency> {
        let field = format!("email_notifications.{key}");
        match present(object.get(key))? {
            Value::String(s) => {
                let frequency = NotificationFrequency::from_wire(s);
                if frequency.is_none() {
                    self.violation(field, ViolationKind::UnknownNotificationValue);
                }
                frequency
            }
            _ => {
                self.violation(field, ViolationKind::UnknownNotificationValue);
                None
            }
        }
    }

    fn email_notifications(&mut self) -> Option<EmailNotifications> {
        let object = self.sub_object("email_notifications")?;
        Some(EmailNotifications {
            comments: self.frequency(object, "comments"),
            replies: self.frequency(object, "replies"),
            likes: self.frequency(object, "likes"),
            moderator_comments: self.frequency(object, "moderator_comments"),
            moderator_flags: self.frequency(object, "moderator_flags"),
        })
    }

    fn display_rules(&mut self) -> Option<DisplayRules> {
        let object = self.sub_object("display_rules")?;
        let prefix = "display_rules.";
        Some(DisplayRules {
            bio: self.boolean(object, "bio", prefix),
            location: self.boolean(object, "location", prefix),
            gender: self.boolean(object, "gender", prefix),
            name: self.boolean(object, "name", prefix),
            image: self.boolean(object, "image", prefix),
            remote_profile_url: self.boolean(object, "remote_profile_url", prefix),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example profile from Livefyre's Ping for Pull documentation, string booleans and all.
    const DOCS_EXAMPLE: &str = r#"{
        "id": "user_1234",
        "display_name": "Ada L",
        "name": {"formatted": "Ada Lovelace", "first": "Ada", "last": "Lovelace"},
        "email": "ada@example.com",
        "image_url": "http://example.com/images/ada.jpg",
        "profile_url": "http://example.com/users/ada",
        "settings_url": "http://example.com/users/ada/settings",
        "tags": ["power_user", "beta"],
        "autofollow_conversations": "true",
        "email_notifications": {
            "comments": "often",
            "replies": "immediately",
            "likes": "never",
            "moderator_comments": "often",
            "moderator_flags": "never"
        },
        "location": "London",
        "bio": "",
        "websites": ["http://ada.example.com"],
        "display_rules": {"bio": "false", "location": "true", "gender": "false", "name": "true", "image": "true", "remote_profile_url": "true"},
        "moderator": "false",
        "gravatar_disabled": "true",
        "favourite_colour": "blue"
    }"#;

    #[test]
    fn reads_the_docs_example_with_string_booleans() {
        let profile = read_tolerant(DOCS_EXAMPLE.as_bytes(), Some("user_1234")).unwrap();
        assert_eq!(profile.id, "user_1234");
        assert_eq!(profile.autofollow_conversations, Some(true));
        assert_eq!(profile.moderator, Some(false));
        assert_eq!(profile.gravatar_disabled, Some(true));
        assert_eq!(profile.bio, None, "\"\" counts as absent");
        let rules = profile.display_rules.as_ref().unwrap();
        assert_eq!((rules.bio, rules.name), (Some(false), Some(true)));
        let notifications = profile.email_notifications.as_ref().unwrap();
        assert_eq!(
            notifications.replies,
            Some(NotificationFrequency::Immediately)
        );
        assert_eq!(
            profile.tags.as_deref(),
            Some(&["power_user".to_owned(), "beta".to_owned()][..])
        );
        profile.validate().unwrap();
        // Writing it back uses real booleans and omits the absent bio.
        let json = profile.to_json();
        assert!(
            json.contains(r#""moderator":false"#) && !json.contains("bio\":\""),
            "{json}"
        );
    }

    fn violations(json: &str, requested: Option<&str>) -> Vec<(String, ViolationKind)> {
        match read_tolerant(json.as_bytes(), requested) {
            Err(ReadError::Invalid(v)) => v.into_iter().map(|v| (v.field, v.kind)).collect(),
            other => panic!("expected violations, got {other:?}"),
        }
    }

    #[test]
    fn refuses_missing_id_and_display_name() {
        let found = violations(r#"{"display_name":""}"#, None);
        assert_eq!(
            found,
            [
                ("id".to_owned(), ViolationKind::Missing),
                ("display_name".to_owned(), ViolationKind::Missing)
            ]
        );
    }

    #[test]
    fn refuses_an_id_other_than_the_requested_one() {
        let found = violations(r#"{"id":"u2","display_name":"B"}"#, Some("u1"));
        assert_eq!(found, [("id".to_owned(), ViolationKind::IdMismatch)]);
    }

    #[test]
    fn refuses_bad_tags_too_many_websites_and_unknown_notification_values() {
        let found = violations(
            r#"{"id":"u1","display_name":"B","tags":["ok","no way"],"websites":["a","b","c"],
                "email_notifications":{"likes":"daily","replies":true}}"#,
            Some("u1"),
        );
        let fields: Vec<_> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "tags[1]",
                "email_notifications.replies",
                "email_notifications.likes",
                "websites"
            ]
        );
    }

    #[test]
    fn refuses_wrong_types_instead_of_dropping_them() {
        let found = violations(
            r#"{"id":"u1","display_name":"B","moderator":"yes","bio":5,"tags":"a,b","name":"Bob"}"#,
            None,
        );
        let fields: Vec<_> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(fields, ["name", "tags", "bio", "moderator"]);
    }

    #[test]
    fn null_counts_as_absent() {
        let profile = read_tolerant(
            br#"{"id":"u1","display_name":"B","email":null,"tags":null}"#,
            None,
        )
        .unwrap();
        assert_eq!((profile.email, profile.tags), (None, None));
    }

    #[test]
    fn refuses_non_json_and_non_objects() {
        assert!(matches!(read_tolerant(b"{", None), Err(ReadError::Json(_))));
        assert!(matches!(
            read_tolerant(b"[1]", None),
            Err(ReadError::NotAnObject)
        ));
        assert!(matches!(
            read_tolerant(b"\xff", None),
            Err(ReadError::Json(_))
        ));
    }
}
