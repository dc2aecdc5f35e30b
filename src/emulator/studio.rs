//! `GET /studio/users`: remote profiles as an HTML table, in the spirit of Livefyre
//! Studio > Users. Plain HTML, no JavaScript.

use std::fmt::Write as _;

use super::RemoteUser;

pub(super) fn users_page(network: &str, users: &[RemoteUser]) -> String {
    let mut page = String::with_capacity(2048 + users.len() * 512);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\">\
         <title>Users · {network} · pingpull emulator</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;width:100%}}th,td{{text-align:left;padding:.5em;border-bottom:1px solid #ddd}}\
         img{{width:40px;height:40px;border-radius:50%;object-fit:cover;background:#eee}}\
         .ok{{color:#127a12}}.failed{{color:#b00020}}.muted{{color:#777}}</style></head><body>\
         <h1>Users</h1><p class=\"muted\">Network {network} · {count} user(s) · remote profiles as Livefyre holds them</p>\
         <table><thead><tr><th></th><th>Display name</th><th>User ID</th><th>Pings</th><th>Last sync</th><th>Status</th></tr></thead><tbody>",
        network = escape(network),
        count = users.len()
    );
    for user in users {
        let profile = user.profile.as_ref();
        let avatar = match profile.and_then(|p| p.image_url.as_deref()) {
            Some(url) => format!("<img src=\"{}\" alt=\"\">", escape(url)),
            None => "<img alt=\"\">".to_owned(),
        };
        let name = profile.map_or_else(
            || "<span class=\"muted\">(not pulled yet)</span>".to_owned(),
            |p| escape(&p.display_name),
        );
        let last_sync = user
            .updated_at
            .map_or_else(|| "never".to_owned(), format_time);
        let status = match &user.last_pull {
            None => "<span class=\"muted\">waiting for a pull</span>".to_owned(),
            Some(pull) if pull.ok => format!(
                "<span class=\"ok\">synced (HTTP {})</span>",
                pull.status.unwrap_or(200)
            ),
            Some(pull) => format!(
                "<span class=\"failed\">failed{}: {}</span>",
                pull.status
                    .map(|s| format!(" (HTTP {s})"))
                    .unwrap_or_default(),
                escape(pull.error.as_deref().unwrap_or("unknown error"))
            ),
        };
        let _ = write!(
            page,
            "<tr><td>{avatar}</td><td>{name}</td><td><code>{id}</code></td><td>{pings}</td><td>{last_sync}</td><td>{status}</td></tr>",
            id = escape(&user.id),
            pings = user.pings
        );
    }
    page.push_str("</tbody></table></body></html>\n");
    page
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

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
fn format_time(unix: f64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(unix.max(0.0));
    httpdate::fmt_http_date(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Profile;

    #[test]
    fn escapes_what_users_control() {
        let user = RemoteUser {
            id: "u1".into(),
            profile: Some(
                Profile::builder("u1", "<script>alert(1)</script>")
                    .image_url("https://x.example/a.png\"onerror=\"x")
                    .build(),
            ),
            updated_at: Some(1_700_000_000.0),
            pings: 2,
            last_pull: None,
        };
        let page = users_page("example.fyre.co", &[user]);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("a.png&quot;onerror=&quot;x"));
        assert!(page.contains("Tue, 14 Nov 2023 22:13:20 GMT"));
    }
}
