//! `GET /studio/users`: remote profiles as an HTML table, in the spirit of Livefyre
//! Studio > Users. Plain HTML, no JavaScript; `?failed=1` shows only users whose last
//! pull failed, `?page=N` pages through them [`PAGE_SIZE`] at a time, so a page stays
//! small with thousands of users even though it refreshes every 5 s.

use std::fmt::Write as _;

use super::RemoteUser;
use super::form;
use super::state::EmulatorState;

/// Users per page.
pub(super) const PAGE_SIZE: usize = 100;

/// What the query asks to see.
pub(super) struct View {
    failed_only: bool,
    /// From 1.
    page: usize,
}

impl View {
    /// `failed=1` and `page=N` from the query; anything unreadable means the default.
    pub(super) fn from_query(query: Option<&str>) -> Self {
        let query = query.unwrap_or("");
        let failed_only = form::field(query, "failed").is_some_and(|v| v == "1");
        let page = form::field(query, "page")
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|&p| p >= 1)
            .unwrap_or(1);
        Self { failed_only, page }
    }

    /// A link to `page` of the same selection.
    fn href(&self, page: usize) -> String {
        let failed = if self.failed_only {
            "failed=1&amp;"
        } else {
            ""
        };
        format!("?{failed}page={page}")
    }
}

/// What one page shows, copied out of the state so the page renders without the lock.
pub(super) struct Selection {
    users: Vec<RemoteUser>,
    matched: usize,
    total: usize,
    max_users: usize,
    evicted: u64,
    pull_url: Option<String>,
}

/// The users `view` asks for, in id order: only the page's users are copied; the others
/// are counted as they go by.
pub(super) fn select(state: &EmulatorState, view: &View) -> Selection {
    let start = (view.page - 1).saturating_mul(PAGE_SIZE);
    let mut users = Vec::with_capacity(PAGE_SIZE);
    let mut matched = 0;
    for user in state
        .users
        .iter()
        .filter(|user| !view.failed_only || user.failing())
    {
        if matched >= start && users.len() < PAGE_SIZE {
            users.push(user.clone());
        }
        matched += 1;
    }
    Selection {
        users,
        matched,
        total: state.users.len(),
        max_users: state.users.max_users(),
        evicted: state.users.evicted(),
        pull_url: state.pull_url.as_ref().map(|t| t.as_str().to_owned()),
    }
}

