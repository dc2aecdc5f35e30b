//! Paging of `GET /profiles` and `GET /events`: `limit` (how many, with a default and a
//! maximum) and `cursor` (where the previous page ended, as its `Next-Cursor` header
//! said). Answers stay small however many users are kept, and a walk from cursor to
//! cursor is stable while pings arrive.

use http::HeaderValue;
use http::header::LINK;

use super::kept::EVENTS_KEPT;
use crate::percent;
use bytes::Bytes;
use http::Response;
use http_body_util::Full;

/// Items per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 1000;

/// The largest `limit` of `GET /profiles` (about 10 MB of JSON at most).
pub(crate) const MAX_PROFILES_LIMIT: usize = 10_000;

/// The header that carries the cursor of the next page.
const NEXT_CURSOR: &str = "next-cursor";

/// `limit` and the id after which the page starts, from `GET /profiles`' query.
pub(super) fn users_query(query: Option<&str>) -> Result<(usize, Option<String>), String> {
    let limit = limit(query, MAX_PROFILES_LIMIT)?;
    let after = param(query, "cursor")?
        .map(|cursor| decode_user_cursor(&cursor).ok_or_else(|| not_ours(&cursor)))
        .transpose()?;
    Ok((limit, after))
}

/// `limit` and the sequence number after which the page starts (0: from the oldest
/// event kept), from `GET /events`' query.
pub(super) fn events_query(query: Option<&str>) -> Result<(usize, u64), String> {
    let limit = limit(query, EVENTS_KEPT)?;
    let after = match param(query, "cursor")? {
        None => 0,
        Some(cursor) => cursor.parse::<u64>().map_err(|_| not_ours(&cursor))?,
    };
    Ok((limit, after))
}

/// The cursor after user `id`: its id in hex, so any id fits in a header and a URL.
pub(super) fn user_cursor(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_user_cursor(cursor: &str) -> Option<String> {
    if cursor.is_empty() || !cursor.len().is_multiple_of(2) || !cursor.is_ascii() {
        return None;
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&cursor[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// Adds `Next-Cursor: C` and, when `more` items wait after this page, a
/// `Link: <path?limit=N&cursor=C>; rel="next"` header.
pub(super) fn with_next(
    mut response: Response<Full<Bytes>>,
    path: &str,
    limit: usize,
    next: Option<String>,
    more: bool,
) -> Response<Full<Bytes>> {
    let Some(next) = next else {
        return response;
    };
    let headers = response.headers_mut();
    // Cursors are hex or digits: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&next) {
        headers.insert(NEXT_CURSOR, value);
    }
    if more {
        let link = format!("<{path}?limit={limit}&cursor={next}>; rel=\"next\"");
        if let Ok(value) = HeaderValue::from_str(&link) {
            headers.insert(LINK, value);
        }
    }
    response
}

fn limit(query: Option<&str>, max: usize) -> Result<usize, String> {
    let Some(value) = param(query, "limit")? else {
        return Ok(DEFAULT_LIMIT.min(max));
    };
    match value.parse::<usize>() {
        Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
        _ => Err(format!(
            "limit must be a whole number from 1 to {max}: got `{}`",
            shorten(&value)
        )),
    }
}

/// The first `name` parameter of the query, decoded; an error if it cannot be decoded.
fn param(query: Option<&str>, name: &str) -> Result<Option<String>, String> {
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != name {
            continue;
        }
        return percent::decode(&value.replace('+', " "))
            .map(|v| Some(v.into_owned()))
            .map_err(|_| format!("{name} is not percent-encoded properly"));
    }
    Ok(None)
}

fn not_ours(cursor: &str) -> String {
    format!(
        "cursor `{}` is not one this emulator gave: pass back a Next-Cursor header's value as it is",
        shorten(cursor)
    )
}

/// At most 40 characters of what a client sent, for an error message.
fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_cursors_round_trip_any_id() {
        for id in ["u1", "ü ö/?&=", "a%20b"] {
            assert_eq!(decode_user_cursor(&user_cursor(id)).as_deref(), Some(id));
        }
        for bad in ["", "abc", "zz", "ff", "é1"] {
            assert_eq!(decode_user_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn reads_limit_and_cursor_with_reasons_for_bad_ones() {
        assert_eq!(users_query(None), Ok((DEFAULT_LIMIT, None)));
        assert_eq!(
            users_query(Some("limit=5&cursor=7531")),
            Ok((5, Some("u1".to_owned())))
        );
        assert_eq!(events_query(Some("cursor=12")), Ok((DEFAULT_LIMIT, 12)));
        for bad in [
            "limit=0",
            "limit=x",
            "limit=10001",
            "limit=",
            "cursor=xyz",
            "limit=%zz",
        ] {
            assert!(users_query(Some(bad)).is_err(), "{bad}");
        }
        let error = events_query(Some("limit=1001")).unwrap_err();
        assert_eq!(
            error,
            "limit must be a whole number from 1 to 1000: got `1001`"
        );
        assert!(events_query(Some("cursor=-1")).is_err());
    }
}
