//! Pings and registrations through a forward proxy: plain http in absolute form with the
//! proxy's credentials, and the credentials never shown.

use pingpull::Network;
use pingpull::emulator::Emulator;
use pingpull::ping::{HyperTransport, LivefyreClient, Proxy};

use crate::support::forward_proxy::ForwardProxy;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

#[tokio::test]
async fn one_shot_calls_go_through_the_proxy_in_absolute_form_with_its_credentials() {
    let emulator = Emulator::start(network()).await.unwrap();
    let forward = ForwardProxy::start().await;
    let proxy = Proxy::new(&forward.url("user:s3cret@")).unwrap();
    let transport = HyperTransport::new().proxy(&proxy);
    let client =
        LivefyreClient::with_transport(network(), &emulator.base_url(), transport).unwrap();

    client.sync_user("u1").await.unwrap();
    assert_eq!(emulator.pings_received("u1"), 1);
    let seen = forward.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].line,
        format!(
            "POST {}/api/v3_0/user/u1/refresh HTTP/1.1",
            emulator.base_url()
        )
    );
    // user:s3cret, as Basic.
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Basic dXNlcjpzM2NyZXQ=")
    );
    assert!(!format!("{client:?} {proxy:?}").contains("s3cret"));
}

#[tokio::test]
async fn an_unreachable_proxy_is_a_connection_failure_that_says_so() {
    let emulator = Emulator::start(network()).await.unwrap();
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://user:s3cret@{}", closed.local_addr().unwrap());
    drop(closed);
    let proxy = Proxy::new(&url).unwrap();
    let client = LivefyreClient::with_transport(
        network(),
        &emulator.base_url(),
        HyperTransport::new().proxy(&proxy),
    )
    .unwrap();
    let error = client.sync_user("u1").await.unwrap_err().to_string();
    assert!(error.contains("connecting to the proxy"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
    assert_eq!(emulator.pings_received("u1"), 0);
}