pub(super) fn users_page(network: &str, selection: &Selection, view: &View) -> String {
    let mut page = String::with_capacity(4096 + selection.users.len() * 768);
    head(&mut page, network, selection, view);
    for user in &selection.users {
        row(&mut page, user);
    }
    page.push_str("</tbody></table>");
    pager(&mut page, selection, view);
    page.push_str("</body></html>\n");
    page
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
    table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.5em;border-bottom:1px solid #ddd;vertical-align:top}\
    img{width:40px;height:40px;border-radius:50%;object-fit:cover;background:#eee}\
    nav a,nav strong{margin-right:1em}.ok{color:#127a12}.failed{color:#b00020}.muted{color:#777}";

fn head(page: &mut String, network: &str, selection: &Selection, view: &View) {
    let pull_url = selection.pull_url.as_deref().map_or_else(
        || "<span class=\"failed\">none registered</span>".to_owned(),
        |url| format!("<code>{}</code>", escape(url)),
    );
    let (all, failed) = if view.failed_only {
        (
            "<a href=\"?page=1\">All users</a>",
            "<strong>Failed only</strong>",
        )
    } else {
        (
            "<strong>All users</strong>",
            "<a href=\"?failed=1&amp;page=1\">Failed only</a>",
        )
    };
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\">\
         <title>Users · {network} · pingpull emulator</title><style>{STYLE}</style></head><body>\
         <h1>Users</h1><p>Network <strong>{network}</strong> · Pull URL {pull_url}</p>\
         <p class=\"muted\">{total} user(s) · remote profiles as Livefyre holds them · \
         at most {max_users} kept, {evicted} evicted (least recently pinged first)</p>\
         <nav>{all}{failed}</nav>\
         <table><thead><tr><th></th><th>Display name</th><th>User ID</th><th>Pings</th>\
         <th>Pull attempts</th><th>Last sync</th><th>Signature</th><th>Last pull</th>\
         <th>Latest failure</th></tr></thead><tbody>",
        network = escape(network),
        total = selection.total,
        max_users = selection.max_users,
        evicted = selection.evicted,
    );
}

fn row(page: &mut String, user: &RemoteUser) {
    let profile = user.profile.as_ref();
    let avatar = match profile.and_then(|p| p.image_url.as_deref()) {
        Some(url) => format!("<img src=\"{}\" alt=\"\">", escape(url)),
        None => "<img alt=\"\">".to_owned(),
    };
    let name = match (profile, &user.last_failure) {
        (Some(profile), _) => escape(&profile.display_name),
        // Never pulled successfully: the name cell says why rather than "not yet".
        (None, Some(failure)) => format!(
            "<span class=\"failed\">(pull failed: {})</span>",
            escape(failure.error.as_deref().unwrap_or("unknown error"))
        ),
        (None, None) => "<span class=\"muted\">(not pulled yet)</span>".to_owned(),
    };
    let last_sync = user
        .updated_at
        .map_or_else(|| "never".to_owned(), format_time);
    let signature = match (profile, user.signature_verified) {
        (None, _) => "<span class=\"muted\">–</span>",
        (Some(_), Some(true)) => "<span class=\"ok\">verified</span>",
        (Some(_), Some(false)) => "<span class=\"failed\">did not verify</span>",
        (Some(_), None) => "<span class=\"muted\">unsigned</span>",
    };
    let status = match &user.last_pull {
        None => "<span class=\"muted\">waiting for a pull</span>".to_owned(),
        Some(pull) if pull.ok => format!(
            "<span class=\"ok\">synced (HTTP {})</span>",
            pull.status.unwrap_or(200)
        ),
        Some(pull) => format!("<span class=\"failed\">failed{}</span>", http_status(pull)),
    };
    let failure = user.last_failure.as_ref().map_or_else(
        || "<span class=\"muted\">none</span>".to_owned(),
        |pull| {
            format!(
                "{}{}: <span class=\"failed\">{}</span>",
                format_time(pull.at),
                http_status(pull),
                escape(pull.error.as_deref().unwrap_or("unknown error"))
            )
        },
    );
    let _ = write!(
        page,
        "<tr><td>{avatar}</td><td>{name}</td><td><code>{id}</code></td><td>{pings}</td>\
         <td>{attempts}</td><td>{last_sync}</td><td>{signature}</td><td>{status}</td><td>{failure}</td></tr>",
        id = escape(&user.id),
        pings = user.pings,
        attempts = user.pull_attempts,
    );
}

/// ` (HTTP 404)`, or nothing if the pull got no answer.
fn http_status(pull: &super::PullRecord) -> String {
    pull.status
        .map(|s| format!(" (HTTP {s})"))
        .unwrap_or_default()
}

/// "Users 101–200 of 250" and links to the previous and next pages.
fn pager(page: &mut String, selection: &Selection, view: &View) {
    let pages = selection.matched.div_ceil(PAGE_SIZE).max(1);
    let first = (view.page - 1).saturating_mul(PAGE_SIZE);
    let shown = if selection.users.is_empty() {
        format!("No users on page {}", view.page)
    } else {
        format!(
            "Users {}–{} of {}",
            first + 1,
            first + selection.users.len(),
            selection.matched
        )
    };
    let _ = write!(
        page,
        "<nav class=\"pages\"><span>{shown} · page {} of {pages}</span>",
        view.page
    );
    if view.page > 1 {
        let previous = (view.page - 1).min(pages);
        let _ = write!(page, "<a href=\"{}\">← Previous</a>", view.href(previous));
    }
    if view.page < pages {
        let _ = write!(page, "<a href=\"{}\">Next →</a>", view.href(view.page + 1));
    }
    page.push_str("</nav>");
}

/// HTML-escapes text for element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Unix seconds as an HTTP date (`Tue, 14 Nov 2023 22:13:20 GMT`).
fn format_time(unix: f64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(unix.max(0.0));
    httpdate::fmt_http_date(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Profile;
    use crate::emulator::PullRecord;

    fn failed_pull(at: f64, error: &str) -> PullRecord {
        PullRecord {
            at,
            status: Some(404),
            ok: false,
            error: Some(error.into()),
            signature_verified: None,
            attempts: 1,
        }
    }

    fn page_of(state: &EmulatorState, query: &str) -> String {
        let view = View::from_query(Some(query));
        users_page("example.fyre.co", &select(state, &view), &view)
    }

    #[test]
    fn escapes_what_users_control() {
        let mut state = EmulatorState::new(10);
        let user = state.users.pinged("u1");
        user.profile = Some(
            Profile::builder("u1", "<script>alert(1)</script>")
                .image_url("https://x.example/a.png\"onerror=\"x")
                .build(),
        );
        user.updated_at = Some(1_700_000_000.0);
        user.last_failure = Some(failed_pull(1_700_000_000.0, "<b>bad</b> & worse"));
        let page = page_of(&state, "");
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("a.png&quot;onerror=&quot;x"));
        assert!(page.contains("&lt;b&gt;bad&lt;/b&gt; &amp; worse"));
        assert!(page.contains("Tue, 14 Nov 2023 22:13:20 GMT"));
    }

    #[test]
    fn keeps_the_latest_failure_apart_from_the_last_sync() {
        let mut state = EmulatorState::new(10);
        state.record_pull("u1", failed_pull(1_700_000_000.0, "gone"), None);
        let ok = PullRecord {
            ok: true,
            error: None,
            status: Some(200),
            signature_verified: Some(true),
            at: 1_700_000_100.0,
            attempts: 2,
        };
        state.record_pull("u1", ok, Some(Profile::builder("u1", "Ada").build()));
        let user = state.users.get("u1").unwrap();
        assert!(!user.failing());
        assert_eq!(user.pull_attempts, 3);
        let page = page_of(&state, "");
        assert!(page.contains("verified") && page.contains("synced (HTTP 200)"));
        assert!(
            page.contains("Tue, 14 Nov 2023 22:13:20 GMT (HTTP 404): <span class=\"failed\">gone")
        );
        assert!(page_of(&state, "failed=1").contains("No users on page 1"));
    }

    #[test]
    fn a_user_never_pulled_successfully_is_labelled_with_the_failure() {
        let mut state = EmulatorState::new(10);
        state.users.pinged("waiting");
        let failed = PullRecord {
            status: Some(500),
            ..failed_pull(
                1_700_000_000.0,
                "the Pull endpoint answered 500 Internal Server Error: invalid profile: `tags[0]` must match [A-Za-z0-9_]{1,63}",
            )
        };
        state.record_pull("broken", failed, None);
        let page = page_of(&state, "");
        assert!(
            page.contains("<td><span class=\"failed\">(pull failed: the Pull endpoint answered 500 Internal Server Error: invalid profile: `tags[0]` must match [A-Za-z0-9_]{1,63})</span></td><td><code>broken</code>"),
            "{page}"
        );
        assert!(
            page.contains("(not pulled yet)</span></td><td><code>waiting</code>"),
            "{page}"
        );
    }

    #[test]
    fn reads_the_view_from_the_query() {
        for (query, failed_only, page) in [
            ("", false, 1),
            ("failed=1&page=3", true, 3),
            ("page=0", false, 1),
            ("page=x&failed=yes", false, 1),
        ] {
            let view = View::from_query(Some(query));
            assert_eq!(
                (view.failed_only, view.page),
                (failed_only, page),
                "{query}"
            );
        }
    }
}
