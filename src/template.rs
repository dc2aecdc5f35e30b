//! The Pull URL template a customer registers with Livefyre (docs/protocol.md §5, §6), e.g.
//! `https://site.example/livefyre/pull?id={id}` or `https://site.example/users/{id}/livefyre`.
//!
//! The same parsed template routes requests in the Pull endpoint and builds the URLs
//! Livefyre (or the emulator, or `check`) pulls, so the two cannot disagree.
//!
//! ```
//! use pingpull::template::PullUrlTemplate;
//!
//! let template = PullUrlTemplate::parse("https://site.example/users/{id}/livefyre")?;
//! assert_eq!(
//!     template.url_for("u1", "eyJ.x.y"),
//!     "https://site.example/users/u1/livefyre?lftoken=eyJ.x.y"
//! );
//! let query = PullUrlTemplate::parse("https://site.example/pull?id={id}#top")?;
//! assert_eq!(query.url_for("u1", "t"), "https://site.example/pull?id=u1&lftoken=t");
//! # Ok::<(), pingpull::template::TemplateError>(())
//! ```

use std::fmt;

use crate::percent;

/// The placeholder the user id replaces.
pub const ID_PLACEHOLDER: &str = "{id}";

/// The query parameter that carries Livefyre's token; a template may not name it.
pub(crate) const LFTOKEN: &str = "lftoken";

/// A parsed Pull URL template: an absolute http(s) URL, or a path starting with `/`,
/// holding `{id}` exactly once, in the path or as a whole query value, and no `lftoken`
/// parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullUrlTemplate {
    raw: String,
    /// `scheme://authority`, or empty for a path-only template.
    origin: String,
    /// The path, with `{id}` where it stands; `/` if the URL had none.
    path: String,
    /// The query without `?`, with `{id}` where it stands.
    query: Option<String>,
}

/// Where the single `{id}` of a template stands, for routing requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdPosition {
    /// In path segment `index` (0 is the empty segment before the first `/`), between a
    /// literal `prefix` and `suffix` (usually both empty).
    Path {
        /// The segment index in `path.split('/')`.
        index: usize,
        /// Literal text before `{id}` in that segment.
        prefix: String,
        /// Literal text after `{id}` in that segment.
        suffix: String,
    },
    /// As the whole value of query parameter `name`.
    Query {
        /// The parameter name (decoded).
        name: String,
    },
}

