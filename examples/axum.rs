//! The Pull endpoint on an axum Router, next to the app's ordinary routes.
//!
//! ```sh
//! cargo run --example axum -- 127.0.0.1:3000
//! ```

mod common;

use axum::Router;
use axum::routing::get;
use pingpull::pull::PullLayer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let (listener, template) = common::listen("/livefyre/pull?id={id}").await?;

    let pull = PullLayer::new(&template, common::network()?, common::demo_users())?;
    let app = Router::new()
        .route("/", get(|| async { "an ordinary page of the app\n" }))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(pull);

    eprintln!("check it with: pingpull check '{template}' --user u1 --unknown-user nobody");
    axum::serve(listener, app).await?;
    Ok(())
}
