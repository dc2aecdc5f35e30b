//! The Pull endpoint in an actix-web app, next to the app's ordinary routes, with the
//! ping hook on an update route. actix-web is not tower-based: the endpoint is mounted
//! as middleware (`pingpull::actix::PullMiddleware`), configured by the same
//! `PullLayer`, and answers exactly as the tower layer does.
//!
//! ```sh
//! cargo run --example actix -- 127.0.0.1:3000
//! ```
//!
//! Served with a header-read timeout until Ctrl-C or SIGTERM, which stop it gracefully
//! (requests in flight finish).

// actix-web serves the app itself: the hyper serving helpers in `common` go unused here.
#[allow(dead_code, unused_imports)]
mod common;

use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::{App, HttpResponse, HttpServer, web};
use pingpull::actix::{PingHookMiddleware, PullMiddleware};
use pingpull::ping::Pinger;
use pingpull::pull::PullLayer;

/// How long a client has to send its request head before it is answered 408 and closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long requests in flight may run on after the stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    actix_web::rt::System::new().block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let shutdown = common::shutdown_signal()?;
    let (listener, template) = common::listen("/livefyre/pull?id={id}").await?;
    let network = common::network()?;

    let pull = PullLayer::new(&template, network.clone(), common::demo_users())?;
    // Pings go to PINGPULL_BASE_URL (the emulator, say), else to Livefyre.
    let mut pinger = Pinger::builder(network);
    if let Ok(base_url) = std::env::var("PINGPULL_BASE_URL") {
        pinger = pinger.base_url(base_url);
    }
    let pinger = pinger.spawn()?;
    let hooked = pinger.clone();

    let server = HttpServer::new(move || {
        // `PUT /users/{id}/profile` saves a profile; a 2xx pings that user.
        let hook = PingHookMiddleware::new(hooked.clone(), |request: &ServiceRequest| {
            request.match_info().get("id").map(str::to_owned)
        });
        App::new()
            .wrap(PullMiddleware::new(pull.clone()))
            .route(
                "/",
                web::get().to(|| async { "an ordinary page of the app\n" }),
            )
            .route("/healthz", web::get().to(|| async { "ok\n" }))
            .service(
                web::resource("/users/{id}/profile")
                    .wrap(hook)
                    .route(web::put().to(|| async { HttpResponse::NoContent().finish() })),
            )
    })
    .client_request_timeout(HEADER_READ_TIMEOUT)
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    // Ctrl-C and SIGTERM alike stop it gracefully (actix's own handling would stop at
    // once on Ctrl-C).
    .disable_signals()
    .listen(listener.into_std()?)?
    .run();

    let handle = server.handle();
    actix_web::rt::spawn(async move {
        shutdown.await;
        handle.stop(true).await;
    });
    eprintln!("check it with: pingpull check '{template}' --user u1 --unknown-user nobody");
    server.await?;
    let report = pinger.shutdown(SHUTDOWN_GRACE).await;
    if !report.undelivered.is_empty() {
        eprintln!("not delivered: {:?}", report.undelivered);
    }
    Ok(())
}
