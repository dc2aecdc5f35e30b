//! Ping users through the Pinger and watch them delivered.
//!
//! ```sh
//! # against a local stand-in for Livefyre's ping endpoint, started by the example:
//! cargo run --example pinger
//! # against a server of yours (the emulator, a proxy), with user ids:
//! cargo run --example pinger -- http://127.0.0.1:8080 u1 u2
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use pingpull::Network;
use pingpull::ping::Pinger;
use pingpull::token::SystemTokenValidator;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let network = match (
        std::env::var("PINGPULL_NETWORK"),
        std::env::var("PINGPULL_KEY"),
    ) {
        (Ok(name), Ok(key)) => {
            // While the key is rotated, the stand-in also accepts the previous keys.
            let previous = std::env::var("PINGPULL_PREVIOUS_KEYS").unwrap_or_default();
            Network::new(name, key)?
                .with_previous_keys(previous.split(',').map(str::trim).filter(|k| !k.is_empty()))?
        }
        _ => {
            eprintln!(
                "PINGPULL_NETWORK/PINGPULL_KEY not set: using example.fyre.co with key `testkeytest`"
            );
            Network::new("example.fyre.co", "testkeytest")?
        }
    };
    let mut args = std::env::args().skip(1);
    let base_url = match args.next() {
        Some(url) => url,
        None => start_stand_in(network.clone()).await?,
    };
    let mut users: Vec<String> = args.collect();
    if users.is_empty() {
        users = ["u1", "u2", "u3", "u1"].map(String::from).to_vec();
    }
    println!("pinging {users:?} at {base_url}");

    let pinger = Pinger::builder(network).base_url(&base_url).spawn()?;
    let mut events = pinger.events();
    let started = std::time::Instant::now();
    for user in &users {
        pinger.ping(user)?;
    }
    while pinger.stats().pending > 0 {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Ok(event)) => println!(
                "{:>7.1} ms  {event:?}",
                started.elapsed().as_secs_f64() * 1000.0
            ),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let report = pinger.shutdown(Duration::from_secs(5)).await;
    println!("{:?}", report.stats);
    if report.undelivered.is_empty() {
        Ok(())
    } else {
        Err(format!("not delivered: {:?}", report.undelivered).into())
    }
}

/// A stand-in for Livefyre's ping endpoint on 127.0.0.1: checks the token, answers 200.
async fn start_stand_in(network: Network) -> Result<String, Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let validator = SystemTokenValidator::new(network);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let validator = validator.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let validator = validator.clone();
                    async move {
                        let path = request.uri().path().to_owned();
                        let body = request
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let token = String::from_utf8_lossy(&body)
                            .strip_prefix("lftoken=")
                            .map(str::to_owned)
                            .unwrap_or_default();
                        let status = match validator.validate(&token) {
                            Ok(_) => StatusCode::OK,
                            Err(_) => StatusCode::FORBIDDEN,
                        };
                        println!("          stand-in: POST {path} -> {}", status.as_u16());
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(base_url)
}
