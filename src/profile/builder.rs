use super::{DisplayRules, EmailNotifications, Name, Profile};

/// Builds a [`Profile`]; start with [`Profile::builder`]. Nothing is checked until
/// [`Profile::validate`], so a builder never fails.
///
/// Each optional field has a setter taking the value (`email("ada@example.com")`) and one
/// taking an `Option` (`set_email(row.email)`), for nullable columns: `None` leaves the
/// field out of the JSON.
///
/// ```
/// use pingpull::Profile;
///
/// // A row whose `email` column is NULL and `bio` is not.
/// let (email, bio): (Option<String>, Option<String>) = (None, Some("Mathematician".into()));
/// let profile = Profile::builder("u1", "Ada").set_email(email).set_bio(bio).build();
/// assert_eq!(profile.email, None);
/// assert_eq!(profile.bio.as_deref(), Some("Mathematician"));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ProfileBuilder {
    profile: Profile,
}

/// For each optional field of type `$value`: `$field(value)` sets it, `$set(option)`
/// sets it or leaves it out.
macro_rules! optional {
    ($value:ty: $($(#[$doc:meta])* $field:ident / $set:ident),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $field(mut self, value: impl Into<$value>) -> Self {
            self.profile.$field = Some(value.into());
            self
        }

        #[doc = concat!("Sets `", stringify!($field), "`, or leaves it out with `None` (a nullable column).")]
        pub fn $set(mut self, value: Option<impl Into<$value>>) -> Self {
            self.profile.$field = value.map(Into::into);
            self
        }
    )*};
}

impl ProfileBuilder {
    pub(super) fn new(id: String, display_name: String) -> Self {
        Self {
            profile: Profile {
                id,
                display_name,
                name: None,
                email: None,
                image_url: None,
                profile_url: None,
                settings_url: None,
                tags: None,
                autofollow_conversations: None,
                email_notifications: None,
                location: None,
                bio: None,
                websites: None,
                display_rules: None,
                moderator: None,
                gravatar_disabled: None,
            },
        }
    }

    optional! { String:
        /// Sets `email`.
        email / set_email,
        /// Sets `image_url` (absolute http(s) URL).
        image_url / set_image_url,
        /// Sets `profile_url` (absolute http(s) URL).
        profile_url / set_profile_url,
        /// Sets `settings_url` (absolute http(s) URL).
        settings_url / set_settings_url,
        /// Sets `location`.
        location / set_location,
        /// Sets `bio`.
        bio / set_bio,
    }

    optional! { bool:
        /// Sets `autofollow_conversations`.
        autofollow_conversations / set_autofollow_conversations,
        /// Sets `moderator`.
        moderator / set_moderator,
        /// Sets `gravatar_disabled`.
        gravatar_disabled / set_gravatar_disabled,
    }

    optional! { Name:
        /// Sets `name`.
        name / set_name,
    }

    optional! { EmailNotifications:
        /// Sets `email_notifications`.
        email_notifications / set_email_notifications,
    }

    optional! { DisplayRules:
        /// Sets `display_rules`.
        display_rules / set_display_rules,
    }

    /// Sets `tags` (each `[A-Za-z0-9_]{1,63}`).
    pub fn tags<I, T>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.profile.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Sets `websites` (at most 2).
    pub fn websites<I, T>(mut self, websites: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.profile.websites = Some(websites.into_iter().map(Into::into).collect());
        self
    }

    /// Sets `tags`, or leaves them out with `None` (a nullable column).
    pub fn set_tags(mut self, tags: Option<Vec<String>>) -> Self {
        self.profile.tags = tags;
        self
    }

    /// Sets `websites`, or leaves them out with `None` (a nullable column).
    pub fn set_websites(mut self, websites: Option<Vec<String>>) -> Self {
        self.profile.websites = websites;
        self
    }

    /// The profile.
    pub fn build(self) -> Profile {
        self.profile
    }
}
