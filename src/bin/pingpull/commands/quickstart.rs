//! `pingpull quickstart`: Ping for Pull, end to end on one machine: the built-in Livefyre
//! emulator, an axum app with the Pull endpoint and a profile-update route, a changed
//! display name, and the emulator's remote profile catching up.
//!
//! ```sh
//! cargo run --features cli -- quickstart
//! ```
//!
//! It needs only the crate's own dependencies, so that first run builds little; the
//! `quickstart` example runs this same file (`cargo run --example quickstart`).

use std::error::Error;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{Request, StatusCode};
use axum::routing::{get, put};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pingpull::emulator::Emulator;
use pingpull::ping::{PingHookLayer, Pinger};
use pingpull::pull::{InMemorySource, PullLayer};
use pingpull::{Network, Profile};

/// Prints a step with the time since the start.
struct QuickstartSteps(Instant);

impl QuickstartSteps {
    fn say(&self, what: &str) {
        println!(
            "[{:>7.1} ms] {what}",
            self.0.elapsed().as_secs_f64() * 1000.0
        );
    }
}

/// Runs the quickstart, printing each step on stdout.
///
/// # Errors
///
/// The step that failed: a server that cannot start, or the emulator's copy of the
/// profile not catching up within 5 s.
pub(crate) async fn run() -> Result<(), Box<dyn Error>> {
    let steps = QuickstartSteps(Instant::now());
    let network = Network::new("example.fyre.co", "testkeytest")?;

    // 1. Livefyre's side, in-process.
    let emulator = Emulator::start(network.clone()).await?;
    steps.say(&format!(
        "emulator (Livefyre) listening at {}",
        emulator.base_url()
    ));

    // 2. Your app: the Pull endpoint, your users, and a route that changes a profile.
    let users = InMemorySource::new();
    users.insert(
        Profile::builder("u1", "Ada Lovelace")
            .email("ada@example.com")
            .image_url("https://cdn.example.com/avatars/u1.png?v=1")
            .build(),
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app_url = format!("http://{}", listener.local_addr()?);
    let template = format!("{app_url}/livefyre/pull?id={{id}}");

    let pinger = Pinger::builder(network.clone())
        .base_url(emulator.base_url())
        .spawn()?;
    let update_route = Router::new()
        .route("/users/{id}/display_name", put(update_display_name))
        .with_state(users.clone())
        .layer(PingHookLayer::new(
            pinger.clone(),
            |request: &Request<Body>| request.uri().path().split('/').nth(2).map(str::to_owned),
        ));
    let app = Router::new()
        .route("/", get(|| async { "my site\n" }))
        .merge(update_route)
        .layer(PullLayer::new(&template, network.clone(), users.clone())?);
    // The app serves until this program is done with it, then stops gracefully. (A
    // production server also sets a header-read timeout: see the examples' serve.rs.)
    let (stop_app, app_stopping) = tokio::sync::oneshot::channel::<()>();
    let app_server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = app_stopping.await;
            })
            .into_future(),
    );
    steps.say(&format!(
        "your app listening at {app_url}, Pull URL {template}"
    ));

    // 3. Once per network: tell Livefyre where to pull from.
    pinger.client().register_pull_url(&template).await?;
    steps.say("pull URL registered with the emulator");

    // 4. A user changes their display name through your app.
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::put(format!("{app_url}/users/u1/display_name"))
        .body(Full::from("Ada King, Countess of Lovelace"))?;
    let response = client.request(request).await?;
    let status = response.status();
    let _ = response.into_body().collect().await;
    if status != StatusCode::NO_CONTENT {
        return Err(format!("the update route answered {status}").into());
    }
    steps.say("PUT /users/u1/display_name answered 204; the ping hook pinged Livefyre");

    // 5. Livefyre pulls the new profile; wait for its copy to show the change.
    let profile = emulator
        .wait_for_profile("u1", Duration::from_secs(5), |p| {
            p.display_name == "Ada King, Countess of Lovelace"
        })
        .await?;
    steps.say(&format!(
        "emulator's remote profile for u1 now says \"{}\" ({} ping, signature verified: {})",
        profile.display_name,
        emulator.pings_received("u1"),
        emulator
            .user("u1")
            .and_then(|u| u.last_pull)
            .and_then(|p| p.signature_verified)
            .unwrap_or(false)
    ));

    let report = pinger.shutdown(Duration::from_secs(2)).await;
    let _ = stop_app.send(());
    let _ = app_server.await;
    steps.say(&format!(
        "done: {} ping(s) delivered; the emulator stops with this program (`cargo run --features cli -- emulator` keeps one up)",
        report.stats.succeeded,
    ));
    Ok(())
}

/// Your update handler: saves the change. The ping hook around it pings after the 204.
async fn update_display_name(
    State(users): State<InMemorySource>,
    Path(id): Path<String>,
    name: String,
) -> StatusCode {
    match users.update(&id, |profile| profile.display_name = name) {
        Ok(true) => StatusCode::NO_CONTENT,
        Ok(false) => StatusCode::NOT_FOUND,
        // An empty name, say: the profile kept is unchanged.
        Err(_refused) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}
