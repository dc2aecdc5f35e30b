//! Where the Pull endpoint gets profiles: the customer's [`ProfileSource`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;

use super::prepared::{Loaded, PreparedProfile, ProfileRefused};
use crate::BoxError;
use crate::Profile;

/// Loads a user's profile for the Pull endpoint.
///
/// Return `Ok(Some(profile))` when the user exists, `Ok(None)` when it does not (the
/// endpoint answers 404), and `Err` when the profile cannot be loaded now (503 with
/// `Retry-After`, so Livefyre tries again later). The id has already been validated.
///
/// The endpoint calls [`load_for_pull`](Self::load_for_pull), which by default calls
/// `load` and validates, renders and signs the profile on every pull. A source that keeps
/// its profiles between pulls may instead override `load_for_pull` and return a
/// [`PreparedProfile`] it made once per change (as [`InMemorySource`] does), so a pull
/// costs a pointer copy.
///
/// ```
/// use pingpull::pull::ProfileSource;
/// use pingpull::{BoxError, Profile};
///
/// struct Users;
///
/// #[pingpull::async_trait]
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

    /// Loads what the Pull endpoint sends for `user_id`: by default the profile from
    /// [`load`](Self::load), which the endpoint validates, renders and signs.
    ///
    /// Override it to return a [`PreparedProfile`] kept between pulls (validated and
    /// rendered when the profile changed); the endpoint then sends its bytes as they are
    /// and signs them once per network key. Keep `load` answering the same profiles.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// use pingpull::pull::{Loaded, PreparedProfile, ProfileSource};
    /// use pingpull::{BoxError, Profile};
    ///
    /// /// One user, prepared once.
    /// struct Founder(Arc<PreparedProfile>);
    ///
    /// #[pingpull::async_trait]
    /// impl ProfileSource for Founder {
    ///     async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError> {
    ///         Ok((user_id == self.0.profile().id).then(|| Profile::clone(self.0.profile())))
    ///     }
    ///
    ///     async fn load_for_pull(&self, user_id: &str) -> Result<Option<Loaded>, BoxError> {
    ///         Ok((user_id == self.0.profile().id).then(|| Loaded::Prepared(self.0.clone())))
    ///     }
    /// }
    ///
    /// let founder = PreparedProfile::new(Profile::builder("u1", "Ada").build())?;
    /// let source = Founder(Arc::new(founder));
    /// # let _ = source;
    /// # Ok::<(), pingpull::pull::ProfileRefused>(())
    /// ```
    async fn load_for_pull(&self, user_id: &str) -> Result<Option<Loaded>, BoxError> {
        Ok(self.load(user_id).await?.map(Loaded::Profile))
    }
}

#[async_trait]
impl<T: ProfileSource + ?Sized> ProfileSource for Arc<T> {
    async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError> {
        (**self).load(user_id).await
    }

    async fn load_for_pull(&self, user_id: &str) -> Result<Option<Loaded>, BoxError> {
        (**self).load_for_pull(user_id).await
    }
}

#[async_trait]
impl<T: ProfileSource + ?Sized> ProfileSource for Box<T> {
    async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError> {
        (**self).load(user_id).await
    }

