//! The guides' claims about the emulator's coalescing (docs/cli.md) and the ping hook
//! (docs/pinger.md) that no other test checks: queued pings make one pull, a ping during
//! a pull makes one more; the hook pings nobody when the closure returns `None`, and a
//! ping it cannot record is logged at WARN without changing the response.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use pingpull::emulator::Emulator;
use pingpull::ping::{LivefyreClient, PingHookLayer, Pinger};
use pingpull::pull::{PullLayer, source_fn};
use pingpull::{Network, Profile};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt, service_fn};

use crate::support::LogCapture;
use crate::support::fake_livefyre::FakeLivefyre;

fn network() -> Network {
    Network::new("example.fyre.co", "testkeytest").unwrap()
}

/// A Pull endpoint on 127.0.0.1 whose loads wait until the gate is open, counting the
/// loads per user.
struct GatedEndpoint {
    template: String,
    loads: Arc<Mutex<HashMap<String, u32>>>,
    gate: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl GatedEndpoint {
    async fn start() -> Self {
        let loads: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let (gate, open) = watch::channel(false);
        let source = source_fn({
            let loads = loads.clone();
            move |id: String| {
                *loads.lock().unwrap().entry(id.clone()).or_default() += 1;
                let mut open = open.clone();
                async move {
                    let _ = open.wait_for(|open| *open).await;
                    Ok(Some(Profile::builder(id.as_str(), "Someone").build()))
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let template = format!(
            "http://{}/livefyre/pull?id={{id}}",
            listener.local_addr().unwrap()
        );
        let pull = PullLayer::new(&template, network(), source)
            .unwrap()
            .timeout(Duration::from_secs(60))
            .unwrap();
        let app = axum::Router::new().layer(pull);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            template,
            loads,
            gate,
            server,
        }
    }

    fn loads(&self, user: &str) -> u32 {
        self.loads.lock().unwrap().get(user).copied().unwrap_or(0)
    }

    async fn wait_for_loads(&self, user: &str, count: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.loads(user) < count {
            assert!(
                Instant::now() < deadline,
                "{user}: {} loads",
                self.loads(user)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for GatedEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn emulator_pulling_from(endpoint: &GatedEndpoint) -> (Emulator, LivefyreClient) {
    let emulator = Emulator::builder(network())
        .pull_url(&endpoint.template)
        .unwrap()
        .pull_concurrency(1)
        .start()
        .await
        .unwrap();
    let client = LivefyreClient::new(network(), &emulator.base_url()).unwrap();
    (emulator, client)
}

/// While the one pull slot is busy with `a`, three pings for `b` wait in the queue:
/// they make one pull of `b`. Three pings for `a` during its pull make one more.
#[tokio::test]
async fn the_emulator_coalesces_queued_pings_and_repulls_once_after_a_ping_during_a_pull() {
    let endpoint = GatedEndpoint::start().await;
    let (emulator, client) = emulator_pulling_from(&endpoint).await;

    client.sync_user("a").await.unwrap();
    endpoint.wait_for_loads("a", 1).await; // a's pull is in progress, held at the gate
    for _ in 0..3 {
        client.sync_user("b").await.unwrap();
        client.sync_user("a").await.unwrap();
    }
    assert_eq!(emulator.pings_received("a"), 4);
    assert_eq!(emulator.pings_received("b"), 3);

    endpoint.gate.send_replace(true);
    for user in ["a", "b"] {
        emulator
            .wait_for_profile(user, Duration::from_secs(10), |_| true)
            .await
            .unwrap();
    }
    endpoint.wait_for_loads("a", 2).await;
    // Give a wrongly queued extra pull time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        endpoint.loads("a"),
        2,
        "one pull, then one more for the pings during it"
    );
    assert_eq!(endpoint.loads("b"), 1, "three queued pings, one pull");
    assert_eq!(emulator.user("b").unwrap().pull_attempts, 1);
    emulator.shutdown(Duration::from_secs(5)).await;
}

fn hooked_route(
    pinger: Pinger,
    user_id: impl Fn(&Request<String>) -> Option<String> + Send + Sync + 'static,
) -> impl tower::Service<Request<String>, Response = Response<String>, Error = std::convert::Infallible>
+ Clone {
    ServiceBuilder::new()
        .layer(PingHookLayer::new(pinger, user_id))
        .service(service_fn(|_: Request<String>| async {
            Ok::<_, std::convert::Infallible>(
                Response::builder()
                    .status(204)
                    .header("x-route", "mine")
                    .body("saved".to_owned())
                    .unwrap(),
            )
        }))
}

#[tokio::test]
async fn a_closure_returning_none_pings_nobody() {
    let server = FakeLivefyre::start().await;
    let pinger = Pinger::builder(network())
        .base_url(server.base_url())
        .spawn()
        .unwrap();
    let route = hooked_route(pinger.clone(), |_| None);
    let response = route
        .oneshot(
            Request::put("/users/u1/profile")
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pinger.stats().pinged, 0);
    assert!(server.received().is_empty());
    pinger.shutdown(Duration::from_secs(1)).await;
}

/// A ping the hook cannot record (here: the Pinger has shut down) is logged at WARN
/// under `pingpull::ping`; the route's response reaches the caller unchanged.
#[tokio::test]
async fn a_ping_the_hook_cannot_record_is_logged_and_the_response_kept() {
    let server = FakeLivefyre::start().await;
    let pinger = Pinger::builder(network())
        .base_url(server.base_url())
        .spawn()
        .unwrap();
    pinger.shutdown(Duration::from_secs(1)).await;
    let logs = LogCapture::default();
    let _guard = logs.install(tracing::Level::DEBUG);
    let route = hooked_route(pinger.clone(), |request| {
        request.uri().path().split('/').nth(2).map(str::to_owned)
    });

    let response = route
        .oneshot(
            Request::put("/users/u1/profile")
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap();

    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["x-route"], "mine");
    assert_eq!(response.into_body(), "saved");
    let text = logs.text();
    let line = text
        .lines()
        .find(|line| line.contains("WARN"))
        .unwrap_or_else(|| panic!("no WARN line in {text:?}"));
    assert!(line.contains("pingpull::ping"), "{line}");
    assert!(
        line.contains("the ping was not recorded") && line.contains("shutting down"),
        "{line}"
    );
    assert!(server.received().is_empty());
}
