//! Pings and registrations through a forward proxy: plain http in absolute form with the
//! proxy's credentials, https through a CONNECT tunnel, by the one-shot client and by a
//! Pinger; the credentials never shown.

use std::time::Duration;

use pingpull::Network;
use pingpull::emulator::Emulator;
use pingpull::ping::{ConfigError, HyperTransport, LivefyreClient, PingEvent, Pinger, Proxy};

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
    let (_held, closed) = crate::support::refusing_port();
    let url = format!("http://user:s3cret@{closed}");
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

/// Waits for the next delivery; a retry fails the test.
async fn delivered(events: &mut tokio::sync::broadcast::Receiver<PingEvent>) {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("an event within 10 s")
            .unwrap();
        match event {
            PingEvent::Delivered { .. } => return,
            PingEvent::Retrying { failure, .. } => panic!("retrying: {failure:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_pinger_delivers_through_the_proxy_in_absolute_form() {
    let emulator = Emulator::start(network()).await.unwrap();
    let forward = ForwardProxy::start().await;
    let proxy = Proxy::new(&forward.url("user:s3cret@")).unwrap();
    let pinger = Pinger::builder(network())
        .base_url(emulator.base_url())
        .proxy(&proxy)
        .spawn()
        .unwrap();
    let mut events = pinger.events();

    pinger.ping("u1").unwrap();
    delivered(&mut events).await;

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
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Basic dXNlcjpzM2NyZXQ=")
    );
    assert!(!format!("{pinger:?}").contains("s3cret"));
    pinger.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_transport_of_your_own_cannot_be_combined_with_a_proxy() {
    let forward = ForwardProxy::start().await;
    let proxy = Proxy::new(&forward.url("")).unwrap();
    let error = Pinger::builder(network())
        .proxy(&proxy)
        .transport(HyperTransport::new())
        .spawn()
        .unwrap_err();
    assert_eq!(error, ConfigError::TransportConflict);
    assert!(error.to_string().contains("`proxy`"), "{error}");
}

/// https through the proxy: a CONNECT tunnel to the TLS front, with the proxy's
/// credentials in the CONNECT; TLS then runs end to end inside it, so the proxy sees the
/// host and port, never the request.
#[cfg(feature = "rustls")]
mod https {
    use super::*;
    use crate::support::tls_front::{TlsFront, certificates, trusting};

    #[tokio::test]
    async fn one_shot_calls_and_the_pinger_tunnel_through_the_proxy_with_connect() {
        let certificates = certificates("pingpull test CA");
        let emulator = Emulator::start(network()).await.unwrap();
        let front = TlsFront::start(&certificates, emulator.addr()).await;
        let forward = ForwardProxy::start().await;
        let proxy = Proxy::new(&forward.url("user:s3cret@")).unwrap();
        let connect = format!("CONNECT {} HTTP/1.1", front.addr);

        // Roots, then proxy: the client keeps both.
        let client = LivefyreClient::new(network(), &front.base_url())
            .unwrap()
            .tls_roots(&trusting(&certificates))
            .proxy(&proxy);
        client.sync_user("u1").await.unwrap();
        assert_eq!(emulator.pings_received("u1"), 1);
        let seen = forward.seen();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].line, connect);
        assert_eq!(
            seen[0].authorization.as_deref(),
            Some("Basic dXNlcjpzM2NyZXQ=")
        );

        // Proxy, then roots, on a Pinger: the same.
        let pinger = Pinger::builder(network())
            .base_url(front.base_url())
            .proxy(&proxy)
            .tls_roots(&trusting(&certificates))
            .spawn()
            .unwrap();
        let mut events = pinger.events();
        pinger.ping("u2").unwrap();
        delivered(&mut events).await;
        assert_eq!(emulator.pings_received("u2"), 1);
        let seen = forward.seen();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[1].line, connect);
        pinger.shutdown(Duration::from_secs(1)).await;
    }
}
