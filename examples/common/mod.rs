//! What the server examples share: the listen address, the network, demo users, logging
//! (`logging.rs`), and serving with a header-read timeout and a graceful stop
//! (`serve.rs`). Examples that need only the last two include those files alone.

use std::net::SocketAddr;

use pingpull::profile::{DisplayRules, EmailNotifications, Name, NotificationFrequency};
use pingpull::pull::InMemorySource;
use pingpull::{Network, Profile};
use tokio::net::TcpListener;

mod logging;
mod serve;
pub(crate) use logging::init_tracing;
pub(crate) use serve::{serve, shutdown_signal};

/// Listens on the first argument's address (default 127.0.0.1:3000) and prints the
/// pull URL template served there (`path` holds `{id}`) as the first line of output.
pub(crate) async fn listen(
    path: &str,
) -> Result<(TcpListener, String), Box<dyn std::error::Error>> {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let addr: SocketAddr = arg
        .parse()
        .map_err(|e| format!("listen address `{arg}`: {e}"))?;
    let listener = TcpListener::bind(addr).await?;
    let template = format!("http://{}{path}", listener.local_addr()?);
    println!("{template}");
    Ok((listener, template))
}

/// The network from `PINGPULL_NETWORK` and `PINGPULL_KEY`, also accepting the keys in
/// `PINGPULL_PREVIOUS_KEYS` (comma-separated) while the key is rotated; or a development
/// default.
pub(crate) fn network() -> Result<Network, Box<dyn std::error::Error>> {
    let name = std::env::var("PINGPULL_NETWORK").ok();
    let key = std::env::var("PINGPULL_KEY").ok();
    match (name, key) {
        (Some(name), Some(key)) => {
            let previous = std::env::var("PINGPULL_PREVIOUS_KEYS").unwrap_or_default();
            let network = Network::new(name, key)?
                .with_previous_keys(previous.split(',').map(str::trim).filter(|k| !k.is_empty()))?;
            Ok(network)
        }
        _ => {
            eprintln!(
                "PINGPULL_NETWORK/PINGPULL_KEY not set: using the development network \
                 example.fyre.co with key `testkeytest` (never in production)"
            );
            Ok(Network::new("example.fyre.co", "testkeytest")?)
        }
    }
}

/// Three users with different field sets; `u1` has every field.
pub(crate) fn demo_users() -> InMemorySource {
    let u1 = Profile::builder("u1", "Ada Lovelace")
        .name(Name {
            formatted: Some("Ada King, Countess of Lovelace".into()),
            first: Some("Ada".into()),
            middle: Some("Augusta".into()),
            last: Some("King".into()),
        })
        .email("ada@example.com")
        .image_url("https://cdn.example.com/avatars/u1.png?v=1")
        .profile_url("https://www.example.com/users/u1")
        .settings_url("https://www.example.com/users/u1/settings")
        .tags(["staff", "beta_testers"])
        .autofollow_conversations(true)
        .email_notifications(EmailNotifications::all(NotificationFrequency::Often))
        .location("London")
        .bio("Wrote the first program.")
        .websites(["https://ada.example.com", "https://blog.example.com/ada"])
        .display_rules(DisplayRules {
            bio: Some(true),
            location: Some(true),
            gender: Some(false),
            name: Some(true),
            image: Some(true),
            remote_profile_url: Some(true),
        })
        .moderator(true)
        .gravatar_disabled(false)
        .build();
    let u2 = Profile::builder("u2", "Grace Hopper")
        .email("grace@example.com")
        .image_url("https://cdn.example.com/avatars/u2.png?v=4")
        .tags(["navy"])
        .build();
    let u3 = Profile::builder("u3", "Alan").build();
    [u1, u2, u3].into_iter().collect()
}
