//! The Pull endpoint on an axum Router, next to the app's ordinary routes.
//!
//! ```sh
//! cargo run --example axum -- 127.0.0.1:3000
//! ```

mod common;

use axum::Router;
use axum::routing::get;
use pingpull::pull::PullLayer;
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
    let app = Router::new()
        .route("/", get(|| async { "an ordinary page of the app\n" }))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(pull);

    eprintln!(
        "serving on http://{addr}; try: cargo run --example tokens, then GET the URL above with id=u1"
    );
    axum::serve(listener, app).await?;
    Ok(())
}
