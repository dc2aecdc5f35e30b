//! Borrowed query-string parsing: no allocation unless a name is percent-encoded.

use crate::percent;

/// The `name=value` pairs of a query string.
pub(crate) struct QueryPairs<'a> {
    query: &'a str,
}

impl<'a> QueryPairs<'a> {
    pub(crate) fn new(query: &'a str) -> Self {
        Self { query }
    }

    /// The raw value of the one parameter called `name`: `Ok(None)` if absent, `Err` if
    /// given more than once. Names are compared after strict percent-decoding, so
    /// `lf%74oken` counts as `lftoken`; a name that does not decode matches nothing.
    pub(crate) fn only(&self, name: &str) -> Result<Option<&'a str>, ()> {
        let mut found = None;
        for pair in self.query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let matches = if key.contains('%') {
                percent::decode(key).is_ok_and(|decoded| decoded == name)
            } else {
                key == name
            };
            if matches {
                if found.is_some() {
                    return Err(());
                }
                found = Some(value);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_one_value() {
        let q = QueryPairs::new("id=u1&lftoken=abc&x");
        assert_eq!(q.only("lftoken"), Ok(Some("abc")));
        assert_eq!(q.only("id"), Ok(Some("u1")));
        assert_eq!(q.only("x"), Ok(Some("")));
        assert_eq!(q.only("missing"), Ok(None));
    }

    #[test]
    fn a_repeated_name_is_an_error_even_when_encoded() {
        assert_eq!(
            QueryPairs::new("lftoken=a&lftoken=b").only("lftoken"),
            Err(())
        );
        assert_eq!(
            QueryPairs::new("lftoken=a&lf%74oken=b").only("lftoken"),
            Err(())
        );
        assert_eq!(
            QueryPairs::new("lftoken=a&lf%zzoken=b").only("lftoken"),
            Ok(Some("a"))
        );
    }
}
