//! A Pinger's health and metrics over HTTP, against the built-in Livefyre emulator, until
//! Ctrl-C or SIGTERM (served with a header-read timeout, see `common/serve.rs`):
//!
//! - `GET /healthz`: 200 and the health as JSON while delivery works, 503 with the reason
//!   (`unauthorized`, `failing`) when it does not, for a readiness or liveness probe;
//! - `GET /metrics`: pingpull's metrics as Prometheus text;
//! - `POST /users/{id}`: pings Livefyre for that user (202).
//!
//! ```sh
//! cargo run --example health                   # on 127.0.0.1, a free port
//! cargo run --example health -- 127.0.0.1:8080 # prints the address first
//! curl -X POST http://127.0.0.1:8080/users/u1
//! curl http://127.0.0.1:8080/healthz
//! curl http://127.0.0.1:8080/metrics
//! ```

#[path = "common/logging.rs"]
mod logging;
#[path = "common/serve.rs"]
mod serve;

use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use pingpull::Network;
use pingpull::emulator::Emulator;
use pingpull::ping::{PingError, Pinger};

/// Buckets for pingpull's `_seconds` histograms: a delivery takes milliseconds when all is
/// well and minutes to hours through retries.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
    3600.0,
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    logging::init_tracing();
    let shutdown = serve::shutdown_signal()?;
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    // The recorder first: the Pinger registers its metrics when it is spawned.
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .install_recorder()?;
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    let network = Network::new("example.fyre.co", "testkeytest")?;
    let emulator = Emulator::start(network.clone()).await?;
    let pinger = Pinger::builder(network)
        .base_url(emulator.base_url())
        .spawn()?;

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("http://{}", listener.local_addr()?);
    eprintln!("Livefyre emulator at {}; Ctrl-C stops", emulator.base_url());
    serve::serve(listener, router(pinger.clone(), prometheus), shutdown).await;
    let report = pinger.shutdown(Duration::from_secs(5)).await;
    eprintln!("stopped; not delivered: {:?}", report.undelivered);
    Ok(())
}

#[derive(Clone)]
struct App {
    pinger: Pinger,
    prometheus: PrometheusHandle,
}

/// The three routes, over a spawned Pinger and the recorder its metrics went to.
pub(crate) fn router(pinger: Pinger, prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/users/{id}", post(ping))
        .with_state(App { pinger, prometheus })
}

async fn healthz(State(app): State<App>) -> Response {
    let health = app.pinger.health();
    let status = if health.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let last_delivered = health
        .last_delivered
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_secs());
    let body = serde_json::json!({
        "healthy": health.healthy(),
        "reason": health.reason(),
        "unauthorized": health.unauthorized,
        "consecutive_failures": health.consecutive_failures,
        "last_delivered_unix": last_delivered,
        "pending": health.pending,
        "oldest_pending_seconds": health.oldest_pending.map(|age| age.as_secs_f64()),
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(app): State<App>) -> Response {
    let content_type = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    (content_type, app.prometheus.render()).into_response()
}

async fn ping(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.pinger.ping(&id) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(error @ PingError::InvalidUserId(_)) => {
            (StatusCode::BAD_REQUEST, error.to_string()).into_response()
        }
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}
