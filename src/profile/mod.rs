//! The profile object a Pull endpoint answers with (docs/protocol.md §7).
//!
//! - [`Profile`] is the typed profile, built with [`Profile::builder`];
//! - [`Profile::validate`] lists every violation of §7;
//! - [`Profile::to_json`] writes what the Pull endpoint sends: absent fields omitted,
//!   real booleans;
//! - [`read_tolerant`] reads what a receiver gets, the way Livefyre's importer did;
//! - [`sign_body`] and [`verify_body_signature`] make and check the `X-Profile-Signature`
//!   header of a profile response.
//!
//! ```
//! use pingpull::profile::{NotificationFrequency, Profile};
//!
//! let profile = Profile::builder("u1", "Ada Lovelace")
//!     .image_url("https://cdn.example/u1.png?v=3")
//!     .tags(["beta", "staff"])
//!     .moderator(true)
//!     .build();
//! assert!(profile.validate().is_ok());
//! assert_eq!(
//!     profile.to_json(),
//!     r#"{"id":"u1","display_name":"Ada Lovelace","image_url":"https://cdn.example/u1.png?v=3","tags":["beta","staff"],"moderator":true}"#
//! );
//! ```

mod builder;
mod signature;
mod tolerant;
#[cfg(any(feature = "pull", feature = "emulator"))]
mod unservable;
mod validate;

use serde::{Deserialize, Serialize};

pub use builder::ProfileBuilder;
#[cfg(feature = "emulator")]
pub(crate) use signature::verify_signature_headers;
pub use signature::{SIGNATURE_HEADER, SignatureError, sign_body, verify_body_signature};
pub use tolerant::{ReadError, read_tolerant};
#[cfg(feature = "pull")]
pub(crate) use unservable::unservable_body;
#[cfg(feature = "emulator")]
pub(crate) use unservable::{blames_the_profile, read_unservable};
pub use validate::{Violation, ViolationKind, Violations};

/// A user's profile, as the Pull endpoint sends it and Livefyre keeps it.
///
/// Fields are public for reading and updating; construct with [`Profile::builder`].
/// `Deserialize` is strict (real booleans, known notification values); receivers of
/// third-party JSON use [`read_tolerant`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Profile {
    /// The user id: unique in the network, never changes.
    pub id: String,
    /// The name shown with the user's content. Non-empty.
    pub display_name: String,
    /// The user's full name in parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    /// Where notifications go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Avatar URL (absolute http(s)). Change the URL to make Livefyre refetch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// The user's profile page (absolute http(s) URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_url: Option<String>,
    /// The user's settings page (absolute http(s) URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_url: Option<String>,
    /// User groups; each `[A-Za-z0-9_]{1,63}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Follow conversations the user posts in (Livefyre's default: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autofollow_conversations: Option<bool>,
    /// How often each kind of notification is emailed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_notifications: Option<EmailNotifications>,
    /// Where the user is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// About the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// The user's websites; at most 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websites: Option<Vec<String>>,
    /// Which parts of the profile are shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_rules: Option<DisplayRules>,
    /// Moderator across the network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderator: Option<bool>,
    /// No gravatar fallback when there is no `image_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gravatar_disabled: Option<bool>,
}

impl Profile {
    /// Starts a profile with its two required fields.
    pub fn builder(id: impl Into<String>, display_name: impl Into<String>) -> ProfileBuilder {
        ProfileBuilder::new(id.into(), display_name.into())
    }

    /// The profile as compact JSON: absent fields omitted, booleans as JSON booleans.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(256);
        self.write_json(&mut out);
        // serde_json writes UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the profile's JSON to `out` (for reusing one buffer across responses).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Serialising plain strings, booleans and maps into a Vec cannot fail.
        let _ = serde_json::to_writer(out, self);
    }
}

/// A user's name in parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    /// The whole name as displayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    /// Middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

impl Name {
    /// A name with only its formatted form.
    pub fn formatted(formatted: impl Into<String>) -> Self {
        Self {
            formatted: Some(formatted.into()),
            ..Self::default()
        }
    }

    /// A name from its parts (any may be absent later by editing the fields).
    pub fn parts(first: impl Into<String>, last: impl Into<String>) -> Self {
        Self {
            first: Some(first.into()),
            last: Some(last.into()),
            ..Self::default()
        }
    }
}

