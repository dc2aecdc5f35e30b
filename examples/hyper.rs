//! The Pull endpoint on bare hyper 1 + hyper-util, no framework.
//!
//! ```sh
//! cargo run --example hyper -- 127.0.0.1:3000
//! ```
//!
//! Served with a header-read timeout until Ctrl-C or SIGTERM (see `common/serve.rs`,
//! hyper-util's connection builder: the part of a server a framework would give).

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use pingpull::pull::PullLayer;
use tower::{Layer, service_fn};

/// The rest of the app: one page, 404 elsewhere.
async fn app(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match request.uri().path() {
        "/" => Response::new(Full::from("an ordinary page of the app\n")),
        _ => {
            let mut response = Response::new(Full::from("not found\n"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    };
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let shutdown = common::shutdown_signal()?;
    let (listener, template) = common::listen("/users/{id}/livefyre").await?;

    let pull = PullLayer::new(&template, common::network()?, common::demo_users())?;
    let service = pull.layer(service_fn(app));

    common::serve(listener, service, shutdown).await;
    Ok(())
}