impl PullUrlTemplate {
    /// Parses a template.
    ///
    /// # Errors
    ///
    /// [`TemplateError`] if the template is not an absolute http(s) URL or a `/` path,
    /// holds characters that cannot stand in a URL, lacks `{id}`, has it more than once,
    /// in the host or as part of a query value, or names the `lftoken` parameter.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        if let Some(bad) = template.chars().find(|c| {
            !c.is_ascii_graphic() || matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '|')
        }) {
            return Err(TemplateError::InvalidCharacter(bad));
        }
        if !template.contains(ID_PLACEHOLDER) {
            return Err(TemplateError::MissingId);
        }
        // The fragment never reaches the server.
        let without_fragment = template.split('#').next().unwrap_or_default();
        let (origin, rest) = split_origin(without_fragment)?;
        if origin.contains(ID_PLACEHOLDER) {
            return Err(TemplateError::IdInOrigin);
        }
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        if !(path.contains(ID_PLACEHOLDER) || query.is_some_and(|q| q.contains(ID_PLACEHOLDER))) {
            // `{id}` stood only in the fragment.
            return Err(TemplateError::MissingId);
        }
        let parsed = Self {
            raw: template.to_owned(),
            origin: origin.to_owned(),
            path: path.to_owned(),
            query: query.filter(|q| !q.is_empty()).map(str::to_owned),
        };
        parsed.check_pullable()?;
        Ok(parsed)
    }

    /// The one rule every template obeys, wherever it is given (the Pull layer, the
    /// client's registration, `pingpull register`, the emulator, `check`): `{id}` exactly
    /// once, in the path or as a whole query value, and no `lftoken` parameter of its own.
    /// A template breaking it registers fine but every pull of it fails (docs/protocol.md §5).
    fn check_pullable(&self) -> Result<(), TemplateError> {
        self.id_position()?;
        let names_lftoken = self.query.as_deref().is_some_and(|query| {
            query.split('&').any(|pair| {
                let name = pair.split_once('=').map_or(pair, |(name, _)| name);
                percent::decode(name).is_ok_and(|name| name == LFTOKEN)
            })
        });
        if names_lftoken {
            return Err(TemplateError::ReservedParameter);
        }
        Ok(())
    }

    /// Parses a template that must be an absolute http(s) URL: what is registered with
    /// Livefyre and pulled by the emulator and `check` (a path alone names no server).
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse), but [`TemplateError::NotAbsoluteUrl`] for a path-only
    /// template or anything else that is not an absolute http(s) URL.
    pub fn parse_absolute(template: &str) -> Result<Self, TemplateError> {
        let not_url = || TemplateError::NotAbsoluteUrl(template.to_owned());
        match Self::parse(template) {
            Ok(parsed) if parsed.origin.is_empty() => Err(not_url()),
            Err(TemplateError::NotAbsolute) => Err(not_url()),
            parsed => parsed,
        }
    }

    /// The template as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The path part, with `{id}` where it stands.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query part (without `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The pull URL for `user_id`: every `{id}` replaced by the percent-encoded id,
    /// `lftoken` appended with `&` when there is a query and `?` otherwise, no fragment.
    pub fn url_for(&self, user_id: &str, lftoken: &str) -> String {
        let mut url = self.url_for_id(user_id);
        url.push(if self.query.is_some() { '&' } else { '?' });
        url.push_str("lftoken=");
        url.push_str(&percent::encode(lftoken));
        url
    }

    /// The URL for `user_id` without a token: every `{id}` replaced by the
    /// percent-encoded id, no fragment.
    pub fn url_for_id(&self, user_id: &str) -> String {
        let id = percent::encode(user_id);
        let mut url = String::with_capacity(self.raw.len() + 16);
        url.push_str(&self.origin);
        url.push_str(&self.path.replace(ID_PLACEHOLDER, &id));
        if let Some(query) = &self.query {
            url.push('?');
            url.push_str(&query.replace(ID_PLACEHOLDER, &id));
        }
        url
    }

    /// Where the template's one `{id}` stands.
    ///
    /// # Errors
    ///
    /// None for a parsed template, which [`parse`](Self::parse) checked; the `Result` stays
    /// for callers written when it could fail ([`TemplateError::ManyIds`] for `{id}` more
    /// than once, [`TemplateError::IdNotWholeQueryValue`] for `?id=user-{id}`).
    pub fn id_position(&self) -> Result<IdPosition, TemplateError> {
        let in_path = self.path.matches(ID_PLACEHOLDER).count();
        let in_query = self
            .query
            .as_deref()
            .map_or(0, |q| q.matches(ID_PLACEHOLDER).count());
        if in_path + in_query != 1 {
            return Err(TemplateError::ManyIds);
        }
        if in_path == 1 {
            let (index, segment) = self
                .path
                .split('/')
                .enumerate()
                .find(|(_, segment)| segment.contains(ID_PLACEHOLDER))
                .ok_or(TemplateError::MissingId)?;
            let (prefix, suffix) = segment
                .split_once(ID_PLACEHOLDER)
                .ok_or(TemplateError::MissingId)?;
            return Ok(IdPosition::Path {
                index,
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            });
        }
        let query = self.query.as_deref().unwrap_or_default();
        for pair in query.split('&') {
            if let Some((name, value)) = pair.split_once('=')
                && value == ID_PLACEHOLDER
            {
                let name =
                    percent::decode(name).map_err(|_| TemplateError::IdNotWholeQueryValue)?;
                return Ok(IdPosition::Query {
                    name: name.into_owned(),
                });
            }
        }
        Err(TemplateError::IdNotWholeQueryValue)
    }
}

impl fmt::Display for PullUrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Whether `template` is a path (`/...`, not the scheme-relative `//host/...`).
fn is_path(template: &str) -> bool {
    template.starts_with('/') && !template.starts_with("//")
}

