//! The Pull endpoint on a tonic server, next to a gRPC service (tonic-health, so no
//! protobuf build step is needed). HTTP/1 is accepted so Livefyre's plain GETs arrive;
//! gRPC clients speak HTTP/2 on the same port. Served with a header-read timeout until
//! Ctrl-C or SIGTERM (see `common/serve.rs`).
//!
//! ```sh
//! cargo run --example tonic -- 127.0.0.1:3000
//! ```

mod common;

use pingpull::pull::PullLayer;
use tonic::service::Routes;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let shutdown = common::shutdown_signal()?;
    let (listener, template) = common::listen("/livefyre/pull?id={id}").await?;

    let pull = PullLayer::new(&template, common::network()?, common::demo_users())?;
    let (_reporter, health) = tonic_health::server::health_reporter();

    // tonic's own server takes no header-read timeout: its routes go through ours.
    let app = Routes::new(health).into_axum_router().layer(pull);
    common::serve(listener, app, shutdown).await;
    Ok(())
}
