//! The Pull endpoint on an axum Router, next to the app's ordinary routes, and the
//! metrics as Prometheus text on `GET /metrics` (pingpull's own need its `metrics`
//! feature, which the examples build with).
//!
//! ```sh
//! cargo run --example axum -- 127.0.0.1:3000
//! ```
//!
//! Served with a header-read timeout until Ctrl-C or SIGTERM (see `common/serve.rs`).

mod common;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusBuilder;
use pingpull::pull::PullLayer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let shutdown = common::shutdown_signal()?;
    let (listener, template) = common::listen("/livefyre/pull?id={id}").await?;

    // The recorder before the layer: metrics are registered when it is built.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    let pull = PullLayer::new(&template, common::network()?, common::demo_users())?;
    let app = Router::new()
        .route("/", get(|| async { "an ordinary page of the app\n" }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(move || async move { prometheus.render() }))
        .layer(pull);

    eprintln!("check it with: pingpull check '{template}' --user u1 --unknown-user nobody");
    common::serve(listener, app, shutdown).await;
    Ok(())
}
