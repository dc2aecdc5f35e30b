//! Where the Pull endpoint gets profiles: the customer's [`ProfileSource`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use crate::Profile;

use crate::BoxError;

/// Loads a user's profile for the Pull endpoint.
///
/// Return `Ok(Some(profile))` when the user exists, `Ok(None)` when it does not (the
/// endpoint answers 404), and `Err` when the profile cannot be loaded now (503 with
/// `Retry-After`, so Livefyre tries again later). The id has already been validated.
///
/// ```
/// use pingpull::pull::ProfileSource;
/// use pingpull::{BoxError, Profile};
///
/// struct Users;
///
/// #[async_trait::async_trait]
/// impl ProfileSource for Users {
///     async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError> {
///         Ok((user_id == "u1").then(|| Profile::builder("u1", "Ada").build()))
///     }
/// }
/// ```
#[async_trait]
pub trait ProfileSource: Send + Sync + 'static {
    /// Loads the profile of `user_id`.
    async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError>;
}

#[async_trait]
impl<T: ProfileSource + ?Sized> ProfileSource for Arc<T> {
    async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError> {
        (**self).load(user_id).await
    }
}

#[async_trait]
impl<T: ProfileSource + ?Sized> ProfileSource for Box<T> {
    async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError> {
        (**self).load(user_id).await
    }
}

/// A [`ProfileSource`] from an async closure that takes the user id; see [`source_fn`].
#[derive(Clone)]
pub struct SourceFn<F> {
    load: F,
}

/// Adapts an async closure into a [`ProfileSource`].
///
/// ```
/// use pingpull::pull::source_fn;
/// use pingpull::{BoxError, Profile};
///
/// let source = source_fn(|user_id: String| async move {
///     Ok::<_, BoxError>(Some(Profile::builder(user_id, "Someone").build()))
/// });
/// # let _ = source;
/// ```
pub fn source_fn<F, Fut>(load: F) -> SourceFn<F>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Profile>, BoxError>> + Send + 'static,
{
    SourceFn { load }
}

#[async_trait]
impl<F, Fut> ProfileSource for SourceFn<F>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Profile>, BoxError>> + Send + 'static,
{
    async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError> {
        (self.load)(user_id.to_owned()).await
    }
}

impl<F> fmt::Debug for SourceFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFn").finish_non_exhaustive()
    }
}

/// A ready [`ProfileSource`]: a concurrent map of profiles by id, for examples, tests and
/// small apps. Clones share the same map, so an update handler can write to it while
/// the Pull endpoint reads.
///
/// ```
/// use pingpull::Profile;
/// use pingpull::pull::InMemorySource;
///
/// let users = InMemorySource::new();
/// users.insert(Profile::builder("u1", "Ada").build());
/// users.update("u1", |p| p.display_name = "Ada L.".into());
/// assert_eq!(users.get("u1").unwrap().display_name, "Ada L.");
/// ```
#[derive(Clone, Default)]
pub struct InMemorySource {
    profiles: Arc<RwLock<HashMap<String, Profile>>>,
}

impl InMemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a profile (keyed by its id); returns the one it replaced.
    pub fn insert(&self, profile: Profile) -> Option<Profile> {
        self.write().insert(profile.id.clone(), profile)
    }

    /// Removes a user; returns its profile.
    pub fn remove(&self, user_id: &str) -> Option<Profile> {
        self.write().remove(user_id)
    }

    /// A copy of a user's profile.
    pub fn get(&self, user_id: &str) -> Option<Profile> {
        self.read().get(user_id).cloned()
    }

    /// Changes a user's profile in place; returns false if there is no such user.
    pub fn update(&self, user_id: &str, change: impl FnOnce(&mut Profile)) -> bool {
        match self.write().get_mut(user_id) {
            Some(profile) => {
                change(profile);
                true
            }
            None => false,
        }
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    // A panic in a caller's `update` closure must not make the map unusable.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Profile>> {
        self.profiles.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Profile>> {
        self.profiles.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl<P: Into<Profile>> FromIterator<P> for InMemorySource {
    fn from_iter<I: IntoIterator<Item = P>>(profiles: I) -> Self {
        let source = Self::new();
        for profile in profiles {
            source.insert(profile.into());
        }
        source
    }
}

#[async_trait]
impl ProfileSource for InMemorySource {
    async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError> {
        Ok(self.get(user_id))
    }
}

impl fmt::Debug for InMemorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemorySource")
            .field("users", &self.len())
            .finish()
    }
}
