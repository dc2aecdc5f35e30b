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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let (listener, template) = common::listen("/livefyre/pull?id={id}").await?;

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
