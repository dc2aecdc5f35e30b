//! `application/x-www-form-urlencoded` reading for the emulator, which accepts its
//! parameters in the query or the body, whatever the Content-Type says.

use crate::percent;

/// The value of the first `name` parameter in a query or form body, decoded (`+` is a
/// space); `None` if absent or undecodable.
pub(crate) fn field(encoded: &str, name: &str) -> Option<String> {
    encoded.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = key.replace('+', " ");
        if percent::decode(&key).ok()? != name {
            return None;
        }
        percent::decode(&value.replace('+', " "))
            .ok()
            .map(|v| v.into_owned())
    })
}

/// `name` from the query first, then the body.
pub(crate) fn from_query_or_body(query: Option<&str>, body: &str, name: &str) -> Option<String> {
    query
        .and_then(|q| field(q, name))
        .or_else(|| field(body, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_encoded_fields() {
        let body =
            "actor_token=a.b.c&pull_profile_url=https%3A%2F%2Fs.example%2Fu%2F%7Bid%7D%3Fx%3D1+2";
        assert_eq!(field(body, "actor_token").as_deref(), Some("a.b.c"));
        assert_eq!(
            field(body, "pull_profile_url").as_deref(),
            Some("https://s.example/u/{id}?x=1 2")
        );
        assert_eq!(field(body, "missing"), None);
        assert_eq!(
            from_query_or_body(Some("lftoken=q"), "lftoken=b", "lftoken").as_deref(),
            Some("q")
        );
        assert_eq!(
            from_query_or_body(None, "lftoken=b", "lftoken").as_deref(),
            Some("b")
        );
    }
}