/// Splits `http(s)://authority` from the rest; a template starting with `/` has no origin.
fn split_origin(template: &str) -> Result<(&str, &str), TemplateError> {
    if is_path(template) {
        return Ok(("", template));
    }
    let Some((scheme, after)) = template.split_once("://") else {
        return Err(TemplateError::NotAbsolute);
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(TemplateError::UnsupportedScheme);
    }
    let authority_len = after.find(['/', '?']).unwrap_or(after.len());
    if authority_len == 0 {
        return Err(TemplateError::NotAbsolute);
    }
    Ok(template.split_at(scheme.len() + 3 + authority_len))
}

/// Why a Pull URL template was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template does not contain `{id}` (outside the fragment).
    MissingId,
    /// `{id}` appears more than once; the Pull endpoint needs exactly one.
    ManyIds,
    /// `{id}` stands in the scheme or host.
    IdInOrigin,
    /// `{id}` stands in the query but not as a whole parameter value.
    IdNotWholeQueryValue,
    /// Neither `http(s)://host/...` nor a path starting with `/`.
    NotAbsolute,
    /// Where an absolute http(s) URL is needed (registration, the emulator, `check`:
    /// Livefyre needs a host to pull from), the template given, which is a path or
    /// otherwise not one.
    NotAbsoluteUrl(String),
    /// A scheme other than http or https.
    UnsupportedScheme,
    /// A space, control character or other character that cannot stand in a URL.
    InvalidCharacter(char),
    /// The template names a query parameter the protocol reserves (`lftoken`).
    ReservedParameter,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingId => f.write_str("pull URL template must contain `{id}`"),
            Self::ManyIds => f.write_str("pull URL template must contain `{id}` exactly once"),
            Self::IdInOrigin => f.write_str("`{id}` may stand in the path or query, not the host"),
            Self::IdNotWholeQueryValue => {
                f.write_str("`{id}` in the query must be a whole parameter value, as in `?id={id}`")
            }
            Self::NotAbsolute => {
                f.write_str("pull URL template must be an absolute http(s) URL or start with `/`")
            }
            Self::NotAbsoluteUrl(template) if is_path(template) => write!(
                f,
                "`{template}` is a path; Livefyre needs an absolute http(s) URL to pull from, such as https://www.example.com{template}"
            ),
            Self::NotAbsoluteUrl(template) => write!(
                f,
                "`{template}` is not an absolute http(s) URL; Livefyre needs one to pull from, such as https://www.example.com/livefyre/pull?id={{id}}"
            ),
            Self::UnsupportedScheme => f.write_str("pull URL template must use http or https"),
            Self::InvalidCharacter(c) => {
                write!(
                    f,
                    "pull URL template holds {c:?}, which cannot stand in a URL"
                )
            }
            Self::ReservedParameter => f.write_str(
                "`lftoken` is reserved for Livefyre's token; use another parameter for `{id}`",
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_pull_urls_as_protocol_section_6_decides() {
        let cases = [
            (
                "https://site.example/some_path/?id={id}",
                "u1",
                "https://site.example/some_path/?id=u1&lftoken=T",
            ),
            (
                "https://site.example/users/{id}/profile",
                "u.1",
                "https://site.example/users/u.1/profile?lftoken=T",
            ),
            (
                "http://site.example:8080/p?a=1&id={id}#frag",
                "u-1",
                "http://site.example:8080/p?a=1&id=u-1&lftoken=T",
            ),
            ("/u/{id}?v=1", "x_y", "/u/x_y?v=1&lftoken=T"),
            (
                "https://site.example?id={id}",
                "u1",
                "https://site.example/?id=u1&lftoken=T",
            ),
        ];
        for (template, id, url) in cases {
            assert_eq!(
                PullUrlTemplate::parse(template).unwrap().url_for(id, "T"),
                url,
                "{template}"
            );
        }
    }

    #[test]
    fn percent_encodes_the_id_for_its_position() {
        let path = PullUrlTemplate::parse("https://s.example/u/{id}").unwrap();
        assert_eq!(
            path.url_for("a/b c&d", "T"),
            "https://s.example/u/a%2Fb%20c%26d?lftoken=T"
        );
        let query = PullUrlTemplate::parse("https://s.example/u?q={id}").unwrap();
        assert_eq!(
            query.url_for("a/b c&d", "T"),
            "https://s.example/u?q=a%2Fb%20c%26d&lftoken=T"
        );
    }

    #[test]
    fn finds_the_id_position() {
        let path = PullUrlTemplate::parse("https://s.example/users/{id}.json").unwrap();
        assert_eq!(
            path.id_position(),
            Ok(IdPosition::Path {
                index: 2,
                prefix: String::new(),
                suffix: ".json".into()
            })
        );
        let query =
            PullUrlTemplate::parse("https://s.example/pull?format=json&user%5Fid={id}").unwrap();
        assert_eq!(
            query.id_position(),
            Ok(IdPosition::Query {
                name: "user_id".into()
            })
        );
    }

    #[test]
    fn refuses_bad_templates() {
        let cases = [
            ("https://s.example/pull", TemplateError::MissingId),
            ("https://s.example/pull#{id}", TemplateError::MissingId),
            ("https://{id}.s.example/pull", TemplateError::IdInOrigin),
            ("s.example/{id}", TemplateError::NotAbsolute),
            ("//s.example/{id}", TemplateError::NotAbsolute),
            ("https:///{id}", TemplateError::NotAbsolute),
            ("ftp://s.example/{id}", TemplateError::UnsupportedScheme),
            (
                "https://s.example/{id} x",
                TemplateError::InvalidCharacter(' '),
            ),
            (
                "https://s.example/é/{id}",
                TemplateError::InvalidCharacter('é'),
            ),
        ];
        for (template, error) in cases {
            assert_eq!(PullUrlTemplate::parse(template), Err(error), "{template}");
        }
    }

    #[test]
    fn says_a_path_is_not_the_absolute_url_registration_needs() {
        let path = "/livefyre/pull?id={id}";
        assert!(PullUrlTemplate::parse(path).is_ok());
        let error = PullUrlTemplate::parse_absolute(path).unwrap_err();
        assert_eq!(error, TemplateError::NotAbsoluteUrl(path.to_owned()));
        assert_eq!(
            error.to_string(),
            "`/livefyre/pull?id={id}` is a path; Livefyre needs an absolute http(s) URL to pull from, such as https://www.example.com/livefyre/pull?id={id}"
        );
        let hostless = PullUrlTemplate::parse_absolute("www.example.com/pull?id={id}").unwrap_err();
        assert_eq!(
            hostless.to_string(),
            "`www.example.com/pull?id={id}` is not an absolute http(s) URL; Livefyre needs one to pull from, such as https://www.example.com/livefyre/pull?id={id}"
        );
        // The Pull layer's parser still explains both forms it takes.
        assert_eq!(
            PullUrlTemplate::parse("www.example.com/pull?id={id}")
                .unwrap_err()
                .to_string(),
            "pull URL template must be an absolute http(s) URL or start with `/`"
        );
    }

    #[test]
    fn refuses_templates_whose_every_pull_would_fail() {
        let cases = [
            ("https://s.example/{id}?id={id}", TemplateError::ManyIds),
            (
                "https://s.example/p?id={id}&again={id}",
                TemplateError::ManyIds,
            ),
            (
                "https://s.example/users/{id}/x/{id}",
                TemplateError::ManyIds,
            ),
            (
                "https://s.example/p?id=user-{id}",
                TemplateError::IdNotWholeQueryValue,
            ),
            (
                "https://s.example/p?id={id}&lftoken={id}",
                TemplateError::ManyIds,
            ),
            (
                "https://s.example/p?lftoken={id}",
                TemplateError::ReservedParameter,
            ),
            (
                "https://s.example/u/{id}?lf%74oken=x",
                TemplateError::ReservedParameter,
            ),
            ("/p?id={id}&lftoken", TemplateError::ReservedParameter),
        ];
        for (template, error) in cases {
            assert_eq!(
                PullUrlTemplate::parse(template),
                Err(error.clone()),
                "{template}"
            );
            if template.starts_with("https:") {
                assert_eq!(
                    PullUrlTemplate::parse_absolute(template),
                    Err(error),
                    "{template}"
                );
            }
        }
    }
}