    async fn load_for_pull(&self, user_id: &str) -> Result<Option<Loaded>, BoxError> {
        (**self).load_for_pull(user_id).await
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
/// A profile is validated when it is inserted or updated (an invalid one is refused with
/// its violations) and rendered then, so a pull sends the kept bytes without copying the
/// profile or checking it again; the signature is made on the first pull after a change.
///
/// ```
/// use pingpull::Profile;
/// use pingpull::pull::InMemorySource;
///
/// let users = InMemorySource::new();
/// users.insert(Profile::builder("u1", "Ada").build())?;
/// users.update("u1", |p| p.display_name = "Ada L.".into())?;
/// assert_eq!(users.get("u1").unwrap().display_name, "Ada L.");
///
/// // An invalid profile is refused, and the one kept is unchanged.
/// let refused = users.update("u1", |p| p.display_name.clear()).unwrap_err();
/// assert!(refused.violations().contains_field("display_name"));
/// assert_eq!(users.get_shared("u1").unwrap().display_name, "Ada L.");
/// # Ok::<(), pingpull::pull::ProfileRefused>(())
/// ```
#[derive(Clone, Default)]
pub struct InMemorySource {
    profiles: Arc<RwLock<HashMap<String, Arc<PreparedProfile>>>>,
}

impl InMemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// A source holding `profiles`, all valid.
    ///
    /// # Errors
    ///
    /// [`ProfileRefused`] for the first invalid profile.
    pub fn try_from_profiles(
        profiles: impl IntoIterator<Item = Profile>,
    ) -> Result<Self, ProfileRefused> {
        let source = Self::new();
        for profile in profiles {
            source.insert(profile)?;
        }
        Ok(source)
    }

    /// Validates and adds a profile, or replaces the one with its id; returns the one it
    /// replaced.
    ///
    /// # Errors
    ///
    /// [`ProfileRefused`] with every violation if the profile is invalid; the source is
    /// unchanged.
    pub fn insert(&self, profile: Profile) -> Result<Option<Arc<Profile>>, ProfileRefused> {
        // Rendered before taking the lock, so pulls never wait for it.
        let prepared = Arc::new(PreparedProfile::new(profile)?);
        let id = prepared.profile().id.clone();
        let replaced = self.write().insert(id, prepared);
        Ok(replaced.map(|old| old.profile().clone()))
    }

    /// Removes a user; returns its profile.
    pub fn remove(&self, user_id: &str) -> Option<Arc<Profile>> {
        self.write()
            .remove(user_id)
            .map(|old| old.profile().clone())
    }

    /// A copy of a user's profile.
    pub fn get(&self, user_id: &str) -> Option<Profile> {
        self.get_shared(user_id).map(Arc::unwrap_or_clone)
    }

    /// A user's profile, shared rather than copied.
    pub fn get_shared(&self, user_id: &str) -> Option<Arc<Profile>> {
        self.read()
            .get(user_id)
            .map(|prepared| prepared.profile().clone())
    }

    /// Changes a user's profile; returns `Ok(false)` if there is no such user.
    ///
    /// # Errors
    ///
    /// [`ProfileRefused`] if the changed profile is invalid; the profile kept is
    /// unchanged.
    pub fn update(
        &self,
        user_id: &str,
        change: impl FnOnce(&mut Profile),
    ) -> Result<bool, ProfileRefused> {
        // Held across the change, so concurrent updates of a user never lose one another.
        let mut profiles = self.write();
        let Some(entry) = profiles.get_mut(user_id) else {
            return Ok(false);
        };
        let mut profile = Profile::clone(entry.profile());
        change(&mut profile);
        *entry = Arc::new(PreparedProfile::new(profile)?);
        Ok(true)
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
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Arc<PreparedProfile>>> {
        self.profiles.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Arc<PreparedProfile>>> {
        self.profiles.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Collects profiles known to be valid (examples, tests, fixed sets). A profile that fails
/// validation is left out and logged at ERROR (target `pingpull::pull`) with its
/// violations; use [`InMemorySource::try_from_profiles`] to get the refusal instead.
impl<P: Into<Profile>> FromIterator<P> for InMemorySource {
    fn from_iter<I: IntoIterator<Item = P>>(profiles: I) -> Self {
        let source = Self::new();
        for profile in profiles {
            if let Err(refused) = source.insert(profile.into()) {
                tracing::error!(target: "pingpull::pull", error = %refused, "profile left out of the in-memory source");
            }
        }
        source
    }
}

#[async_trait]
impl ProfileSource for InMemorySource {
    async fn load(&self, user_id: &str) -> Result<Option<Profile>, BoxError> {
        Ok(self.get(user_id))
    }

    async fn load_for_pull(&self, user_id: &str) -> Result<Option<Loaded>, BoxError> {
        Ok(self.read().get(user_id).cloned().map(Loaded::Prepared))
    }
}

impl fmt::Debug for InMemorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemorySource")
            .field("users", &self.len())
            .finish()
    }
}
