//! The Pull endpoint on a tonic server, next to a gRPC service (tonic-health, so no
//! protobuf build step is needed). HTTP/1 is accepted so Livefyre's plain GETs arrive.
//!
//! ```sh
//! cargo run --example tonic -- 127.0.0.1:3000
//! ```

mod common;

use pingpull::pull::PullLayer;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| "pingpull=debug".into()),
        )
        .init();
    let listener = tokio::net::TcpListener::bind(common::listen_addr()?).await?;
    let addr = listener.local_addr()?;
    let template = format!("http://{addr}/livefyre/pull?id={{id}}");
    println!("{template}");

    let pull = PullLayer::new(&template, common::network()?, common::demo_users())?;
    let (_reporter, health) = tonic_health::server::health_reporter();

    Server::builder()
        .accept_http1(true)
        .layer(pull)
        .add_service(health)
        .serve_with_incoming(TcpIncoming::from(listener))
        .await?;
    Ok(())
}
