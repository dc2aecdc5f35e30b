use super::{DisplayRules, EmailNotifications, Name, Profile};

/// Builds a [`Profile`]; start with [`Profile::builder`]. Nothing is checked until
/// [`Profile::validate`], so a builder never fails.
#[derive(Debug, Clone)]
#[must_use]
pub struct ProfileBuilder {
    profile: Profile,
}

macro_rules! optional_string {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $field(mut self, value: impl Into<String>) -> Self {
            self.profile.$field = Some(value.into());
            self
        }
    )*};
}

macro_rules! optional_bool {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $field(mut self, value: bool) -> Self {
            self.profile.$field = Some(value);
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

    optional_string! {
        /// Sets `email`.
        email,
        /// Sets `image_url` (absolute http(s) URL).
        image_url,
        /// Sets `profile_url` (absolute http(s) URL).
        profile_url,
        /// Sets `settings_url` (absolute http(s) URL).
        settings_url,
        /// Sets `location`.
        location,
        /// Sets `bio`.
        bio,
    }

    optional_bool! {
        /// Sets `autofollow_conversations`.
        autofollow_conversations,
        /// Sets `moderator`.
        moderator,
        /// Sets `gravatar_disabled`.
        gravatar_disabled,
    }

    /// Sets `name`.
    pub fn name(mut self, name: Name) -> Self {
        self.profile.name = Some(name);
        self
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

    /// Sets `email_notifications`.
    pub fn email_notifications(mut self, settings: EmailNotifications) -> Self {
        self.profile.email_notifications = Some(settings);
        self
    }

    /// Sets `display_rules`.
    pub fn display_rules(mut self, rules: DisplayRules) -> Self {
        self.profile.display_rules = Some(rules);
        self
    }

    /// The profile.
    pub fn build(self) -> Profile {
        self.profile
    }
}
