//! The Pull endpoint on bare hyper 1 + hyper-util, no framework.
//!
//! ```sh
//! cargo run --example hyper -- 127.0.0.1:3000
//! ```

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
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
    let (listener, template) = common::listen("/users/{id}/livefyre").await?;

    let pull = PullLayer::new(&template, common::network()?, common::demo_users())?;
    let service = pull.layer(service_fn(app));

    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                eprintln!("connection error: {error}");
            }
        });
    }
}