/// How often a kind of notification is emailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationFrequency {
    /// As it happens.
    Immediately,
    /// In digests.
    Often,
    /// Not at all.
    Never,
}

impl NotificationFrequency {
    /// The wire name: `immediately`, `often` or `never`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Immediately => "immediately",
            Self::Often => "often",
            Self::Never => "never",
        }
    }

    /// Parses a wire name.
    pub fn from_wire(value: &str) -> Option<Self> {
        match value {
            "immediately" => Some(Self::Immediately),
            "often" => Some(Self::Often),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
}

/// Email notification settings, per kind of event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailNotifications {
    /// Comments on conversations the user follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comments: Option<NotificationFrequency>,
    /// Replies to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replies: Option<NotificationFrequency>,
    /// Likes of the user's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likes: Option<NotificationFrequency>,
    /// Comments for moderators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderator_comments: Option<NotificationFrequency>,
    /// Flags for moderators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderator_flags: Option<NotificationFrequency>,
}

impl EmailNotifications {
    /// The same frequency for every kind.
    pub fn all(frequency: NotificationFrequency) -> Self {
        Self {
            comments: Some(frequency),
            replies: Some(frequency),
            likes: Some(frequency),
            moderator_comments: Some(frequency),
            moderator_flags: Some(frequency),
        }
    }
}

/// Which parts of a profile are shown to others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayRules {
    /// Show the bio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<bool>,
    /// Show the location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<bool>,
    /// Show the gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<bool>,
    /// Show the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<bool>,
    /// Show the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<bool>,
    /// Link to the remote profile URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_profile_url: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_profile_serialises_to_id_and_display_name_only() {
        let profile = Profile::builder("u1", "Bob").build();
        assert_eq!(profile.to_json(), r#"{"id":"u1","display_name":"Bob"}"#);
    }

    #[test]
    fn full_profile_writes_fields_in_schema_order_with_real_booleans() {
        let profile = Profile::builder("u1", "Ada")
            .name(Name::parts("Ada", "Lovelace"))
            .email("ada@example.com")
            .image_url("https://cdn.example/a.png")
            .profile_url("https://site.example/u/ada")
            .settings_url("https://site.example/settings")
            .tags(["staff"])
            .autofollow_conversations(false)
            .email_notifications(EmailNotifications {
                replies: Some(NotificationFrequency::Never),
                ..EmailNotifications::default()
            })
            .location("London")
            .bio("Analyst")
            .websites(["https://ada.example"])
            .display_rules(DisplayRules {
                bio: Some(true),
                ..DisplayRules::default()
            })
            .moderator(true)
            .gravatar_disabled(false)
            .build();
        assert_eq!(
            profile.to_json(),
            concat!(
                r#"{"id":"u1","display_name":"Ada","name":{"first":"Ada","last":"Lovelace"},"#,
                r#""email":"ada@example.com","image_url":"https://cdn.example/a.png","#,
                r#""profile_url":"https://site.example/u/ada","settings_url":"https://site.example/settings","#,
                r#""tags":["staff"],"autofollow_conversations":false,"email_notifications":{"replies":"never"},"#,
                r#""location":"London","bio":"Analyst","websites":["https://ada.example"],"#,
                r#""display_rules":{"bio":true},"moderator":true,"gravatar_disabled":false}"#
            )
        );
    }

    #[test]
    fn round_trips_through_json() {
        let profile = Profile::builder("u-1.x", "Zoë 山田 🎉")
            .name(Name::formatted("Zoë Yamada"))
            .email_notifications(EmailNotifications::all(NotificationFrequency::Often))
            .tags(["a_1", "B2"])
            .moderator(false)
            .build();
        let back: Profile = serde_json::from_str(&profile.to_json()).unwrap();
        assert_eq!(back, profile);
        let tolerant = read_tolerant(profile.to_json().as_bytes(), Some("u-1.x")).unwrap();
        assert_eq!(tolerant, profile);
    }

    #[test]
    fn notification_frequency_wire_names() {
        for f in [
            NotificationFrequency::Immediately,
            NotificationFrequency::Often,
            NotificationFrequency::Never,
        ] {
            assert_eq!(NotificationFrequency::from_wire(f.as_str()), Some(f));
        }
        assert_eq!(NotificationFrequency::from_wire("daily"), None);
    }
}
